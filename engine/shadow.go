package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// Shadowing a candidate (docs/study.md "Shadowing a candidate"). A designer
// posts a candidate version of a serving study, or puts one in the study's
// shadow/ folder. Every decision the engine records afterwards is also
// evaluated with the candidate, after its commit and off the request's path:
// the participant's answer and record are exactly what they would be without
// the shadow. The candidate sees the logged input with its own study
// settings, and the logged decision's draws (decision.Candidate), so a
// difference is what the candidate changes. Differences are kept and
// summarised by reason, rule and decision point until the designer promotes
// the candidate (its files replace the study's and the study reloads,
// through the same gate as any reload) or drops it.
//
// The shadow lives in the engine process: with several engines, each
// summarises the decisions it made.

// ShadowFolder is the folder, inside a study's folder, that holds a
// candidate version the watcher shadows.
const ShadowFolder = "shadow"

// Bounds of a shadow.
const (
	// shadowQueue is how many recorded decisions may wait for the
	// candidate; beyond it they are counted as dropped, never waited for.
	shadowQueue = 4096
	// shadowKeepDiffs is how many changed decisions are kept in full.
	shadowKeepDiffs = 10000
)

// ErrNoShadow says the study has no candidate being shadowed.
var ErrNoShadow = errors.New("the study has no shadowed candidate")

// CandidateError says a posted candidate is not a valid study version; the
// serving version and any earlier candidate are unchanged.
type CandidateError struct {
	// Field names the offending file (files["policy/x.rego"]) or is empty.
	Field  string
	Errors []string
}

func (e *CandidateError) Error() string {
	return fmt.Sprintf("the candidate was refused: %d problem(s): %s", len(e.Errors), e.Errors[0])
}

// ShadowReport is what a shadow found (GET /v1/studies/{study}/shadow).
type ShadowReport struct {
	Study             string `json:"study"`
	CandidateRevision string `json:"candidate_revision"`
	ServingRevision   string `json:"serving_revision"`
	// Source is "posted" or the candidate's folder.
	Source  string    `json:"source"`
	Started time.Time `json:"started_at"`
	// Decisions counts the recorded decisions evaluated with the candidate;
	// Changed those whose action, reasons or option change.
	Decisions int `json:"decisions"`
	Changed   int `json:"changed"`
	// Skipped counts decisions not evaluated: missed points (no policy was
	// evaluated) and fail-safe decisions (the serving policy failed).
	Skipped int `json:"skipped"`
	// Failed counts decisions the candidate could not evaluate (its policy
	// failed on them); the first ones are among Diffs with their error.
	Failed int `json:"failed"`
	// Dropped counts decisions that found the candidate's queue full.
	Dropped int `json:"dropped"`
	// Changes counts changed decisions by what changed (action, reasons,
	// option); Transitions by logged and candidate action.
	Changes     map[string]int     `json:"changes"`
	Transitions []ShadowTransition `json:"transitions"`
	// ByReason counts reasons the candidate adds (+quiet_hours) or removes
	// (-quiet_hours); ByRule the rules whose values change; ByPoint the
	// changed decisions by decision point.
	ByReason map[string]int `json:"by_reason"`
	ByRule   map[string]int `json:"by_rule"`
	ByPoint  map[string]int `json:"by_decision_point"`
	// Diffs are the changed decisions (the first shadowKeepDiffs), in the
	// order they were recorded.
	Diffs     []ShadowDiff `json:"diffs"`
	Truncated bool         `json:"diffs_truncated,omitempty"`
}

// ShadowTransition counts decisions by (logged action, candidate action).
type ShadowTransition struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Decisions int    `json:"decisions"`
}

// ShadowDiff is one decision the candidate would have made differently.
type ShadowDiff struct {
	DecisionID    string    `json:"decision_id"`
	Participant   string    `json:"participant_id"`
	DecisionPoint string    `json:"decision_point"`
	Time          time.Time `json:"time"`
	LocalTime     string    `json:"local_time"`
	Changes       []string  `json:"changes"`
	OldAction     string    `json:"old_action"`
	NewAction     string    `json:"new_action,omitempty"`
	OldReasons    []string  `json:"old_reasons"`
	NewReasons    []string  `json:"new_reasons"`
	OldOption     string    `json:"old_option,omitempty"`
	NewOption     string    `json:"new_option,omitempty"`
	Rules         []string  `json:"changed_rules,omitempty"`
	// Error is why the candidate could not evaluate the decision.
	Error string `json:"error,omitempty"`
}

// shadow is one study's candidate and what it found.
type shadow struct {
	study *policies.Study
	dir   string // the candidate's files (promote copies them)
	src   string
	// cands are the candidate prepared against each serving revision.
	cands map[string]*decision.Candidate
	queue chan shadowItem
	done  chan struct{}

	mu  sync.Mutex
	rep ShadowReport
	// trans counts transitions by (from, to).
	trans map[[2]string]int
	// temp: dir is the engine's own copy of a posted candidate.
	temp bool
}

// shadowItem is a recorded decision, or a barrier (flush) for tests.
type shadowItem struct {
	rec   *trial.Record
	flush chan struct{}
}

// shadows are the engine's shadows by study. Every recorded decision looks
// its study up (shadowDecision), so the map is read without a lock: writers
// (rare) swap in a changed copy under mu.
type shadows struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]*shadow]
}

// get is the study's shadow, or nil.
func (ss *shadows) get(study string) *shadow {
	if m := ss.m.Load(); m != nil {
		return (*m)[study]
	}
	return nil
}

// swap sets (sh != nil) or removes (sh == nil) the study's shadow and
// returns the one it replaces.
func (ss *shadows) swap(study string, sh *shadow) *shadow {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	m := map[string]*shadow{}
	if cur := ss.m.Load(); cur != nil {
		m = maps.Clone(*cur)
	}
	old := m[study]
	if sh == nil {
		delete(m, study)
	} else {
		m[study] = sh
	}
	ss.m.Store(&m)
	return old
}

// takeAll removes every shadow and returns them.
func (ss *shadows) takeAll() []*shadow {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []*shadow
	if cur := ss.m.Swap(nil); cur != nil {
		for _, sh := range *cur {
			out = append(out, sh)
		}
	}
	return out
}

// ShadowCandidate loads the candidate version in dir (through the engine's
// loader: the same checks and test gate as a reload) and shadows it for its
// study, replacing an earlier candidate. source is "posted" or the folder.
func (e *Engine) ShadowCandidate(ctx context.Context, dir, source string) (*ShadowReport, error) {
	s, err := e.reload.load(ctx, dir)
	if err != nil {
		return nil, &CandidateError{Errors: errorLines(err)}
	}
	rt, ok := e.Study(s.Config.ID)
	if !ok {
		return nil, fmt.Errorf("candidate of study %q: %w", s.Config.ID, ErrUnknownStudy)
	}
	sh := &shadow{study: s, dir: dir, src: source, cands: map[string]*decision.Candidate{},
		queue: make(chan shadowItem, shadowQueue), done: make(chan struct{}), trans: map[[2]string]int{}, temp: source == "posted"}
	sh.rep = ShadowReport{Study: s.Config.ID, CandidateRevision: s.Revision, ServingRevision: rt.Revision, Source: source,
		Started: e.now().UTC(), Changes: map[string]int{}, ByReason: map[string]int{}, ByRule: map[string]int{}, ByPoint: map[string]int{}, Diffs: []ShadowDiff{}}
	if _, err := sh.candidate(ctx, rt.Runtime); err != nil {
		return nil, &CandidateError{Errors: errorLines(err)}
	}
	go e.runShadow(sh)
	if old := e.shadows.swap(s.Config.ID, sh); old != nil {
		old.stop()
	}
	e.log.Info("shadowing a candidate", zap.String("study", s.Config.ID), zap.String("candidate_revision", s.Revision), zap.String("source", source))
	return sh.report(), nil
}

// PostCandidate writes a posted candidate's files (study.yaml, policy/*.rego,
// scenarios/*) to a folder of the engine's own and shadows it.
func (e *Engine) PostCandidate(ctx context.Context, study string, files map[string][]byte) (*ShadowReport, error) {
	if _, ok := e.Study(study); !ok {
		return nil, ErrUnknownStudy
	}
	if err := checkCandidateFiles(files); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "jitai-candidate-")
	if err != nil {
		return nil, err
	}
	dir = filepath.Join(dir, study)
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, err
		}
	}
	rep, err := e.ShadowCandidate(ctx, dir, "posted")
	if err == nil && rep.Study != study {
		_ = e.DropShadow(rep.Study)
		err = &CandidateError{Field: "files[\"study.yaml\"]", Errors: []string{fmt.Sprintf("study.yaml: the candidate is study %q, posted for study %q", rep.Study, study)}}
	}
	if err != nil {
		_ = os.RemoveAll(filepath.Dir(dir))
		return nil, err
	}
	return rep, nil
}

// candidateFile is a file name a posted candidate may hold.
var candidateFile = regexp.MustCompile(`^(study\.yaml|policy/[A-Za-z0-9_.-]+\.rego|scenarios/[A-Za-z0-9_.-]+\.(yaml|yml|json))$`)

func checkCandidateFiles(files map[string][]byte) error {
	if _, ok := files["study.yaml"]; !ok {
		return &CandidateError{Field: "files", Errors: []string{"files: the candidate has no study.yaml"}}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !candidateFile.MatchString(name) || filepath.Base(name) == ".." {
			return &CandidateError{Field: fmt.Sprintf("files[%q]", name), Errors: []string{fmt.Sprintf("files[%q]: not a file of a study: want study.yaml, policy/NAME.rego or scenarios/NAME.yaml", name)}}
		}
	}
	return nil
}

// Shadow reports the study's shadowed candidate (ErrNoShadow without one).
func (e *Engine) Shadow(study string) (*ShadowReport, error) {
	sh := e.shadowOf(study)
	if sh == nil {
		return nil, ErrNoShadow
	}
	return sh.report(), nil
}

// DropShadow stops shadowing the study's candidate.
func (e *Engine) DropShadow(study string) error {
	sh := e.shadows.swap(study, nil)
	if sh == nil {
		return ErrNoShadow
	}
	sh.stop()
	return nil
}

// PromoteShadow makes the candidate the study's serving version: its files
// replace the study folder's (study.yaml and the policy; files of the
// policy folder the candidate does not have are removed) and the study
// reloads through the same gate as any reload. The shadow ends when the
// reload succeeds; a refused reload changes nothing being served.
func (e *Engine) PromoteShadow(ctx context.Context, study string) (*ReloadAttempt, error) {
	sh := e.shadowOf(study)
	if sh == nil {
		return nil, ErrNoShadow
	}
	rt, ok := e.Study(study)
	if !ok {
		return nil, ErrUnknownStudy
	}
	if err := copyStudyFiles(sh.dir, rt.Dir); err != nil {
		return nil, fmt.Errorf("promoting the candidate: %w", err)
	}
	a, err := e.ReloadStudy(ctx, study)
	if err != nil {
		return a, err
	}
	_ = e.DropShadow(study)
	if sh.src != "posted" {
		// The candidate now serves: its folder would shadow the serving
		// version against itself.
		_ = os.RemoveAll(sh.dir)
	}
	return a, nil
}

// FlushShadow waits until the study's candidate has evaluated every
// decision recorded before the call (tests and the console use it).
func (e *Engine) FlushShadow(ctx context.Context, study string) error {
	sh := e.shadowOf(study)
	if sh == nil {
		return ErrNoShadow
	}
	done := make(chan struct{})
	select {
	case sh.queue <- shadowItem{flush: done}:
	case <-sh.done:
		return ErrNoShadow
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-sh.done:
		return ErrNoShadow
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) shadowOf(study string) *shadow {
	return e.shadows.get(study)
}

// shadowDecision hands a freshly recorded decision to the study's candidate,
// never waiting: a full queue counts the decision as dropped.
func (e *Engine) shadowDecision(rec *trial.Record) {
	sh := e.shadowOf(rec.Study)
	if sh == nil {
		return
	}
	select {
	case sh.queue <- shadowItem{rec: rec}:
	default:
		sh.mu.Lock()
		sh.rep.Dropped++
		sh.mu.Unlock()
	}
}

// runShadow evaluates the queued decisions with the candidate until the
// shadow stops.
func (e *Engine) runShadow(sh *shadow) {
	for {
		select {
		case <-sh.done:
			return
		case it := <-sh.queue:
			if it.flush != nil {
				close(it.flush)
				continue
			}
			e.shadowOne(sh, it.rec)
		}
	}
}

func (sh *shadow) stop() {
	close(sh.done)
	if sh.temp {
		_ = os.RemoveAll(filepath.Dir(sh.dir))
	}
}

// candidate is the candidate prepared against a serving version.
func (sh *shadow) candidate(ctx context.Context, serving *decision.Runtime) (*decision.Candidate, error) {
	if c := sh.cands[serving.Revision]; c != nil {
		return c, nil
	}
	crt, err := decision.NewRuntime(sh.study)
	if err != nil {
		return nil, err
	}
	c, err := decision.NewCandidate(ctx, serving, crt)
	if err != nil {
		return nil, err
	}
	sh.cands[serving.Revision] = c
	return c, nil
}

// shadowOne evaluates one recorded decision with the candidate.
func (e *Engine) shadowOne(sh *shadow, rec *trial.Record) {
	if decision.IsMissed(rec) || decision.IsFailSafe(rec) {
		sh.mu.Lock()
		sh.rep.Skipped++
		sh.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.policyTimeout+time.Second)
	defer cancel()
	var out *decision.Outcome
	serving, ok := e.StudyAt(rec.Study, rec.PolicyRevision)
	var err error
	if !ok {
		err = fmt.Errorf("revision %s of the study is no longer kept", rec.PolicyRevision)
	} else {
		var c *decision.Candidate
		if c, err = sh.candidate(ctx, serving.Runtime); err == nil {
			out, err = c.Evaluate(ctx, rec)
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.rep.Decisions++
	if err != nil {
		sh.rep.Failed++
		sh.keep(ShadowDiff{DecisionID: rec.ID, Participant: rec.Participant, DecisionPoint: rec.DecisionPoint, Time: rec.Time,
			LocalTime: rec.LocalTime, OldAction: rec.Action, OldReasons: nonNil(rec.Reasons), NewReasons: []string{}, Error: err.Error()})
		return
	}
	cur := out.Replayed
	sh.trans[[2]string{rec.Action, cur.Action}]++
	if len(out.Changes) == 0 {
		return
	}
	sh.rep.Changed++
	for _, c := range out.Changes {
		sh.rep.Changes[c]++
	}
	for _, r := range reasonDelta(rec, cur) {
		sh.rep.ByReason[r]++
	}
	for _, r := range out.Rules {
		sh.rep.ByRule[r]++
	}
	sh.rep.ByPoint[rec.DecisionPoint]++
	sh.keep(ShadowDiff{DecisionID: rec.ID, Participant: rec.Participant, DecisionPoint: rec.DecisionPoint, Time: rec.Time,
		LocalTime: rec.LocalTime, Changes: out.Changes, OldAction: rec.Action, NewAction: cur.Action,
		OldReasons: nonNil(rec.Reasons), NewReasons: nonNil(cur.Reasons), OldOption: decision.OptionOf(rec), NewOption: decision.OptionOf(cur), Rules: out.Rules})
}

// keep adds a diff while there is room (under sh.mu).
func (sh *shadow) keep(d ShadowDiff) {
	if len(sh.rep.Diffs) >= shadowKeepDiffs {
		sh.rep.Truncated = true
		return
	}
	sh.rep.Diffs = append(sh.rep.Diffs, d)
}

// report is a copy of what the shadow found so far.
func (sh *shadow) report() *ShadowReport {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := sh.rep
	r.Changes, r.ByReason, r.ByRule, r.ByPoint = maps.Clone(r.Changes), maps.Clone(r.ByReason), maps.Clone(r.ByRule), maps.Clone(r.ByPoint)
	r.Diffs = slices.Clone(r.Diffs)
	r.Transitions = []ShadowTransition{}
	for k, n := range sh.trans {
		r.Transitions = append(r.Transitions, ShadowTransition{From: k[0], To: k[1], Decisions: n})
	}
	sort.Slice(r.Transitions, func(i, j int) bool {
		a, b := r.Transitions[i], r.Transitions[j]
		if a.From != b.From {
			return a.From < b.From
		}
		return a.To < b.To
	})
	return &r
}

// reasonDelta lists the reasons (of the decision, safety and availability)
// the candidate adds (+r) or removes (-r).
func reasonDelta(old, cur *trial.Record) []string {
	all := func(r *trial.Record) []string {
		s := slices.Concat(r.Reasons, r.SafetyReasons, r.UnavailableReasons)
		slices.Sort(s)
		return slices.Compact(s)
	}
	a, b := all(old), all(cur)
	var out []string
	for _, r := range b {
		if !slices.Contains(a, r) {
			out = append(out, "+"+r)
		}
	}
	for _, r := range a {
		if !slices.Contains(b, r) {
			out = append(out, "-"+r)
		}
	}
	return out
}

// copyStudyFiles copies a candidate's study.yaml, policy/*.rego and
// scenarios/* over the study folder, each file written whole and renamed
// into place; policy files the candidate does not have are removed, so the
// folder holds exactly the candidate's policy.
func copyStudyFiles(from, to string) error {
	var files []string
	for _, pat := range []string{"study.yaml", "policy/*.rego", "scenarios/*"} {
		m, err := filepath.Glob(filepath.Join(from, pat))
		if err != nil {
			return err
		}
		files = append(files, m...)
	}
	keep := map[string]bool{}
	for _, f := range files {
		rel, err := filepath.Rel(from, f)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		keep[dst] = true
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		tmp := dst + ".promote"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	}
	old, err := filepath.Glob(filepath.Join(to, "policy", "*.rego"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if !keep[f] {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
