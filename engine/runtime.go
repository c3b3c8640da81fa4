package engine

import (
	"sync/atomic"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/policies"
)

// StudyRuntime is a study as the service runs it: the decision runtime,
// plus its in-flight count for hot reload and its plugins.
type StudyRuntime struct {
	*decision.Runtime
	// life counts in-flight decisions for hot reload (reload.go).
	life lifecycle
	// plugins are the study's running plugins (nil without any, or
	// without a plugin host); see plugins.go.
	plugins StudyPlugins
	// learners are the probability plugins that learn from an outcome.
	learners []learner
	// hooks are the service's parts of this study's live decisions.
	hooks decision.Hooks
	// designPinned: this version's between-person design is the one pinned
	// in the store (pins.go).
	designPinned atomic.Bool
	// channels are the study's delivery channels in order (nil without a
	// delivery section); see deliver.go.
	channels []delivery.Channel
	// needDevices: some channel sends to devices (delivery.NeedsDevices).
	needDevices bool
}

// newStudyRuntime prepares a loaded study for decisions by the service.
func newStudyRuntime(s *policies.Study) (*StudyRuntime, error) {
	r, err := decision.NewRuntime(s)
	if err != nil {
		return nil, err
	}
	return &StudyRuntime{Runtime: r, learners: learnersOf(s.Config)}, nil
}
