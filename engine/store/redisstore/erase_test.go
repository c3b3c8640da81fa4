package redisstore

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jitai/jitai/engine/trial"

	"testing"

	"github.com/jitai/jitai/engine/store/storetest"
)

// TestEraser runs the participant-rights tests against the local Redis
// (singleURL), each store on a fresh key prefix deleted afterwards.
func TestEraser(t *testing.T) {
	storetest.RunEraser(t, func(t *testing.T) trial.Store { return openAt(t, singleURL(t), Options{}) })
}

// TestEraseLeavesNoKeys: after erasure with remove, no key of the
// participant is left and the decision log holds only others' decisions.
func TestEraseLeavesNoKeys(t *testing.T) {
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	for _, p := range []string{"p1", "p2"} {
		if _, _, err := s.Enroll(ctx, &trial.Participant{Study: "s1", ID: p, Status: trial.StatusActive}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvents(ctx, "s1", p, []trial.Event{{ID: "e", Type: "ema", Time: time.Unix(100, 0), Data: []byte(`{}`)}}, func(*trial.State, []trial.Event) error { return nil }); err != nil {
			t.Fatal(err)
		}
		rec := &trial.Record{ID: p + "-d", Study: "s1", Participant: p, Time: time.Unix(200, 0), Input: []byte(`{"x":1}`)}
		if err := s.CommitDecision(ctx, &trial.Commit{Record: rec, State: &trial.State{Version: 2}, Idempotency: &trial.IdempotencyEntry{Key: "k", DecisionID: rec.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.LogLen(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Erase(ctx, "s1", "p1", false); err != nil {
		t.Fatal(err)
	}
	keys, err := s.scanKeys(ctx, globEsc(s.k.participant("s1", "p1").base)+"*")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys left after erasure: %v", keys)
	}
	after, err := s.LogLen(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if after != before-1 {
		t.Errorf("log length %d after erasure, want %d", after, before-1)
	}
	if ok, err := s.rdb.HExists(ctx, s.k.study("s1").participants(), "p1").Result(); err != nil || ok {
		t.Errorf("register still names p1 (%v)", err)
	}
}

// TestEraseLeavesNoBytes: on a private redis-server with appendonly yes
// (and the default RDB preamble in its rewritten base file), after an
// erasure and the AOF rewrite it starts, no file in the server's directory
// holds the participant's id or the markers of their self-reports.
func TestEraseLeavesNoBytes(t *testing.T) {
	storetest.RunEraseLeavesNoBytes(t, func(t *testing.T) (trial.Store, storetest.Files) {
		srv := startServer(t, func(int, string) []string { return []string{"--appendonly", "yes", "--appendfsync", "always"} })
		url := "redis://" + srv.addr() + "/0"
		s := openAt(t, url, Options{})
		ctl := redis.NewClient(&redis.Options{Addr: srv.addr()})
		t.Cleanup(func() { ctl.Close() })
		rewrites := 0
		return s, func(t *testing.T) map[string][]byte {
			if rewrites > 0 || aofRewrites(t, ctl) > 0 {
				waitRewritten(t, ctl, srv.dir)
			}
			rewrites++
			return readDir(t, srv.dir)
		}
	})
}

// aofRewrites returns how many AOF rewrites the server has finished or
// started (aof_rewrites in INFO stats).
func aofRewrites(t *testing.T, c *redis.Client) int {
	t.Helper()
	n, _ := strconv.Atoi(parseInfo(c.Info(t.Context(), "persistence", "stats").Val())["aof_rewrites"])
	return n
}

// waitRewritten waits until no AOF rewrite is running or scheduled and the
// AOF directory holds only the files its manifest names (Redis deletes the
// files a rewrite replaced in a background thread).
func waitRewritten(t *testing.T, c *redis.Client, dir string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		info := parseInfo(c.Info(t.Context(), "persistence").Val())
		done := info["aof_rewrite_in_progress"] == "0" && info["aof_rewrite_scheduled"] == "0"
		if done && info["aof_last_bgrewrite_status"] != "ok" {
			t.Fatalf("AOF rewrite failed: %v", info)
		}
		if done && onlyManifestFiles(t, filepath.Join(dir, "appendonlydir")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("AOF rewrite not finished within a minute: %v", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// onlyManifestFiles reports whether every file in an AOF directory is the
// manifest or named in it.
func onlyManifestFiles(t *testing.T, dir string) bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var manifest []byte
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".manifest") {
			if manifest, err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".manifest") && !bytes.Contains(manifest, []byte("file "+e.Name()+" ")) {
			return false
		}
	}
	return true
}

// readDir reads every file under dir (the AOF directory, dump.rdb).
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "redis.log" {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
