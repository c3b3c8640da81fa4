package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/jitai/jitai/engine/store/storetest"
)

// openTemp opens a store in a fresh directory (created by Open) that is
// closed when t ends.
func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "jitai.db")
	s, err := Open(path, opts, zap.NewNop())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	open := func(t *testing.T) trial.Store {
		s, err := Open(filepath.Join(t.TempDir(), "data", "jitai.db"), Options{}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
	reopen := func(t *testing.T, old trial.Store) trial.Store {
		path := old.(*Store).path
		if err := old.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s, err := Open(path, Options{}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatalf("reopening: %v", err)
		}
		return s
	}
	t.Run("Default", func(t *testing.T) { storetest.Run(t, open, reopen) })
	t.Run("PowerNoBatching", func(t *testing.T) {
		open := func(t *testing.T) trial.Store {
			s, err := Open(filepath.Join(t.TempDir(), "jitai.db"), Options{Durability: DurabilityPower, BatchMax: 1, ReadConns: 1}, zaptest.NewLogger(t))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
		storetest.Run(t, open, nil)
	})
}

func TestOpenOptions(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		path    string
		opts    Options
		wantErr string
	}{
		{"Defaults", filepath.Join(dir, "a.db"), Options{}, ""},
		{"Power", filepath.Join(dir, "b.db"), Options{Durability: DurabilityPower}, ""},
		{"BadDurability", filepath.Join(dir, "c.db"), Options{Durability: "disk"}, "durability"},
		{"BadBatch", filepath.Join(dir, "d.db"), Options{BatchMax: -1}, "batch_max"},
		{"BadReadConns", filepath.Join(dir, "e.db"), Options{ReadConns: -2}, "read_conns"},
		{"Memory", ":memory:", Options{}, "plain file path"},
		{"QueryInPath", filepath.Join(dir, "f.db?mode=ro"), Options{}, "plain file path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(c.path, c.opts, nil)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if err := s.Ping(t.Context()); err != nil {
					t.Fatalf("Ping: %v", err)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want an error about %s", c.wantErr)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Open error %q does not mention %q", err, c.wantErr)
			}
		})
	}
}

// enrol enrols one participant.
func enrol(t testing.TB, s *Store, study, id string) {
	t.Helper()
	p := &trial.Participant{Study: study, ID: id, Stratum: "a", Status: trial.StatusActive, EnrolledAt: time.Now().UTC()}
	if _, _, err := s.Enroll(context.Background(), p, func(int64) error { return nil }); err != nil {
		t.Fatalf("Enroll: %v", err)
	}
}

// blockWriter occupies the writer until the returned release is called, so
// that ops queue up behind it.
func blockWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(*writeStmts) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("blocking op: %v", err)
		}
	}
}

// waitQueued waits until n ops are queued, for up to a minute (the
// goroutines that queue them may be slow to run on a loaded machine).
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(s.ops) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d ops queued after a minute, want %d", len(s.ops), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGroupCommit(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := t.Context()
	enrol(t, s, "s1", "p1")
	before := s.Stats()

	const n = 64
	release := blockWriter(t, s)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("d%02d", i)
			rec := storetest.BenchRecord("s1", "p1", id, time.Date(2026, 3, 2, 9, 0, i, 0, time.UTC))
			errs[i] = s.CommitDecision(ctx, &trial.Commit{Record: rec, Idempotency: &trial.IdempotencyEntry{Key: "k" + id, DecisionID: id, Response: []byte(`{}`)}})
		})
	}
	waitQueued(t, s, n)
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	after := s.Stats()
	if ops, txs := after.Ops-before.Ops, after.Transactions-before.Transactions; ops != n+1 || txs != 2 {
		t.Fatalf("%d ops in %d transactions, want %d ops in 2 (the blocking op's and one batch)", ops, txs, n+1)
	}
	recs, err := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1"})
	if err != nil || len(recs) != n {
		t.Fatalf("ListDecisions = %d records, %v; want %d", len(recs), err, n)
	}
}

func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := t.Context()
	enrol(t, s, "s1", "p1")
	before := s.Stats()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

	release := blockWriter(t, s)
	cases := []struct {
		id      string
		commit  *trial.Commit
		enroll  func(int64) error
		wantErr error
	}{
		{id: "ok1", commit: &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "ok1", at), State: &trial.State{Version: 1}}},
		{id: "stale", commit: &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "stale", at), State: &trial.State{Version: 1}}, wantErr: trial.ErrConflict},
		{id: "panics", enroll: func(int64) error { panic("assign bug") }, wantErr: errPanic},
		{id: "ok2", commit: &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "ok2", at), State: &trial.State{Version: 2}}},
	}
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() {
			if c.enroll != nil {
				_, _, errs[i] = s.Enroll(ctx, &trial.Participant{Study: "s1", ID: "p2"}, c.enroll)
				return
			}
			errs[i] = s.CommitDecision(ctx, c.commit)
		})
		waitQueued(t, s, i+1) // keep the queue in case order
	}
	release()
	wg.Wait()
	for i, c := range cases {
		switch {
		case c.wantErr == errPanic:
			if errs[i] == nil || !strings.Contains(errs[i].Error(), "panicked") {
				t.Errorf("%s: error %v, want a recovered panic", c.id, errs[i])
			}
		case !errors.Is(errs[i], c.wantErr):
			t.Errorf("%s: error %v, want %v", c.id, errs[i], c.wantErr)
		}
	}
	after := s.Stats()
	if txs, ops, failed := after.Transactions-before.Transactions, after.Ops-before.Ops, after.FailedOps-before.FailedOps; txs != 2 || ops != 3 || failed != 2 {
		t.Fatalf("%d transactions, %d ops, %d failed; want 2, 3 (blocking op, ok1, ok2), 2", txs, ops, failed)
	}
	snap, err := s.Snapshot(ctx, "s1", "p1", "")
	if err != nil || snap.State.Version != 2 {
		t.Fatalf("Snapshot = %+v, %v; want version 2", snap, err)
	}
	if _, err := s.Participant(ctx, "s1", "p2"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("participant of the panicking enrolment: %v, want ErrNotFound", err)
	}
	if _, err := s.Decision(ctx, "s1", "stale"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("record of the conflicting commit: %v, want ErrNotFound", err)
	}
}

// errPanic marks the case expecting a recovered panic.
var errPanic = errors.New("panic")

func TestCancelledBeforeRunning(t *testing.T) {
	s := openTemp(t, Options{})
	enrol(t, s, "s1", "p1")
	release := blockWriter(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	called := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Enroll(ctx, &trial.Participant{Study: "s1", ID: "p2"}, func(int64) error {
			called <- struct{}{}
			return nil
		})
		done <- err
	}()
	waitQueued(t, s, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Enroll with cancelled context: %v, want context.Canceled", err)
	}
	release()
	// The writer skipped the abandoned op.
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	enrol(t, s, "s1", "p3") // goes through the writer after the skipped op
	select {
	case <-called:
		t.Fatal("assign ran after its caller gave up")
	default:
	}
	if _, err := s.Participant(t.Context(), "s1", "p2"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("abandoned enrolment stored: %v", err)
	}
}

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitai.db")
	s, err := Open(path, Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	enrol(t, s, "s1", "p1")

	// Writes queued before Close commit before it returns.
	const n = 10
	release := blockWriter(t, s)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("d%d", i)
			errs[i] = s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", id, time.Date(2026, 3, 2, 9, i, 0, 0, time.UTC))})
		})
	}
	waitQueued(t, s, n)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Close stops accepting writes before the queue drains.
	for {
		s.mu.RLock()
		c := s.closed
		s.mu.RUnlock()
		if c {
			break
		}
		time.Sleep(time.Millisecond)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("queued commit %d: %v", i, err)
		}
	}

	// After Close everything is unavailable, and Close is idempotent.
	checks := map[string]error{
		"CommitDecision": s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "late", time.Now())}),
		"Ping":           s.Ping(ctx),
	}
	_, _, checks["Enroll"] = s.Enroll(ctx, &trial.Participant{Study: "s1", ID: "p9"}, nil)
	_, checks["Snapshot"] = s.Snapshot(ctx, "s1", "p1", "")
	_, checks["AppendEvents"] = s.AppendEvents(ctx, "s1", "p1", []trial.Event{{ID: "e1", Type: trial.EventEMA, Time: time.Now()}}, nil)
	_, checks["ListDecisions"] = s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1"})
	for name, err := range checks {
		if !errors.Is(err, trial.ErrUnavailable) {
			t.Errorf("%s after Close: %v, want ErrUnavailable", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s, err = Open(path, Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1"})
	if err != nil || len(recs) != n {
		t.Fatalf("after reopen: %d records, %v; want %d", len(recs), err, n)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "jitai.db")
	for range 3 {
		s, err := Open(path, Options{ReadConns: 3}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		enrol(t, s, "s1", fmt.Sprintf("p%d", time.Now().UnixNano()))
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := s.Participants(ctx, "s1"); err != nil {
					t.Error(err)
				}
				if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p0", fmt.Sprint(time.Now().UnixNano()), time.Now())}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The store's goroutines end soon after Close; a loaded machine may
	// take a while to run them to their end.
	deadline := time.Now().Add(time.Minute)
	for {
		now := runtime.NumGoroutine()
		if now <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before Open, %d after Close:\n%s", before, now, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadableWithSQL checks that the file makes sense to someone with
// sqlite3 and json_extract.
func TestReadableWithSQL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitai.db")
	s, err := Open(path, Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	enrol(t, s, "s1", "p1")
	at := time.Date(2026, 3, 2, 9, 0, 0, 123456000, time.UTC)
	rec, st := storetest.BenchRecord("s1", "p1", "d1", at), storetest.BenchState(1, at)
	if err := s.CommitDecision(t.Context(), &trial.Commit{Record: rec, State: st}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var (
		version     int
		when, label string
		probability float64
	)
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("user_version = %d, %v; want %d", version, err, len(migrations))
	}
	err = db.QueryRow(`SELECT json_extract(record, '$.time'), json_extract(record, '$.factors[0].label'), json_extract(record, '$.factors[0].probability')
		FROM decisions WHERE study = 's1' AND participant = 'p1'`).Scan(&when, &label, &probability)
	if err != nil {
		t.Fatalf("querying the record with json_extract: %v", err)
	}
	if when != "2026-03-02T09:00:00.123456Z" || label != "on" || probability != 0.6 {
		t.Fatalf("json_extract gave %s, %s, %v", when, label, probability)
	}
	// Both documents are TEXT (not BLOB, which json_extract would take for
	// JSONB) and hold what encoding/json writes.
	var recType, stateType, recDoc, stateDoc, quiet string
	err = db.QueryRow(`SELECT typeof(d.record), typeof(p.state), d.record, p.state, json_extract(p.state, '$.preferences.quiet_hours.start')
		FROM decisions d JOIN participants p ON p.study = d.study AND p.id = d.participant WHERE d.study = 's1' AND d.id = 'd1'`).
		Scan(&recType, &stateType, &recDoc, &stateDoc, &quiet)
	if err != nil {
		t.Fatalf("reading the record and state: %v", err)
	}
	if recType != "text" || stateType != "text" || quiet != "22:30" {
		t.Errorf("typeof(record) %s, typeof(state) %s, quiet hours start %q; want text, text, 22:30", recType, stateType, quiet)
	}
	if want, _ := json.Marshal(rec); recDoc != string(want) {
		t.Errorf("stored record:\n%s\nwant encoding/json's\n%s", recDoc, want)
	}
	if want, _ := json.Marshal(st); stateDoc != string(want) {
		t.Errorf("stored state:\n%s\nwant encoding/json's\n%s", stateDoc, want)
	}
}
