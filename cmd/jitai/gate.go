package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/jitai/jitai/policies"
)

// gateStudy runs a study version's own Rego tests and scenario files, as
// `jitai study test` does, and refuses the version if any fails: a reload
// (watch, SIGHUP or POST .../reload) never puts a version that fails its
// own tests in front of participants. The errors name each failing test or
// case with its file and line; the last good version keeps serving.
func gateStudy(ctx context.Context, s *policies.Study) error {
	var errs policies.ConfigErrors
	results, err := s.RunTests(ctx)
	if err != nil {
		return fmt.Errorf("running the study's Rego tests: %w", err)
	}
	for _, r := range results {
		if !r.Pass && !r.Skip {
			errs = append(errs, &policies.ConfigError{File: r.File, Line: r.Line, Msg: fmt.Sprintf("Rego test %s fails: %s (a reload runs the study's tests and refuses a version that fails them)", r.Name, r.Err)})
		}
	}
	scen, err := runScenarios(ctx, s, filepath.Base(s.Dir))
	if err != nil {
		var ce policies.ConfigErrors
		if !errors.As(err, &ce) {
			return fmt.Errorf("running the study's scenarios: %w", err)
		}
		errs = append(errs, ce...)
	}
	for _, r := range scen {
		for _, f := range r.Failures {
			errs = append(errs, &policies.ConfigError{File: r.File, Line: f.Line, Msg: fmt.Sprintf("scenario %q fails: %s (a reload runs the study's scenarios and refuses a version that fails them)", r.Name, f.Msg)})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
