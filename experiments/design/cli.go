package design

import (
	"fmt"
	"strconv"
	"strings"
)

// Request is a design as a front end (the jitai design command) asks for
// it: Factors, and a run size, a resolution or generators (or generators
// with a run size or a resolution to check them against).
type Request struct {
	Factors int
	// Runs is the run size; 0 when not given.
	Runs int
	// Resolution is the wanted resolution; 0 when not given.
	Resolution int
	// Generators, when given, define the design ("E=ABC" or Yates
	// columns "7"); otherwise it is found by search.
	Generators []string
}

// Build returns the design of r: the one its generators define (checked
// against Runs and Resolution when those are given), else the
// minimum-aberration design in Runs runs, else the smallest run size that
// reaches Resolution. A request that cannot be met is an *InputError that
// names the field.
func (o Options) Build(r Request) (*Design, error) {
	switch {
	case r.Runs != 0 && r.Resolution != 0 && r.Generators == nil:
		return nil, inputErr("runs", "give --runs or --resolution, not both")
	case r.Generators != nil:
		if r.Runs != 0 {
			q, err := runsExponent(r.Factors, r.Runs)
			if err != nil {
				return nil, err
			}
			if want := r.Factors - q; len(r.Generators) != want {
				return nil, inputErr("generators", "%d generators given; %d factors in %d runs need %d", len(r.Generators), r.Factors, r.Runs, want)
			}
		}
		d, err := FromGenerators(r.Factors, r.Generators)
		if err != nil {
			return nil, err
		}
		if r.Resolution != 0 && d.Resolution() != 0 && d.Resolution() < r.Resolution {
			return nil, inputErr("resolution", "the generators give resolution %s, below %s", Roman(d.Resolution()), Roman(r.Resolution))
		}
		return d, nil
	case r.Runs != 0:
		return o.MinimumAberration(r.Factors, r.Runs)
	}
	return o.ForResolution(r.Factors, r.Resolution)
}

// ParseResolution reads a resolution written 4 or IV.
func ParseResolution(s string) (int, error) {
	s = strings.TrimSpace(s)
	if v, err := strconv.Atoi(s); err == nil {
		return v, nil
	}
	for v := 1; v < 40; v++ {
		if strings.EqualFold(Roman(v), s) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%q is not a resolution (3, 4, 5, ... or III, IV, V, ...)", s)
}
