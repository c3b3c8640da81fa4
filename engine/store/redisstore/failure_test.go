package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jitai/jitai/engine/store/storetest"
)

// slowTimeouts are connection timeouts far longer than failFast: a call
// that fails within failFast did not wait for one of them, which is what
// failing fast means, however slow the machine is.
func slowTimeouts() Options {
	return Options{DialTimeout: time.Minute, ReadTimeout: time.Minute, WriteTimeout: time.Minute, PoolTimeout: time.Minute}
}

// failFast bounds a call that must fail without waiting for a timeout; the
// margin is for a loaded machine.
const failFast = 20 * time.Second

// TestUnavailable stops a private Redis under an open store: every call
// fails fast with an error wrapping trial.ErrUnavailable, the outage is
// logged once, and the same store serves again once Redis is back.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	core, logs := observer.New(zap.InfoLevel)
	s, err := Open(t.Context(), "redis://"+srv.addr()+"/0", slowTimeouts(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	enrol(t, s, "s1", "p1")
	if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "d1", now), State: &trial.State{Version: 1}}); err != nil {
		t.Fatal(err)
	}

	calls := map[string]func() error{
		"Ping": func() error { return s.Ping(ctx) },
		"Enroll": func() error {
			_, _, err := s.Enroll(ctx, &trial.Participant{Study: "s1", ID: "p2"}, func(int64) error { return nil })
			return err
		},
		"Participant":  func() error { _, err := s.Participant(ctx, "s1", "p1"); return err },
		"Participants": func() error { _, err := s.Participants(ctx, "s1"); return err },
		"Snapshot":     func() error { _, err := s.Snapshot(ctx, "s1", "p1", "k1"); return err },
		"AppendEvents": func() error {
			_, err := s.AppendEvents(ctx, "s1", "p1", []trial.Event{{ID: "e1", Type: trial.EventEMA, Time: now, Data: json.RawMessage(`{}`)}}, nil)
			return err
		},
		"Events": func() error { _, err := s.Events(ctx, "s1", "p1"); return err },
		"CommitDecision": func() error {
			return s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "d2", now), State: &trial.State{Version: 2}})
		},
		"Decision":      func() error { _, err := s.Decision(ctx, "s1", "d1"); return err },
		"ListDecisions": func() error { _, err := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1"}); return err },
		"ListDecisionsOfOne": func() error {
			_, err := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1", Participant: "p1"})
			return err
		},
		"SnapshotUnknown": func() error { _, err := s.Snapshot(ctx, "s1", "nobody", ""); return err },
	}

	srv.stop()
	var slowest time.Duration
	for name, call := range calls {
		start := time.Now()
		err := call()
		took := time.Since(start)
		slowest = max(slowest, took)
		if !errors.Is(err, trial.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want an error wrapping ErrUnavailable", name, err)
		}
		if took > failFast {
			t.Errorf("%s with Redis down took %s, want it to fail fast (the timeouts are a minute)", name, took)
		}
	}
	if n := logs.FilterMessageSnippet("unreachable").Len(); n != 1 {
		t.Errorf("outage logged %d times, want once", n)
	}

	t.Logf("with Redis down, the slowest of %d calls failed after %s", len(calls), slowest)

	srv.start()
	back := time.Now()
	for s.Ping(ctx) != nil {
		if time.Since(back) > time.Minute {
			t.Fatalf("store still unavailable a minute after Redis came back: %v", s.Ping(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("serving again %s after Redis came back", time.Since(back).Round(time.Millisecond))
	// The server came back empty (no persistence): the store works again
	// without being reopened, scripts included.
	enrol(t, s, "s1", "p3")
	if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p3", "d3", now), State: &trial.State{Version: 1}}); err != nil {
		t.Fatalf("CommitDecision after Redis came back: %v", err)
	}
	for name, call := range calls {
		if err := call(); errors.Is(err, trial.ErrUnavailable) {
			t.Errorf("%s after Redis came back: %v", name, err)
		}
	}
	if n := logs.FilterMessageSnippet("reachable again").Len(); n != 1 {
		t.Errorf("recovery logged %d times, want once", n)
	}
}

// TestOpenUnreachable checks that Open succeeds without Redis and that the
// store reports ErrUnavailable until Redis answers.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	url := "redis://127.0.0.1:" + strconv.Itoa(port)
	s, err := Open(t.Context(), url, Options{}, nil)
	if err != nil {
		t.Fatalf("Open without Redis: %v", err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); !errors.Is(err, trial.ErrUnavailable) {
		t.Fatalf("Ping without Redis: %v, want ErrUnavailable", err)
	}
}

// TestOpenAuth checks credentials in the URL and that a refused password
// fails Open (it is not an outage).
func TestOpenAuth(t *testing.T) {
	t.Parallel()
	srv := startServer(t, func(int, string) []string { return []string{"--requirepass", "p@ss:w/rd"} })
	if _, err := Open(t.Context(), "redis://"+srv.addr(), Options{}, nil); err == nil || errors.Is(err, trial.ErrUnavailable) {
		t.Fatalf("Open without the password: %v, want an authentication error", err)
	}
	_, err := Open(t.Context(), "redis://:wrong-secret@"+srv.addr(), Options{}, nil)
	if err == nil || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("Open with a wrong password: %v, want an error that does not quote the password", err)
	}
	s, err := Open(t.Context(), "redis://:p%40ss%3Aw%2Frd@"+srv.addr()+"/2", Options{}, nil)
	if err != nil {
		t.Fatalf("Open with the password: %v", err)
	}
	defer s.Close()
	enrol(t, s, "s1", "p1")
	if db := s.rdb.(*redis.Client).Options().DB; db != 2 {
		t.Fatalf("database %d, want 2", db)
	}
}

// TestClose checks that calls after Close fail with ErrUnavailable and
// that Close is idempotent.
func TestClose(t *testing.T) {
	t.Parallel()
	s := openAt(t, singleURL(t), Options{})
	enrol(t, s, "s1", "p1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	_, err := s.Snapshot(ctx, "s1", "p1", "")
	if !errors.Is(err, trial.ErrUnavailable) {
		t.Fatalf("Snapshot after Close: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, trial.ErrUnavailable) {
		t.Fatalf("Ping after Close: %v", err)
	}
	if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "d1", time.Now())}); !errors.Is(err, trial.ErrUnavailable) {
		t.Fatalf("CommitDecision after Close: %v", err)
	}
}

// TestClusterNodeDown kills one of three cluster masters: participants in
// its slots fail fast with ErrUnavailable, the others are still served.
func TestClusterNodeDown(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	// No key clean-up: the cluster goes when the test ends.
	s, err := Open(t.Context(), c.url(), slowTimeouts(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	const n = 24
	for i := range n {
		enrol(t, s, "s1", fmt.Sprintf("p%02d", i))
	}
	c.nodes[0].stop()
	var served, refused int
	for i := range n {
		start := time.Now()
		_, err := s.Snapshot(ctx, "s1", fmt.Sprintf("p%02d", i), "")
		switch {
		case err == nil:
			served++
		case errors.Is(err, trial.ErrUnavailable):
			refused++
		default:
			t.Errorf("Snapshot with a master down: %v, want success or ErrUnavailable", err)
		}
		if took := time.Since(start); took > failFast {
			t.Errorf("Snapshot with a master down took %s, want it to fail fast (the timeouts are a minute)", took)
		}
	}
	if served == 0 || refused == 0 {
		t.Fatalf("%d served, %d refused; want both (one master of three is down)", served, refused)
	}
	if err := s.Ping(ctx); !errors.Is(err, trial.ErrUnavailable) {
		t.Fatalf("Ping with a master down: %v, want ErrUnavailable", err)
	}
}

// A Redis whose disk fills (a private redis-server with appendonly yes and
// appendfsync everysec, since with always it exits on a failed write, on a
// 4 MiB tmpfs): its MISCONF refusals are unavailable (503, never 500) and
// Ping, behind /readyz, says it cannot write; once space is freed and Redis
// has written its AOF again, the store is ready again. Skipped where this
// process may not mount a tmpfs.
func TestRedisDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	srv := startServer(t, func(int, string) []string {
		return []string{"--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec"}
	})
	s := openAt(t, "redis://"+srv.addr()+"/0", Options{})
	ctl := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer ctl.Close()
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping with space: %v", err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write(make([]byte, 4<<20)) // fills the tmpfs: ENOSPC expected
	f.Close()
	big := strings.Repeat("x", 64<<10)
	var refused error
	for i := 0; i < 200 && refused == nil; i++ {
		refused = ctl.Set(ctx, fmt.Sprintf("jitaitest:fill:%d", i), big, 0).Err()
	}
	if refused == nil {
		t.Fatal("Redis accepted 12 MiB on a full 4 MiB disk")
	}
	_, _, err = s.Enroll(ctx, &trial.Participant{Study: "s1", ID: "p1", Status: trial.StatusActive}, nil)
	if !errors.Is(err, trial.ErrUnavailable) {
		t.Errorf("enrolling on a Redis with a full disk: %v, want ErrUnavailable (Redis said %v)", err, refused)
	}
	if err := s.Ping(ctx); !errors.Is(err, trial.ErrUnavailable) {
		t.Errorf("Ping on a Redis with a full disk: %v, want not ready", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for s.Ping(ctx) != nil { // Redis retries its AOF write every second
		if time.Now().After(deadline) {
			t.Fatalf("not ready a minute after space was freed: %v", s.Ping(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, err := s.Enroll(ctx, &trial.Participant{Study: "s1", ID: "p1", Status: trial.StatusActive}, nil); err != nil {
		t.Errorf("enrolling after space was freed: %v", err)
	}
}
