package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// DesignPinName is the name under which a study's between-person design is
// pinned in the store (trial.Pins) at its first enrolment.
const DesignPinName = "design"

// PinnedDesign returns the between-person design pinned for study, or
// trial.ErrNotFound before its first enrolment.
func PinnedDesign(ctx context.Context, pins trial.Pins, study string) (policies.DesignPin, error) {
	stored, err := pins.Pinned(ctx, study, DesignPinName)
	if err != nil {
		return policies.DesignPin{}, err
	}
	return parseDesignPin(study, stored)
}

// parseDesignPin decodes the design pin stored for study.
func parseDesignPin(study string, stored []byte) (policies.DesignPin, error) {
	pin, err := policies.ParseDesignPin(stored)
	if err != nil {
		return policies.DesignPin{}, fmt.Errorf("the design pinned for study %s: %w", study, err)
	}
	return pin, nil
}

// DesignPins is a LoadOptions.PinnedDesign that reads the pins of a store:
// a study then loads with the design its participants were assigned from.
func DesignPins(ctx context.Context, pins trial.Pins) func(study string) (*policies.DesignPin, error) {
	return func(study string) (*policies.DesignPin, error) {
		pin, err := PinnedDesign(ctx, pins, study)
		if errors.Is(err, trial.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &pin, nil
	}
}

// checkDesignPin verifies a loaded study against the between-person design
// pinned for it, if one is and the loader did not check it already: a study
// whose participants were assigned from one design must not be served with
// another. A store that cannot answer now defers the check to the first
// enrolment.
func (e *Engine) checkDesignPin(ctx context.Context, s *policies.Study) error {
	if s.PinChecked() || len(s.Config.FactorsOf(policies.Between)) == 0 {
		return nil
	}
	pinned, err := PinnedDesign(ctx, e.store, s.Config.ID)
	switch {
	case errors.Is(err, trial.ErrNotFound):
		return nil
	case errors.Is(err, trial.ErrUnavailable):
		e.log.Warn("the store is unavailable: the study's between-person design is checked against its pin at the next enrolment")
		return nil
	case err != nil:
		return err
	}
	if err := s.VerifyDesignPin(pinned); err != nil {
		return fmt.Errorf("study %s: %w", s.Config.ID, err)
	}
	return nil
}

// pinDesign pins the study's between-person design at its first enrolment
// (the first writer wins across engines) and refuses to enrol into a
// version of the study whose design is not the pinned one.
func (e *Engine) pinDesign(ctx context.Context, rt *StudyRuntime) error {
	if rt.designPinned.Load() || len(rt.BetweenFactors()) == 0 {
		return nil
	}
	pin, err := rt.Study.DesignPin()
	if err != nil {
		return fmt.Errorf("describing the between-person design of study %s: %w", rt.Config.ID, err)
	}
	b, err := json.Marshal(pin)
	if err != nil {
		return fmt.Errorf("encoding the design pin of study %s: %w", rt.Config.ID, err)
	}
	stored, err := e.store.Pin(ctx, rt.Config.ID, DesignPinName, b)
	if err != nil {
		return fmt.Errorf("pinning the between-person design: %w", err)
	}
	pinned, err := parseDesignPin(rt.Config.ID, stored)
	if err != nil {
		return err
	}
	if err := rt.Study.VerifyDesignPin(pinned); err != nil {
		return fmt.Errorf("study %s: %w", rt.Config.ID, err)
	}
	rt.designPinned.Store(true)
	return nil
}
