// Package irvm evaluates Rego through OPA's own planner: the compiled policy
// is planned into OPA's intermediate representation (IR, see OPA's
// docs/ir.md) and run by a small interpreter over ast values, with OPA's
// built-in function implementations. It computes what topdown computes, at a
// fraction of the cost, because planning resolves at load time what topdown
// rediscovers on every evaluation (rule lookup, unification, indexing).
//
// A plan this interpreter cannot run (an unknown built-in, a statement it
// does not know) is refused by Load, and the caller keeps topdown.
package irvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
	"github.com/open-policy-agent/opa/v1/topdown/print"
)

// Program is a loaded plan, safe for concurrent evaluation.
type Program struct {
	plan   *block
	funcs  []*fn
	byPath map[string]*fn
	caps   *ast.Capabilities
}

type fn struct {
	index   int
	name    string
	params  []int
	ret     int
	nlocals int
	memo    bool
	blocks  []*block
}

type block struct{ stmts []stmt }

// operand is a local (local >= 0) or a constant term.
type operand struct {
	local int
	c     *ast.Term
}

type builtin struct {
	name     string
	f        topdown.BuiltinFunc
	fast     fastFunc
	void     bool
	relation bool
	loc      *ast.Location
}

// fastFunc is an exact reimplementation of a hot pure built-in; ok=false
// means "not handled here", and the call goes to OPA's implementation.
type fastFunc func(args []*ast.Term) (res *ast.Term, ok bool)

type (
	stmt interface{}

	sReturn struct{ src int }
	sCall   struct {
		fn     *fn
		bi     *builtin
		args   []operand
		result int
	}
	sCallDyn struct {
		path   []operand
		args   []int
		result int
	}
	sBlock struct{ blocks []*block }
	sBreak struct{ index int }
	sDot   struct {
		src, key operand
		target   int
	}
	sLen struct {
		src    operand
		target int
	}
	sScan struct {
		src, key, value int
		body            *block
	}
	sNot    struct{ body *block }
	sAssign struct {
		src    operand
		target int
	}
	sAssignOnce struct {
		src    operand
		target int
	}
	sReset struct{ target int }
	sConst struct {
		c      *ast.Term
		target int
	}
	sMakeArray struct {
		capacity int
		target   int
	}
	sMakeObject struct{ target int }
	sMakeSet    struct{ target int }
	sEqual      struct{ a, b operand }
	sNotEqual   struct{ a, b operand }
	sIsArray    struct{ src operand }
	sIsObject   struct{ src operand }
	sIsSet      struct{ src operand }
	sIsDefined  struct{ src int }
	sIsUndef    struct{ src int }
	sAppend     struct {
		value operand
		array int
	}
	sInsert struct {
		key, value operand
		object     int
	}
	sInsertOnce struct {
		key, value operand
		object     int
	}
	sMerge  struct{ a, b, target int }
	sSetAdd struct {
		value operand
		set   int
	}
	sResult struct{ value int }
)

// Load prepares a plan for evaluation. caps limits the built-ins to those a
// policy may call (nil: all of this OPA's).
func Load(p *ir.Policy, caps *ast.Capabilities) (*Program, error) {
	if p == nil || p.Plans == nil || len(p.Plans.Plans) != 1 {
		return nil, errors.New("irvm: want exactly one plan")
	}
	if len(p.UnplannedRules) > 0 {
		return nil, fmt.Errorf("irvm: the planner left %d rules unplanned (first %s)", len(p.UnplannedRules), p.UnplannedRules[0].Path)
	}
	l := &loader{prog: &Program{byPath: map[string]*fn{}, caps: caps}, byName: map[string]*fn{}}
	if p.Static != nil {
		for _, s := range p.Static.Strings {
			l.strings = append(l.strings, ast.StringTerm(s.Value))
		}
		for _, f := range p.Static.Files {
			l.files = append(l.files, f.Value)
		}
	}
	if p.Funcs != nil {
		for i, f := range p.Funcs.Funcs {
			x := &fn{index: i, name: f.Name, ret: int(f.Return), memo: len(f.Params) == 2}
			for _, a := range f.Params {
				x.params = append(x.params, int(a))
			}
			l.prog.funcs = append(l.prog.funcs, x)
			l.byName[f.Name] = x
			if len(f.Path) > 0 {
				l.prog.byPath[strings.Join(f.Path, "\x00")] = x
			}
		}
		for i, f := range p.Funcs.Funcs {
			x := l.prog.funcs[i]
			l.max = max(x.ret, 1)
			for _, a := range x.params {
				l.max = max(l.max, a)
			}
			for _, b := range f.Blocks {
				nb, err := l.block(b)
				if err != nil {
					return nil, fmt.Errorf("irvm: %s: %w", f.Name, err)
				}
				x.blocks = append(x.blocks, nb)
			}
			x.nlocals = l.max + 1
		}
	}
	plan := p.Plans.Plans[0]
	l.max = 1
	pb := &block{}
	for _, b := range plan.Blocks {
		nb, err := l.block(b)
		if err != nil {
			return nil, fmt.Errorf("irvm: plan %s: %w", plan.Name, err)
		}
		pb.stmts = append(pb.stmts, &sBlock{blocks: []*block{nb}})
	}
	l.prog.plan = pb
	l.prog.funcs = append(l.prog.funcs, &fn{index: len(l.prog.funcs), name: "plan", nlocals: l.max + 1, blocks: []*block{pb}, ret: -1})
	return l.prog, nil
}

type loader struct {
	prog    *Program
	byName  map[string]*fn
	strings []*ast.Term
	files   []string
	max     int
}

func (l *loader) local(x ir.Local) int {
	i := int(x)
	if i > l.max {
		l.max = i
	}
	return i
}

func (l *loader) operand(o ir.Operand) (operand, error) {
	val := o.Value
	// A plan read from JSON holds its operands' values by pointer.
	switch v := val.(type) {
	case *ir.Local:
		val = *v
	case *ir.Bool:
		val = *v
	case *ir.StringIndex:
		val = *v
	}
	switch v := val.(type) {
	case ir.Local:
		return operand{local: l.local(v)}, nil
	case ir.Bool:
		return operand{local: -1, c: ast.BooleanTerm(bool(v))}, nil
	case ir.StringIndex:
		if int(v) < 0 || int(v) >= len(l.strings) {
			return operand{}, fmt.Errorf("string index %d out of range", v)
		}
		return operand{local: -1, c: l.strings[v]}, nil
	}
	return operand{}, fmt.Errorf("unknown operand %T", o.Value)
}

func (l *loader) block(b *ir.Block) (*block, error) {
	out := &block{stmts: make([]stmt, 0, len(b.Stmts))}
	for _, s := range b.Stmts {
		ns, err := l.stmt(s)
		if err != nil {
			loc := s.GetLocation()
			return nil, fmt.Errorf("row %d: %w", loc.Row, err)
		}
		if ns != nil {
			out.stmts = append(out.stmts, ns)
		}
	}
	return out, nil
}

func (l *loader) blocks(bs []*ir.Block) ([]*block, error) {
	out := make([]*block, 0, len(bs))
	for _, b := range bs {
		nb, err := l.block(b)
		if err != nil {
			return nil, err
		}
		out = append(out, nb)
	}
	return out, nil
}

func (l *loader) stmt(s ir.Stmt) (stmt, error) {
	var err error
	op := func(o ir.Operand) operand {
		if err != nil {
			return operand{}
		}
		var x operand
		x, err = l.operand(o)
		return x
	}
	var out stmt
	switch s := s.(type) {
	case *ir.ReturnLocalStmt:
		out = &sReturn{src: l.local(s.Source)}
	case *ir.CallStmt:
		c := &sCall{result: l.local(s.Result)}
		for _, a := range s.Args {
			c.args = append(c.args, op(a))
		}
		if f, ok := l.byName[s.Func]; ok {
			c.fn = f
		} else {
			bi, berr := l.builtin(s.Func, s.GetLocation())
			if berr != nil {
				return nil, berr
			}
			c.bi = bi
		}
		out = c
	case *ir.CallDynamicStmt:
		c := &sCallDyn{result: l.local(s.Result)}
		for _, a := range s.Args {
			c.args = append(c.args, l.local(a))
		}
		for _, p := range s.Path {
			c.path = append(c.path, op(p))
		}
		out = c
	case *ir.BlockStmt:
		bs, berr := l.blocks(s.Blocks)
		if berr != nil {
			return nil, berr
		}
		out = &sBlock{blocks: bs}
	case *ir.BreakStmt:
		out = &sBreak{index: int(s.Index)}
	case *ir.DotStmt:
		out = &sDot{src: op(s.Source), key: op(s.Key), target: l.local(s.Target)}
	case *ir.LenStmt:
		out = &sLen{src: op(s.Source), target: l.local(s.Target)}
	case *ir.ScanStmt:
		body, berr := l.block(s.Block)
		if berr != nil {
			return nil, berr
		}
		out = &sScan{src: l.local(s.Source), key: l.local(s.Key), value: l.local(s.Value), body: body}
	case *ir.NotStmt:
		body, berr := l.block(s.Block)
		if berr != nil {
			return nil, berr
		}
		out = &sNot{body: body}
	case *ir.AssignIntStmt:
		out = &sConst{c: ast.IntNumberTerm(int(s.Value)), target: l.local(s.Target)}
	case *ir.AssignVarStmt:
		out = &sAssign{src: op(s.Source), target: l.local(s.Target)}
	case *ir.AssignVarOnceStmt:
		out = &sAssignOnce{src: op(s.Source), target: l.local(s.Target)}
	case *ir.ResetLocalStmt:
		out = &sReset{target: l.local(s.Target)}
	case *ir.MakeNullStmt:
		out = &sConst{c: ast.NullTerm(), target: l.local(s.Target)}
	case *ir.MakeNumberIntStmt:
		out = &sConst{c: ast.IntNumberTerm(int(s.Value)), target: l.local(s.Target)}
	case *ir.MakeNumberRefStmt:
		if s.Index < 0 || s.Index >= len(l.strings) {
			return nil, fmt.Errorf("number constant index %d out of range", s.Index)
		}
		out = &sConst{c: ast.NumberTerm(json.Number(string(l.strings[s.Index].Value.(ast.String)))), target: l.local(s.Target)}
	case *ir.MakeArrayStmt:
		out = &sMakeArray{capacity: int(s.Capacity), target: l.local(s.Target)}
	case *ir.MakeObjectStmt:
		out = &sMakeObject{target: l.local(s.Target)}
	case *ir.MakeSetStmt:
		out = &sMakeSet{target: l.local(s.Target)}
	case *ir.EqualStmt:
		out = &sEqual{a: op(s.A), b: op(s.B)}
	case *ir.NotEqualStmt:
		out = &sNotEqual{a: op(s.A), b: op(s.B)}
	case *ir.IsArrayStmt:
		out = &sIsArray{src: op(s.Source)}
	case *ir.IsObjectStmt:
		out = &sIsObject{src: op(s.Source)}
	case *ir.IsSetStmt:
		out = &sIsSet{src: op(s.Source)}
	case *ir.IsDefinedStmt:
		out = &sIsDefined{src: l.local(s.Source)}
	case *ir.IsUndefinedStmt:
		out = &sIsUndef{src: l.local(s.Source)}
	case *ir.ArrayAppendStmt:
		out = &sAppend{value: op(s.Value), array: l.local(s.Array)}
	case *ir.ObjectInsertStmt:
		out = &sInsert{key: op(s.Key), value: op(s.Value), object: l.local(s.Object)}
	case *ir.ObjectInsertOnceStmt:
		out = &sInsertOnce{key: op(s.Key), value: op(s.Value), object: l.local(s.Object)}
	case *ir.ObjectMergeStmt:
		out = &sMerge{a: l.local(s.A), b: l.local(s.B), target: l.local(s.Target)}
	case *ir.SetAddStmt:
		out = &sSetAdd{value: op(s.Value), set: l.local(s.Set)}
	case *ir.WithStmt:
		return nil, errors.New("`with` is not supported by this evaluator")
	case *ir.ResultSetAddStmt:
		out = &sResult{value: l.local(s.Value)}
	case *ir.NopStmt:
		return nil, nil
	default:
		return nil, fmt.Errorf("unsupported statement %T", s)
	}
	return out, err
}

func (l *loader) builtin(name string, loc *ir.Location) (*builtin, error) {
	decl, ok := ast.BuiltinMap[name]
	if !ok {
		return nil, fmt.Errorf("unknown built-in %s", name)
	}
	if l.prog.caps != nil && !capable(l.prog.caps, name) {
		return nil, fmt.Errorf("built-in %s is not allowed", name)
	}
	f := topdown.GetBuiltin(name)
	if f == nil {
		return nil, fmt.Errorf("built-in %s has no implementation", name)
	}
	bi := &builtin{name: name, f: f, fast: fast[name], void: decl.Decl.Result() == nil, relation: decl.Relation}
	if loc != nil {
		file := ""
		if loc.File >= 0 && loc.File < len(l.files) {
			file = l.files[loc.File]
		}
		bi.loc = &ast.Location{File: file, Row: loc.Row, Col: loc.Col, Text: []byte(loc.Text)}
	}
	return bi, nil
}

func capable(c *ast.Capabilities, name string) bool {
	for _, b := range c.Builtins {
		if b.Name == name {
			return true
		}
	}
	return false
}

// Control results of running a block.
const (
	fellThrough = -1 // reached the end of the block
	returned    = -2 // a ReturnLocalStmt ran
	// 0 means the block was left (a statement was undefined, or Break 0);
	// k > 0 means k more enclosing blocks are to be left.
)

// Error is an evaluation error (a conflict, a built-in's error, a
// cancellation), with the policy location where it happened if known.
type Error struct {
	Code     string
	Message  string
	Location *ast.Location
}

func (e *Error) Error() string {
	if e.Location != nil && e.Location.File != "" {
		return fmt.Sprintf("%s:%d: %s: %s", e.Location.File, e.Location.Row, e.Code, e.Message)
	}
	return e.Code + ": " + e.Message
}

// Options are per-evaluation settings.
type Options struct {
	// PrintHook receives print() output; nil drops it.
	PrintHook print.Hook
	// NonStrict turns built-in errors into undefined results, as topdown does
	// without StrictBuiltinErrors (halting errors still stop evaluation).
	NonStrict bool
	// Time is what time-dependent built-ins see; zero means now. (Study
	// policies cannot call them: they must be replayable.)
	Time time.Time
}

var noMetrics = metrics.NoOp()

// machine is one evaluation's state.
type machine struct {
	prog  *Program
	ctx   context.Context
	stack []*ast.Term
	memo  []*ast.Term
	known []bool
	bctx  topdown.BuiltinContext
	steps int
	args  [8]*ast.Term
	res   []*ast.Term
	ret   *ast.Term

	nonStrict bool

	// Built-in results arrive through iter, set once per evaluation.
	iter     func(*ast.Term) error
	out      *ast.Term
	rel      []*ast.Term
	relation bool
	arena    []*ast.Term
}

var resultKey = ast.StringTerm(ResultVar)

// Eval runs an entrypoint plan (see Plan) on input (nil: undefined) and data
// and returns the entrypoint's value: none when it is undefined.
func (p *Program) Eval(ctx context.Context, input, data ast.Value, opts Options) ([]ast.Value, error) {
	res, err := p.Results(ctx, input, data, opts)
	if err != nil {
		return nil, err
	}
	out := make([]ast.Value, 0, len(res))
	for _, r := range res {
		if v := r.Get(resultKey); v != nil {
			out = append(out, v.Value)
		}
	}
	return out, nil
}

// Results runs the plan and returns each result: an object of the planned
// query's variable bindings ({"result": value} for an entrypoint plan).
func (p *Program) Results(ctx context.Context, input, data ast.Value, opts Options) ([]ast.Object, error) {
	m := &machine{prog: p, ctx: ctx, nonStrict: opts.NonStrict}
	m.iter = func(t *ast.Term) error {
		if m.relation {
			m.rel = append(m.rel, t)
		} else {
			m.out = t
		}
		return nil
	}
	m.memo = make([]*ast.Term, len(p.funcs))
	m.known = make([]bool, len(p.funcs))
	now := opts.Time
	if now.IsZero() {
		now = time.Now()
	}
	// Long-running built-ins watch Cancel, as under topdown.
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	m.bctx = topdown.BuiltinContext{
		Cancel:       cancel,
		Context:      ctx,
		Cache:        builtins.Cache{},
		PrintHook:    opts.PrintHook,
		Seed:         zeroReader{},
		Time:         ast.NumberTerm(json.Number(strconv.FormatInt(now.UnixNano(), 10))),
		Metrics:      noMetrics,
		Capabilities: p.caps,
	}
	planFn := p.funcs[len(p.funcs)-1]
	frame := m.push(planFn.nlocals)
	if input != nil {
		frame[ir.Input] = ast.NewTerm(input)
	}
	frame[ir.Data] = ast.NewTerm(data)
	if _, err := m.block(frame, p.plan); err != nil {
		return nil, err
	}
	out := make([]ast.Object, 0, len(m.res))
	for _, r := range m.res {
		if obj, ok := r.Value.(ast.Object); ok {
			out = append(out, obj)
		}
	}
	return out, nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func (m *machine) push(n int) []*ast.Term {
	if cap(m.stack)-len(m.stack) < n {
		// Frames handed out earlier keep the old array; only new frames
		// use the new one.
		m.stack = make([]*ast.Term, 0, max(2*cap(m.stack), 256+n))
	}
	start := len(m.stack)
	m.stack = m.stack[:start+n]
	return m.stack[start : start+n : start+n]
}

func (m *machine) pop(frame []*ast.Term) {
	clear(frame)
	// Only the top frame can be popped in place.
	if len(m.stack) >= len(frame) && len(frame) > 0 && &m.stack[len(m.stack)-len(frame)] == &frame[0] {
		m.stack = m.stack[:len(m.stack)-len(frame)]
	}
}

func (m *machine) val(f []*ast.Term, o operand) *ast.Term {
	if o.local >= 0 {
		return f[o.local]
	}
	return o.c
}

func (m *machine) tick() error {
	m.steps++
	if m.steps&1023 == 0 {
		if err := m.ctx.Err(); err != nil {
			return &Error{Code: "eval_cancel_error", Message: "caller cancelled query execution: " + err.Error()}
		}
	}
	return nil
}

// block runs b on frame f; see the control results above.
func (m *machine) block(f []*ast.Term, b *block) (int, error) {
	for _, s := range b.stmts {
		switch s := s.(type) {
		case *sAssign:
			v := m.val(f, s.src)
			if v == nil {
				return 0, nil
			}
			f[s.target] = v
		case *sDot:
			src, key := m.val(f, s.src), m.val(f, s.key)
			if src == nil || key == nil {
				return 0, nil
			}
			v, err := dot(src, key)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			f[s.target] = v
		case *sCall:
			v, err := m.call(f, s)
			if err != nil {
				return 0, err
			}
			if v == nil {
				if s.bi != nil && s.bi.void {
					continue
				}
				return 0, nil
			}
			f[s.result] = v
		case *sNotEqual:
			a, b := m.val(f, s.a), m.val(f, s.b)
			if a == nil || b == nil || equal(a, b) {
				return 0, nil
			}
		case *sEqual:
			a, b := m.val(f, s.a), m.val(f, s.b)
			if a == nil || b == nil || !equal(a, b) {
				return 0, nil
			}
		case *sAssignOnce:
			v := m.val(f, s.src)
			if v == nil {
				return 0, nil
			}
			if cur := f[s.target]; cur != nil {
				if !equal(cur, v) {
					return 0, &Error{Code: "eval_conflict_error", Message: "complete rules must not produce multiple outputs"}
				}
				continue
			}
			f[s.target] = v
		case *sReset:
			f[s.target] = nil
		case *sConst:
			f[s.target] = s.c
		case *sBlock:
			for _, nb := range s.blocks {
				r, err := m.block(f, nb)
				if err != nil {
					return 0, err
				}
				if r == returned {
					return returned, nil
				}
				if r > 0 {
					return r - 1, nil
				}
			}
		case *sBreak:
			return s.index, nil
		case *sIsDefined:
			if f[s.src] == nil {
				return 0, nil
			}
		case *sIsUndef:
			if f[s.src] != nil {
				return 0, nil
			}
		case *sReturn:
			m.ret = f[s.src]
			return returned, nil
		case *sScan:
			r, err := m.scan(f, s)
			if err != nil || r != fellThrough {
				return r, err
			}
		case *sNot:
			r, err := m.block(f, s.body)
			if err != nil {
				return 0, err
			}
			if r == returned {
				return returned, nil
			}
			if r > 0 {
				return r - 1, nil
			}
			if r == fellThrough {
				return 0, nil
			}
		case *sMakeArray, *sMakeObject, *sMakeSet, *sAppend, *sInsert, *sInsertOnce, *sSetAdd,
			*sIsArray, *sIsObject, *sIsSet, *sLen, *sMerge:
			if ok, err := m.collection(f, s); !ok || err != nil {
				return 0, err
			}
		case *sResult:
			v := f[s.value]
			if v == nil {
				return 0, nil
			}
			m.res = append(m.res, v)
		case *sCallDyn:
			r, err := m.callDynamic(f, s)
			if err != nil || r >= 0 {
				return r, err
			}
		default:
			return 0, fmt.Errorf("irvm: unknown statement %T", s)
		}
	}
	return fellThrough, nil
}

// collection runs a statement that builds, adds to or tests a collection:
// false when the statement is undefined (the block ends there).
func (m *machine) collection(f []*ast.Term, s stmt) (bool, error) {
	switch s := s.(type) {
	case *sMakeArray:
		f[s.target] = ast.NewTerm(ast.NewArrayWithCapacity(s.capacity))
	case *sMakeObject:
		f[s.target] = ast.NewTerm(ast.NewObject())
	case *sMakeSet:
		f[s.target] = ast.NewTerm(ast.NewSet())
	case *sAppend:
		v := m.val(f, s.value)
		if v == nil {
			return false, nil
		}
		arr, ok := f[s.array].Value.(*ast.Array)
		if !ok {
			return false, conflict(f[s.array], "an array")
		}
		*arr = *arr.Append(v) // in place: the planner only appends to arrays it made
	case *sInsert:
		k, v := m.val(f, s.key), m.val(f, s.value)
		if k == nil || v == nil {
			return false, nil
		}
		obj, ok := f[s.object].Value.(ast.Object)
		if !ok {
			return false, conflict(f[s.object], "an object")
		}
		if obj.Get(k) != nil {
			// The planner writes a nested document back under its
			// key after adding to it. OPA's in-place update of an
			// existing key loses entries whose keys share its hash
			// and leaves the object's hash stale, so replace the
			// object with a fresh copy instead.
			f[s.object] = ast.NewTerm(replaced(obj, k, v))
			return true, nil
		}
		obj.Insert(k, v)
	case *sInsertOnce:
		k, v := m.val(f, s.key), m.val(f, s.value)
		if k == nil || v == nil {
			return false, nil
		}
		obj, ok := f[s.object].Value.(ast.Object)
		if !ok {
			return false, conflict(f[s.object], "an object")
		}
		if cur := obj.Get(k); cur != nil {
			if !equal(cur, v) {
				return false, &Error{Code: "eval_conflict_error", Message: "object keys must be unique"}
			}
			return true, nil
		}
		obj.Insert(k, v)
	case *sSetAdd:
		v := m.val(f, s.value)
		if v == nil {
			return false, nil
		}
		set, ok := f[s.set].Value.(ast.Set)
		if !ok {
			return false, conflict(f[s.set], "a set")
		}
		set.Add(v)
	case *sIsArray:
		v := m.val(f, s.src)
		if v == nil {
			return false, nil
		}
		if _, ok := v.Value.(*ast.Array); !ok {
			return false, nil
		}
	case *sIsObject:
		v := m.val(f, s.src)
		if v == nil {
			return false, nil
		}
		if _, ok := v.Value.(ast.Object); !ok {
			return false, nil
		}
	case *sIsSet:
		v := m.val(f, s.src)
		if v == nil {
			return false, nil
		}
		if _, ok := v.Value.(ast.Set); !ok {
			return false, nil
		}
	case *sLen:
		v := m.val(f, s.src)
		if v == nil {
			return false, nil
		}
		f[s.target] = ast.InternedTerm(length(v.Value))
	case *sMerge:
		a, b := f[s.a], f[s.b]
		if a == nil || b == nil {
			return false, nil
		}
		f[s.target] = merge(a, b)
	}
	return true, nil
}

// scan runs the body for each element of the source collection. It returns
// fellThrough to continue after the statement, or a control result for the
// enclosing block. The body is two block levels deep (the loop and the
// statement), as in OPA's Wasm compiler.
func (m *machine) scan(f []*ast.Term, s *sScan) (int, error) {
	// As in OPA's Wasm compiler, a scan over nothing (an empty collection,
	// a scalar) just continues after the statement.
	src := f[s.src]
	if src == nil {
		return fellThrough, nil
	}
	run := func(k, v *ast.Term) (stop bool, r int, err error) {
		if err := m.tick(); err != nil {
			return true, 0, err
		}
		f[s.key], f[s.value] = k, v
		r, err = m.block(f, s.body)
		switch {
		case err != nil:
			return true, 0, err
		case r == returned:
			return true, returned, nil
		case r == 1:
			return true, fellThrough, nil
		case r > 1:
			return true, r - 2, nil
		}
		return false, 0, nil
	}
	result := fellThrough
	var ferr error
	switch x := src.Value.(type) {
	case *ast.Array:
		for i := 0; i < x.Len(); i++ {
			stop, r, err := run(ast.InternedTerm(i), x.Elem(i))
			if stop {
				return r, err
			}
		}
	case ast.Object:
		x.Until(func(k, v *ast.Term) bool {
			stop, r, err := run(k, v)
			if stop {
				result, ferr = r, err
			}
			return stop
		})
	case ast.Set:
		x.Until(func(v *ast.Term) bool {
			stop, r, err := run(v, v)
			if stop {
				result, ferr = r, err
			}
			return stop
		})
	}
	return result, ferr
}

func (m *machine) call(f []*ast.Term, s *sCall) (*ast.Term, error) {
	if err := m.tick(); err != nil {
		return nil, err
	}
	if s.fn != nil {
		fn := s.fn
		if fn.memo && m.known[fn.index] {
			return m.memo[fn.index], nil
		}
		frame := m.push(fn.nlocals)
		for i, p := range fn.params {
			// An undefined argument is passed on: input may be undefined.
			frame[p] = m.val(f, s.args[i])
		}
		var ret *ast.Term
		for _, b := range fn.blocks {
			r, err := m.block(frame, b)
			if err != nil {
				m.pop(frame)
				return nil, err
			}
			if r == returned {
				ret = m.ret
				m.ret = nil
				break
			}
		}
		m.pop(frame)
		if fn.memo {
			m.memo[fn.index], m.known[fn.index] = ret, true
		}
		return ret, nil
	}
	bi := s.bi
	var args []*ast.Term
	if len(s.args) <= len(m.args) {
		args = m.args[:len(s.args)]
	} else {
		args = make([]*ast.Term, len(s.args))
	}
	for i, a := range s.args {
		v := m.val(f, a)
		if v == nil {
			return nil, nil
		}
		args[i] = v
	}
	if bi.fast != nil {
		if r, ok := bi.fast(args); ok {
			return r, nil
		}
	}
	// OPA's built-ins may keep their operands: each call gets its own
	// slice, cut from a per-evaluation arena.
	if len(m.arena) < len(args) {
		m.arena = make([]*ast.Term, max(256, len(args)))
	}
	own := m.arena[:len(args):len(args)]
	m.arena = m.arena[len(args):]
	copy(own, args)
	m.bctx.Location = bi.loc
	m.out, m.rel, m.relation = nil, nil, bi.relation
	if err := bi.f(m.bctx, own, m.iter); err != nil {
		if m.nonStrict && !topdown.IsCancel(err) {
			var halt topdown.Halt
			if !errors.As(err, &halt) {
				return nil, nil
			}
		}
		return nil, builtinError(bi, err)
	}
	if bi.relation {
		return ast.ArrayTerm(m.rel...), nil
	}
	return m.out, nil
}

func builtinError(bi *builtin, err error) error {
	var te *topdown.Error
	if errors.As(err, &te) {
		if te.Location == nil {
			te.Location = bi.loc
		}
		return te
	}
	return &topdown.Error{Code: topdown.BuiltinErr, Message: fmt.Sprintf("%v: %v", bi.name, err), Location: bi.loc}
}

func (m *machine) callDynamic(f []*ast.Term, s *sCallDyn) (int, error) {
	key := ""
	for i, p := range s.path {
		v := m.val(f, p)
		if v == nil {
			return 0, nil
		}
		str, ok := v.Value.(ast.String)
		if !ok {
			return 0, nil
		}
		if i > 0 {
			key += "\x00"
		}
		key += string(str)
	}
	fn, ok := m.prog.byPath[key]
	if !ok {
		return 0, nil // no such function: this block is undefined
	}
	args := make([]operand, len(s.args))
	for i, a := range s.args {
		args[i] = operand{local: a}
	}
	v, err := m.call(f, &sCall{fn: fn, args: args, result: s.result})
	if err != nil {
		return 0, err
	}
	if v == nil {
		return 3, nil // see the planner: an undefined result leaves the whole lookup
	}
	f[s.result] = v
	return -1, nil
}

// conflict reports a document that two rules define with different kinds
// of value (the planner only adds to the collections it made, so any other
// target means rules disagree), as topdown reports it.
func conflict(got *ast.Term, want string) error {
	kind := "an undefined value"
	if got != nil {
		kind = ast.ValueName(got.Value)
	}
	return &Error{Code: "eval_conflict_error", Message: fmt.Sprintf("rules define one document both as %s and as %s", want, kind)}
}

// replaced is a copy of obj with k bound to v.
func replaced(obj ast.Object, k, v *ast.Term) ast.Object {
	items := make([][2]*ast.Term, 0, obj.Len())
	obj.Foreach(func(k2, v2 *ast.Term) {
		if ast.KeyHashEqual(k2.Value, k.Value) {
			v2 = v
		}
		items = append(items, [2]*ast.Term{k2, v2})
	})
	return ast.NewObject(items...)
}

// ErrAmbiguousKey is returned for a lookup whose result depends on where
// the document came from: topdown reads data through its store, where a
// number key finds a string key with the same text and a string key can
// index an array, but looks input up by value. The plan does not say which
// document a value came from, so such a lookup is not guessed: the caller
// evaluates with topdown instead.
var ErrAmbiguousKey = &Error{Code: "irvm_ambiguous_key", Message: "a number key that matches a string key, or a string key into an array: the result depends on whether the document is data or input"}

func dot(src, key *ast.Term) (*ast.Term, error) {
	switch x := src.Value.(type) {
	case ast.Object:
		if v := x.Get(key); v != nil {
			return v, nil
		}
		if n, ok := key.Value.(ast.Number); ok && x.Get(ast.StringTerm(string(n))) != nil {
			return nil, ErrAmbiguousKey
		}
	case *ast.Array:
		switch k := key.Value.(type) {
		case ast.Number:
			i, ok := k.Int()
			if !ok || i < 0 || i >= x.Len() {
				return nil, nil
			}
			return x.Elem(i), nil
		case ast.String:
			if _, err := strconv.Atoi(string(k)); err == nil {
				return nil, ErrAmbiguousKey
			}
		}
	case ast.Set:
		if x.Contains(key) {
			return key, nil
		}
	}
	return nil, nil
}

func length(v ast.Value) int {
	switch x := v.(type) {
	case *ast.Array:
		return x.Len()
	case ast.Object:
		return x.Len()
	case ast.Set:
		return x.Len()
	case ast.String:
		return utf8.RuneCountInString(string(x))
	}
	return 0
}

func equal(a, b *ast.Term) bool {
	if a == b {
		return true
	}
	switch x := a.Value.(type) {
	case ast.Boolean:
		y, ok := b.Value.(ast.Boolean)
		return ok && x == y
	case ast.String:
		y, ok := b.Value.(ast.String)
		return ok && x == y
	}
	return ast.Compare(a.Value, b.Value) == 0
}

// merge merges b into a recursively; where both hold a value that is not an
// object on both sides, a's value is kept.
func merge(a, b *ast.Term) *ast.Term {
	oa, okA := a.Value.(ast.Object)
	ob, okB := b.Value.(ast.Object)
	if !okA || !okB {
		return a
	}
	out := oa.Copy()
	ob.Foreach(func(k, v *ast.Term) {
		if cur := out.Get(k); cur != nil {
			out.Insert(k, merge(cur, v))
			return
		}
		out.Insert(k, v)
	})
	return ast.NewTerm(out)
}
