package engine

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/policies"
)

// Outcomes for learning probability providers: when an event carries a
// value of the outcome a provider declared (plugins[].outcome), each of the
// participant's decisions whose outcome window holds the event is reported
// to the provider, asynchronously and best effort (a report lost to a
// crash costs the provider one observation, never a decision).

// learner is a probability plugin that learns from a study outcome.
type learner struct {
	plugin  string
	outcome policies.Outcome
}

func learnersOf(c *policies.Config) []learner {
	var out []learner
	for _, p := range c.Plugins {
		if p.Kind != policies.PluginProbability || p.Outcome == "" {
			continue
		}
		for _, o := range c.Outcomes {
			if o.Name == p.Outcome {
				out = append(out, learner{plugin: p.Name, outcome: o})
			}
		}
	}
	return out
}

// maxOutcomeWorkers bounds the outcome reports in flight; beyond it a
// report is dropped (and logged without participant data).
const maxOutcomeWorkers = 16

type outcomeWorkers struct {
	mu     sync.Mutex
	sem    chan struct{}
	wg     sync.WaitGroup
	closed bool
}

func (w *outcomeWorkers) acquire() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	if w.sem == nil {
		w.sem = make(chan struct{}, maxOutcomeWorkers)
	}
	select {
	case w.sem <- struct{}{}:
		w.wg.Add(1)
		return true
	default:
		return false
	}
}

// close refuses new reports and waits for those in flight.
func (w *outcomeWorkers) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.wg.Wait()
}

func (w *outcomeWorkers) release() {
	<-w.sem
	w.wg.Done()
}

type observed struct {
	l     *learner
	at    time.Time
	value float64
}

// reportOutcomes sends the outcome values among freshly stored events to
// the providers that learn from them: those of the version serving when the
// report is sent, held in use meanwhile so that a reload cannot close its
// plugins under the report.
func (e *Engine) reportOutcomes(study, participant string, events []trial.Event) {
	rt, ok := e.Study(study)
	if !ok || rt.plugins == nil || len(rt.learners) == 0 || len(outcomeValues(rt, events)) == 0 {
		return
	}
	if !e.outcomes.acquire() {
		e.log.Warn("outcome reports to plugins dropped: too many in flight, or the engine is closing", zap.String("study", study))
		return
	}
	events = slices.Clone(events)
	go func() {
		defer e.outcomes.release()
		rt, release, ok := e.acquire(study)
		defer release()
		if !ok || rt.plugins == nil {
			return
		}
		if obs := outcomeValues(rt, events); len(obs) > 0 {
			e.sendOutcomes(rt, participant, obs)
		}
	}()
}

// outcomeValues are the values among events that rt's learning providers
// take as outcomes.
func outcomeValues(rt *StudyRuntime, events []trial.Event) []observed {
	var obs []observed
	for i := range events {
		ev := &events[i]
		for j := range rt.learners {
			l := &rt.learners[j]
			if ev.Type != l.outcome.Event {
				continue
			}
			var m map[string]any
			if json.Unmarshal(ev.Data, &m) != nil {
				continue
			}
			if v, ok := outcomeNumber(m[l.outcome.Variable]); ok {
				obs = append(obs, observed{l: l, at: ev.Time, value: v})
			}
		}
	}
	return obs
}

func (e *Engine) sendOutcomes(rt *StudyRuntime, participant string, obs []observed) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	since := obs[0].at
	for _, o := range obs {
		if t := o.at.Add(-o.l.outcome.To.Duration); t.Before(since) {
			since = t
		}
	}
	recs, err := e.store.ListDecisions(ctx, trial.DecisionQuery{Study: rt.Config.ID, Participant: participant, Since: since})
	if err != nil {
		e.log.Warn("outcome reports to plugins: reading decisions failed", zap.String("study", rt.Config.ID), zap.Error(err))
		return
	}
	for _, rec := range recs {
		if !rec.Randomised {
			continue
		}
		for _, o := range obs {
			from, to := rec.Time.Add(o.l.outcome.From.Duration), rec.Time.Add(o.l.outcome.To.Duration)
			if o.at.Before(from) || o.at.After(to) {
				continue
			}
			pp := rt.plugins.ProbabilityProvider(o.l.plugin)
			if pp == nil {
				continue
			}
			for _, fd := range rec.Factors {
				if fd.Plugin == nil || fd.Plugin.Name != o.l.plugin || fd.Probability == nil {
					continue
				}
				r := OutcomeReport{
					Decision: pluginDecision(rec), Factor: fd.Name, Level: fd.Level, Probability: *fd.Probability,
					FromPlugin: fd.Plugin.Fallback == "", Outcome: o.l.outcome.Name, Value: o.value, ObservedAt: o.at,
				}
				// Failures are counted by the plugin host's observer.
				_ = pp.Outcome(ctx, r)
			}
		}
	}
}

func outcomeNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
