package export_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/experiments/export"
	"github.com/jitai/jitai/policies"
)

// benchStore is a store of nP participants with nD decisions each, every
// decision a copy of a real stress-mrt record (same policy input size),
// and an EMA report 45 minutes after each.
func benchStore(b *testing.B, nP, nD int) (*sqlite.Store, *policies.Study) {
	b.Helper()
	ctx := context.Background()
	studies := loadStudies(b)
	study := studies[stressMRT]
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "jitai.db"), sqlite.Options{}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	// One real decision gives the template record.
	now := at(0, 8, 0)
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, stressMRT, engine.EnrollRequest{ParticipantID: "template"}); err != nil {
		b.Fatal(err)
	}
	ema := trial.Event{ID: "t-ema", Type: trial.EventEMA, Time: at(0, 8, 5), Data: json.RawMessage(`{"stress":6,"mood":4,"energy":3}`)}
	if _, _, err := eng.Ingest(ctx, stressMRT, "template", []trial.Event{ema}); err != nil {
		b.Fatal(err)
	}
	now = at(0, 8, 30) // the app asks on time
	ans, err := eng.Decide(ctx, stressMRT, "template", engine.DecideRequest{DecisionPoint: "morning", Time: at(0, 8, 30), Context: map[string]any{"location": "home"}})
	if err != nil {
		b.Fatal(err)
	}
	tmpl := ans.Record
	var wg sync.WaitGroup
	errs := make(chan error, nP)
	sem := make(chan struct{}, 64)
	for p := 0; p < nP; p++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(p int) {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("b-%05d", p)
			part := &trial.Participant{Study: stressMRT, ID: id, Timezone: "Europe/London", EnrolledAt: at(0, 7, 0).UTC(), Status: trial.StatusActive, Assignment: map[string]string{}}
			if _, _, err := st.Enroll(ctx, part, func(int64) error { return nil }); err != nil {
				errs <- err
				return
			}
			evs := make([]trial.Event, 0, nD)
			for d := 0; d < nD; d++ {
				rec := *tmpl
				rec.ID = fmt.Sprintf("%s-%06d", id, d)
				rec.Participant = id
				rec.Time = at(d/5, 8+3*(d%5), 30).UTC()
				rec.IdempotencyKey = ""
				if err := st.CommitDecision(ctx, &trial.Commit{Record: &rec}); err != nil {
					errs <- err
					return
				}
				evs = append(evs, trial.Event{ID: fmt.Sprintf("e%d", d), Type: trial.EventEMA, Time: rec.Time.Add(45 * time.Minute), Data: json.RawMessage(`{"stress":5}`)})
			}
			for len(evs) > 0 {
				n := min(len(evs), trial.MaxEventsPerRequest)
				if _, err := st.AppendEvents(ctx, stressMRT, id, evs[:n], func(*trial.State, []trial.Event) error { return nil }); err != nil {
					errs <- err
					return
				}
				evs = evs[n:]
			}
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return st, study
}

// BenchmarkExport measures Build and both writers on 20,000 decisions
// (100 participants x 200 decision points).
func BenchmarkExport(b *testing.B) {
	const nP, nD = 100, 200
	st, study := benchStore(b, nP, nD)
	ctx := context.Background()
	opts := export.Options{Now: func() time.Time { return at(60, 0, 0) }}
	ts, err := export.Build(ctx, st, study, opts)
	if err != nil {
		b.Fatal(err)
	}
	if got := len(ts.Decisions.Rows); got != nP*nD+1 {
		b.Fatalf("%d rows", got)
	}
	b.Run("Build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := export.Build(ctx, st, study, opts); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nP*nD), "ns/row")
		// What an export holds once built (the tables), per decision row.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		kept, err := export.Build(ctx, st, study, opts)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(nP*nD), "heap-B/row")
		runtime.KeepAlive(kept)
	})
	for _, f := range []export.Format{export.CSV, export.Parquet} {
		b.Run("Write"+string(f), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := ts.Write(io.Discard, export.DecisionsTable, f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(nP*nD), "ns/row")
		})
	}
}

// BenchmarkWrite1M writes 1,000,000 decision rows (the 20,000 rows of
// BenchmarkExport's store, repeated) to CSV and to Parquet: the writers'
// part of exporting a trial of a million decisions.
func BenchmarkWrite1M(b *testing.B) {
	const nP, nD, n = 100, 200, 1_000_000
	st, study := benchStore(b, nP, nD)
	ts, err := export.Build(context.Background(), st, study, export.Options{Now: func() time.Time { return at(60, 0, 0) }})
	if err != nil {
		b.Fatal(err)
	}
	src := ts.Decisions.Rows
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = src[i%len(src)]
	}
	ts.Decisions.Rows = rows
	for _, f := range []export.Format{export.CSV, export.Parquet} {
		b.Run(string(f), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := ts.Write(io.Discard, export.DecisionsTable, f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/row")
		})
	}
}
