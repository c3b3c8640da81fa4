package engine

import (
	"fmt"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// FeedHealth passes n synthetic randomised records of study through the
// commit hook (for the health benchmark: a million real decisions would
// take minutes to make).
func FeedHealth(e *Engine, n int, study string) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	points := []string{"morning", "midday", "evening", "on_demand"}
	for i := range n {
		p, q := 0.6, 0.5
		rec := &trial.Record{ID: fmt.Sprint(i), Study: study, DecisionPoint: points[i%len(points)], Time: at.Add(time.Duration(i) * time.Second),
			Action: trial.ActionNone, Available: i%5 != 0, Randomised: i%5 != 0,
			Factors: []trial.FactorDraw{{Name: "prompt", Type: "within", Level: i % 2, Probability: &p}, {Name: "framing", Type: "within", Level: i / 2 % 2, Probability: &q}}}
		if i%5 == 0 {
			rec.UnavailableReasons = []string{"driving"}
		}
		e.recordHealth(rec)
	}
}

// RecordHealth is the commit hook (for its benchmark).
func RecordHealth(e *Engine, rec *trial.Record) { e.recordHealth(rec) }
