package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/policies"
)

// The engine's view of out-of-process plugins (docs/architecture.md,
// docs/plugins.md). The engine owns these narrow interfaces; plugins/host
// implements them with hashicorp/go-plugin, so the engine itself does not
// depend on go-plugin or gRPC. Implementations enforce each plugin's
// deadline and fail fast while a plugin is down; the engine applies the
// declared fallback and records it.

// ErrPluginUnavailable is returned (wrapped) by a plugin call while the
// plugin is not running (crashed and waiting to be restarted, or closed).
var ErrPluginUnavailable = errors.New("plugin unavailable")

// Enricher derives tailoring variables for a decision.
type Enricher interface {
	// Enrich returns the derived variables (a decoded JSON object) from
	// the policy input document (JSON, without "derived").
	Enrich(ctx context.Context, d decision.PluginDecision, input []byte) (map[string]any, error)
}

// ProbabilityQuery is what a probability provider is asked.
type ProbabilityQuery struct {
	Factor  string
	Bounds  [2]float64
	Default float64
	// Input is the policy input document (JSON, with "derived").
	Input []byte
}

// OutcomeReport is a proximal outcome value observed after a decision, for
// a probability provider to learn from.
type OutcomeReport struct {
	Decision    decision.PluginDecision
	Factor      string
	Level       int
	Probability float64
	FromPlugin  bool
	Outcome     string
	Value       float64
	ObservedAt  time.Time
}

// ProbabilityProvider gives P(level 1) of a within-person factor and
// learns from outcomes.
type ProbabilityProvider interface {
	Probability(ctx context.Context, d decision.PluginDecision, q ProbabilityQuery) (float64, error)
	Outcome(ctx context.Context, o OutcomeReport) error
}

// Notification is a committed decision handed to a notifier.
type Notification struct {
	// ID is stable across redeliveries (the decision id and the plugin).
	ID           string                  `json:"id"`
	Decision     decision.PluginDecision `json:"decision"`
	Action       string                  `json:"action"`
	Reasons      []string                `json:"reasons,omitempty"`
	Intervention string                  `json:"intervention,omitempty"`
}

// Notifier acts on committed decisions out of band.
type Notifier interface {
	// Notify hands a committed decision over. It must not block: the
	// implementation delivers asynchronously, at least once, with retries
	// and a dead-letter record.
	Notify(n Notification)
}

// StudyPlugins are the running plugins of one loaded study version. A
// getter returns nil for a name that is not a plugin of that kind.
type StudyPlugins interface {
	Enricher(name string) Enricher
	ProbabilityProvider(name string) ProbabilityProvider
	Notifier(name string) Notifier
	// Version is the version the named plugin reported when it started
	// ("" when it has not started).
	Version(name string) string
	// Close stops the plugins; notifications not yet delivered stay
	// pending on disk. It may be called more than once.
	Close() error
}

// PluginEraser is an optional interface of StudyPlugins: it deletes what
// the plugins (and the host, such as a notifier's pending and dead-lettered
// notifications) keep about one participant. The engine calls it when a
// participant's data are erased.
type PluginEraser interface {
	EraseParticipant(ctx context.Context, study, participant string) error
}

// ErasePluginData erases what the study's plugins keep about participant,
// if its plugins can (PluginEraser); nil if it has none.
func (rt *StudyRuntime) ErasePluginData(ctx context.Context, participant string) error {
	if er, ok := rt.plugins.(PluginEraser); ok {
		return er.EraseParticipant(ctx, rt.Config.ID, participant)
	}
	return nil
}

// PluginFactory starts the plugins a study declares, once per loaded study
// version (also on reload), or fails the load (a checksum mismatch, a
// plugin that does not start).
type PluginFactory func(s *policies.Study) (StudyPlugins, error)

// PluginObserver is an optional interface of an Observer: it receives every
// plugin call. kind is enricher, probability or notifier; call is the RPC
// (enrich, probability, outcome, notify); outcome is ok, timeout,
// unavailable, error or invalid. Labels never hold participant ids.
type PluginObserver interface {
	PluginCall(study, plugin, kind, call, outcome string, took time.Duration)
}

// PluginOutcome classifies a plugin call's error.
func PluginOutcome(err error) string {
	switch {
	case err == nil:
		return trial.PluginOK
	case errors.Is(err, context.DeadlineExceeded):
		return trial.PluginTimeout
	case errors.Is(err, ErrPluginUnavailable):
		return trial.PluginUnavailable
	}
	return trial.PluginError
}

// Close stops the study's plugins. Call it once the runtime is retired
// (after a reload, or at shutdown).
func (rt *StudyRuntime) Close() error {
	if rt.plugins == nil {
		return nil
	}
	return rt.plugins.Close()
}

// Close stops every loaded study's plugins, after waiting for outcome
// reports in flight; reloads are refused from then on, and versions a
// reload retired are closed before it returns.
func (e *Engine) Close() error {
	e.reload.swap.Lock()
	e.reload.closed = true
	serving := *e.studies.Load()
	e.reload.swap.Unlock()
	e.outcomes.close()
	for _, sh := range e.shadows.takeAll() {
		sh.stop()
	}
	var errs []error
	for _, rt := range serving {
		errs = append(errs, rt.Close())
	}
	e.WaitRetired()
	return errors.Join(errs...)
}

// newRuntime prepares a loaded study version for decisions and starts its
// plugins. A hot reload builds the new version with it and closes the
// retired runtime.
func (e *Engine) newRuntime(s *policies.Study) (*StudyRuntime, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := e.checkDesignPin(ctx, s)
	cancel()
	if err != nil {
		return nil, err
	}
	rt, err := newStudyRuntime(s)
	if err != nil {
		return nil, err
	}
	if err := e.attachPlugins(rt); err != nil {
		return nil, err
	}
	if err := e.attachChannels(rt); err != nil {
		return nil, err
	}
	rt.hooks = e.hooks(rt)
	return rt, nil
}

// attachPlugins starts the study's plugins with the engine's factory.
func (e *Engine) attachPlugins(rt *StudyRuntime) error {
	if len(rt.Config.Plugins) == 0 {
		return nil
	}
	if e.pluginFactory == nil {
		// Tools that build an engine only to read or export (and tests)
		// run without plugins: every call falls back, and says so.
		e.log.Warn("study declares plugins but the engine has no plugin host: their fallbacks apply", zap.String("study", rt.Config.ID))
		return nil
	}
	ps, err := e.pluginFactory(rt.Study)
	if err != nil {
		return fmt.Errorf("study %s: starting plugins: %w", rt.Config.ID, err)
	}
	rt.plugins = ps
	return nil
}

func pluginDecision(rec *trial.Record) decision.PluginDecision {
	return decision.PluginDecision{Study: rec.Study, Participant: rec.Participant, DecisionID: rec.ID, DecisionPoint: rec.DecisionPoint, Time: rec.Time}
}

// enrich calls the study's enrichers (concurrently, each within its own
// deadline) and returns input.derived and what each contributed.
func (e *Engine) enrich(ctx context.Context, rt *StudyRuntime, d decision.PluginDecision, input map[string]any) ([]trial.PluginCall, map[string]any, error) {
	var enrichers []*policies.PluginConfig
	for i := range rt.Config.Plugins {
		if rt.Config.Plugins[i].Kind == policies.PluginEnricher {
			enrichers = append(enrichers, &rt.Config.Plugins[i])
		}
	}
	if len(enrichers) == 0 {
		return nil, nil, nil
	}
	inputJSON, err := trial.AppendJSON(make([]byte, 0, 2048), input)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding policy input for enrichers: %w", err)
	}
	calls := make([]trial.PluginCall, len(enrichers))
	values := make([]map[string]any, len(enrichers))
	one := func(i int) {
		pc := enrichers[i]
		call := trial.PluginCall{Name: pc.Name, Kind: pc.Kind}
		start := time.Now()
		var derived map[string]any
		err := ErrPluginUnavailable
		if rt.plugins != nil {
			call.Version = rt.plugins.Version(pc.Name)
			if en := rt.plugins.Enricher(pc.Name); en != nil {
				derived, err = en.Enrich(ctx, d, inputJSON)
				if err == nil && derived == nil {
					err = ErrPluginInvalid
				}
			}
		}
		call.LatencyMicros = time.Since(start).Microseconds()
		if err != nil {
			call.Fallback, call.Reason = pc.Fallback, reasonOf(err)
			derived = nil
			if pc.Fallback == policies.FallbackDefaults {
				derived = pc.Defaults
			}
		}
		calls[i], values[i] = call, derived
	}
	if len(enrichers) == 1 {
		one(0)
	} else {
		var wg sync.WaitGroup
		for i := range enrichers {
			wg.Go(func() { one(i) })
		}
		wg.Wait()
	}
	derived := make(map[string]any, len(enrichers))
	for i, pc := range enrichers {
		if values[i] != nil {
			derived[pc.Name] = values[i]
		}
	}
	return calls, derived, nil
}

// ErrPluginInvalid is returned (wrapped) for a plugin answer that breaks
// the protocol (derived variables that are not a JSON object).
var ErrPluginInvalid = errors.New("invalid plugin answer")

func reasonOf(err error) string {
	if errors.Is(err, ErrPluginInvalid) {
		return trial.PluginInvalid
	}
	return PluginOutcome(err)
}

// pluginProbability asks a factor's probability provider; on failure (or
// an answer outside [0, 1]) the factor's declared probability applies.
func (e *Engine) pluginProbability(ctx context.Context, rt *StudyRuntime, f *policies.Factor, rec *trial.Record, inputJSON []byte) (float64, *trial.PluginCall) {
	pc, _ := rt.Config.Plugin(f.Plugin)
	call := &trial.PluginCall{Name: f.Plugin, Kind: policies.PluginProbability}
	start := time.Now()
	var p float64
	err := ErrPluginUnavailable
	if rt.plugins != nil {
		call.Version = rt.plugins.Version(f.Plugin)
		if pp := rt.plugins.ProbabilityProvider(f.Plugin); pp != nil {
			p, err = pp.Probability(ctx, pluginDecision(rec), ProbabilityQuery{Factor: f.Name, Bounds: f.Bounds, Default: f.Probability, Input: inputJSON})
		}
	}
	call.LatencyMicros = time.Since(start).Microseconds()
	if err == nil {
		if math.IsNaN(p) || math.IsInf(p, 0) {
			err = ErrPluginInvalid // not recordable (JSON has no NaN): no value
		} else {
			v := p
			call.Value = &v
			if p < 0 || p > 1 {
				err = ErrPluginInvalid
			}
		}
	}
	if err != nil {
		call.Fallback, call.Reason = policies.FallbackDefaultProbability, reasonOf(err)
		if pc != nil {
			call.Fallback = pc.Fallback
		}
		return f.Probability, call
	}
	return p, call
}

// notify hands a committed decision to the notifiers that want its action.
func (e *Engine) notify(rt *StudyRuntime, rec *trial.Record) {
	if rt.plugins == nil {
		return
	}
	for i := range rt.Config.Plugins {
		pc := &rt.Config.Plugins[i]
		if pc.Kind != policies.PluginNotifier {
			continue
		}
		n := rt.plugins.Notifier(pc.Name)
		if n == nil {
			continue
		}
		if pc.Notifies(rec.Action) {
			note := Notification{ID: rec.ID + "/" + pc.Name, Decision: pluginDecision(rec), Action: rec.Action, Reasons: rec.Reasons}
			if rec.Option != nil {
				note.Intervention = rec.Option.ID
			}
			n.Notify(note)
		}
		if rec.PolicyError != nil && pc.Notifies(policies.NotifyPolicyError) {
			// The alert: the policy failed and the fail-safe answered. The
			// problem's kind and place go to the designers' notifier; the
			// message may quote input values and stays in the record.
			n.Notify(Notification{ID: rec.ID + "/" + pc.Name + "/policy_error", Decision: pluginDecision(rec), Action: policies.NotifyPolicyError,
				Reasons: []string{rec.PolicyError.Kind, rec.PolicyError.Location}})
		}
	}
}
