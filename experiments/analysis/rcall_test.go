package analysis

import (
	"fmt"
	"strconv"
	"strings"
)

// rCall is a parsed R call of the reference files, such as
// `emee2(data = dat, id = "id", moderator_formula = ~home)`: its function
// name, named arguments and positional arguments (raw R text).
type rCall struct {
	fn         string
	named      map[string]string
	positional []string
}

// parseRCall parses `fn(arg, name = value, ...)` where values are strings,
// numbers, formulas, c(...) vectors, dat$column references or nested calls.
func parseRCall(s string) (*rCall, error) {
	s = strings.TrimSpace(s)
	open := strings.Index(s, "(")
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return nil, fmt.Errorf("not a call: %q", s)
	}
	c := &rCall{fn: strings.TrimSpace(s[:open]), named: map[string]string{}}
	for _, arg := range splitTopLevel(s[open+1 : len(s)-1]) {
		if arg == "" {
			continue
		}
		if k, v, ok := strings.Cut(arg, "="); ok && isRName(strings.TrimSpace(k)) && !strings.HasPrefix(strings.TrimSpace(v), "=") {
			c.named[strings.TrimSpace(k)] = strings.TrimSpace(v)
			continue
		}
		c.positional = append(c.positional, arg)
	}
	return c, nil
}

func isRName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// splitTopLevel splits s at the commas outside parentheses and quotes.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	inStr := false
	for i, r := range s {
		switch {
		case r == '"':
			inStr = !inStr
		case inStr:
		case r == '(':
			depth++
		case r == ')':
			depth--
		case r == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// str returns a string argument ("id" -> id); ok is false when absent.
func (c *rCall) str(name string) (string, bool) {
	v, ok := c.named[name]
	if !ok {
		return "", false
	}
	return unquote(v), true
}

// strs sets each target to its string argument (left empty when absent).
func (c *rCall) strs(targets map[string]*string) {
	for name, to := range targets {
		*to, _ = c.str(name)
	}
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// prob returns a probability argument: a quoted column, a number or
// dat$column.
func (c *rCall) prob(name string) (Prob, error) {
	v, ok := c.named[name]
	if !ok {
		return Prob{}, nil
	}
	return rProb(v)
}

func rProb(v string) (Prob, error) {
	if col, ok := strings.CutPrefix(v, "dat$"); ok {
		return Prob{Column: col}, nil
	}
	if strings.HasPrefix(v, `"`) {
		return Prob{Column: unquote(v)}, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return Prob{}, fmt.Errorf("probability %q is neither a column nor a number", v)
	}
	return Prob{Value: f}, nil
}

// formula returns the variables of a right-hand-side formula of plain
// columns (`~ x1 + day`, `~1`).
func rFormula(v string) ([]string, error) {
	rhs, ok := strings.CutPrefix(strings.TrimSpace(v), "~")
	if !ok {
		return nil, fmt.Errorf("%q is not a one-sided formula", v)
	}
	var out []string
	for _, term := range strings.Split(rhs, "+") {
		term = strings.TrimSpace(term)
		if term == "1" {
			continue
		}
		if !isRName(term) {
			return nil, fmt.Errorf("formula %q: term %q is not a plain column", v, term)
		}
		out = append(out, term)
	}
	return out, nil
}

func (c *rCall) formula(name string) ([]string, error) {
	v, ok := c.named[name]
	if !ok {
		return nil, fmt.Errorf("%s: no %s", c.fn, name)
	}
	return rFormula(v)
}

// vector returns a c(...) argument (or a single number) as numbers; nil
// when absent.
func (c *rCall) vector(name string) ([]float64, error) {
	v, ok := c.named[name]
	if !ok {
		return nil, nil
	}
	if inner, ok := strings.CutPrefix(v, "c("); ok {
		v = strings.TrimSuffix(inner, ")")
	}
	return ParseLincomb(v)
}
