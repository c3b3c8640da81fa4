package sqlite

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jitai/jitai/engine/store/storetest"
)

// fakeDisk is an injected DiskStatus and clock: free space and
// writability are set by the test, and time moves only when it says so.
type fakeDisk struct {
	mu       sync.Mutex
	free     uint64
	readOnly bool
	now      time.Time
}

func (d *fakeDisk) status(string) (Disk, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Disk{Free: d.free, ReadOnly: d.readOnly}, nil
}

func (d *fakeDisk) clock() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.now
}

// set changes the disk and lets a second pass, so that the guard looks.
func (d *fakeDisk) set(free uint64, readOnly bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free, d.readOnly = free, readOnly
	d.now = d.now.Add(diskCheckMin)
}

// commitN commits decisions d<from>..d<to-1> for p1 and returns the ids
// answered without error and the first error.
func commitN(t *testing.T, s *Store, from, to int) ([]string, error) {
	t.Helper()
	var ok []string
	for i := from; i < to; i++ {
		id := fmt.Sprintf("d%05d", i)
		rec := storetest.BenchRecord("s1", "p1", id, time.Date(2026, 3, 2, 9, 0, 0, i, time.UTC))
		rec.Input = []byte(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 4000)))
		if err := s.CommitDecision(t.Context(), &trial.Commit{Record: rec}); err != nil {
			return ok, err
		}
		ok = append(ok, id)
	}
	return ok, nil
}

// errorLines counts the error-level log lines so far.
func errorLines(logs *observer.ObservedLogs) int {
	return logs.FilterLevelExact(zapcore.ErrorLevel).Len()
}

// With a simulated disk (an injected DiskStatus and clock): under
// min_free_bytes the store refuses writes with a *trial.UnavailableError
// and is not ready, logs one error line however many writes it refuses,
// and writes again by itself once space is back; every answered decision
// is kept.
func TestDiskGuardSimulated(t *testing.T) {
	disk := &fakeDisk{free: 1 << 30, now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	core, logs := observer.New(zap.InfoLevel)
	path := filepath.Join(t.TempDir(), "jitai.db")
	s, err := Open(path, Options{MinFree: 100 << 20, DiskStatus: disk.status, Now: disk.clock}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	enrol(t, s, "s1", "p1")
	answered, err := commitN(t, s, 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with space: %v", err)
	}

	disk.set(99<<20, false)
	for i := range 500 {
		ok, err := commitN(t, s, 20+i, 21+i)
		answered = append(answered, ok...)
		var ue *trial.UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, trial.ErrUnavailable) || ue.RetryAfter <= 0 {
			t.Fatalf("write %d under min_free_bytes: %v, want a *trial.UnavailableError with a Retry-After", i, err)
		}
		if i%100 == 0 {
			disk.set(99<<20, false) // time passes; the disk is still full
		}
	}
	if err := s.Ping(t.Context()); !errors.Is(err, trial.ErrUnavailable) {
		t.Errorf("Ping under min_free_bytes: %v, want not ready", err)
	}
	if n := errorLines(logs); n != 1 {
		t.Errorf("%d error lines for 500 refused writes, want 1 (one per change of state)", n)
	}

	disk.set(1<<30, false)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping once space is back: %v", err)
	}
	ok, err := commitN(t, s, 1000, 1010)
	if err != nil {
		t.Fatalf("writing once space is back: %v", err)
	}
	answered = append(answered, ok...)
	if n := logs.FilterMessage("sqlite store writable again").Len(); n != 1 {
		t.Errorf("%d 'writable again' lines, want 1", n)
	}

	disk.set(1<<30, true)
	if _, err := commitN(t, s, 2000, 2001); !errors.As(err, new(*trial.UnavailableError)) {
		t.Errorf("write on a read-only disk: %v, want a *trial.UnavailableError", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping on a read-only disk: ready")
	}
	checkAnswered(t, s, answered)
}

// checkAnswered closes s and checks that every answered decision reads back.
func checkAnswered(t *testing.T, s *Store, answered []string) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(s.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	recs, err := r.ListDecisions(t.Context(), trial.DecisionQuery{Study: "s1", Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, rec := range recs {
		have[rec.ID] = true
	}
	for _, id := range answered {
		if !have[id] {
			t.Fatalf("answered decision %s lost (%d of %d answered are stored)", id, len(recs), len(answered))
		}
	}
	t.Logf("%d answered decisions, all stored", len(answered))
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips the
// test when this process may not mount (not root, or in a container
// without CAP_SYS_ADMIN); TestDiskGuardSimulated covers the logic there.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the simulated disk test covers the guard", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// On a real 20 MiB tmpfs, filled with decisions and a filler file: the WAL
// stays under wal_limit_bytes (plus one transaction), writes are refused
// and readiness fails before the disk is full (no write ever meets a full
// disk), few error lines are logged, no answered decision is lost, and the
// store writes again by itself once the filler is deleted.
func TestDiskFullTmpfs(t *testing.T) {
	dir := mountTmpfs(t, 20<<20)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 6<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	var tick atomic.Int64 // every look at the disk is a second later
	now := func() time.Time { return time.Unix(tick.Add(1), 0) }
	core, logs := observer.New(zap.InfoLevel)
	const walLimit, minFree = 2 << 20, 4 << 20
	s, err := Open(filepath.Join(dir, "jitai.db"), Options{WALLimit: walLimit, MinFree: minFree, Now: now}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	enrol(t, s, "s1", "p1")
	var answered []string
	var maxWAL int64
	var refusal error
	for i := 0; refusal == nil; i++ {
		if i > 10000 {
			t.Fatal("10000 decisions of 4 KB fit on a 20 MiB disk: the guard never refused")
		}
		ok, err := commitN(t, s, i, i+1)
		answered = append(answered, ok...)
		refusal = err
		if fi, err := os.Stat(s.path + "-wal"); err == nil {
			maxWAL = max(maxWAL, fi.Size())
		}
	}
	var ue *trial.UnavailableError
	if !errors.As(refusal, &ue) || !strings.Contains(ue.Reason, "min_free_bytes") {
		t.Fatalf("first refusal after %d decisions: %v; want the guard's refusal under min_free_bytes, before the disk is full", len(answered), refusal)
	}
	st, _ := StatDisk(s.path)
	db, _ := os.Stat(s.path)
	t.Logf("refused after %d decisions: %d bytes free, database %d bytes, largest WAL %d bytes, %d WAL truncations", len(answered), st.Free, db.Size(), maxWAL, s.Stats().WALTruncations)
	if maxWAL > walLimit+1<<20 {
		t.Errorf("WAL reached %d bytes, over wal_limit_bytes %d plus one transaction", maxWAL, walLimit)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("ready while under min_free_bytes")
	}
	for i := range 200 {
		if _, err := commitN(t, s, 100000+i, 100001+i); !errors.As(err, new(*trial.UnavailableError)) {
			t.Fatalf("write while full: %v", err)
		}
	}
	if n := errorLines(logs); n > 1 {
		t.Errorf("%d error lines while full, want 1", n)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("not ready after space was freed: %v", err)
	}
	ok, err := commitN(t, s, 200000, 200010)
	if err != nil {
		t.Fatalf("writing after space was freed: %v", err)
	}
	checkAnswered(t, s, append(answered, ok...))
}

// A database file the server cannot write (chmod 0444 when not root; as
// root, which ignores file modes, a read-only bind mount of the file) opens,
// but the store is not ready and refuses writes as unavailable, never as an
// internal error.
func TestReadOnlyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jitai.db")
	s, err := Open(path, Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	enrol(t, s, "s1", "p1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	readOnlyFile(t, path)
	s, err = Open(path, Options{}, zap.NewNop())
	if err != nil {
		t.Fatalf("opening a read-only database: %v", err)
	}
	defer s.Close()
	var ue *trial.UnavailableError
	if err := s.Ping(t.Context()); !errors.As(err, &ue) {
		t.Errorf("Ping on a read-only database: %v, want a *trial.UnavailableError", err)
	}
	if _, err := commitN(t, s, 0, 1); !errors.As(err, &ue) {
		t.Errorf("write on a read-only database: %v, want a *trial.UnavailableError", err)
	}
	if _, err := s.Participant(t.Context(), "s1", "p1"); err != nil {
		t.Errorf("reading a read-only database: %v", err)
	}
}

// readOnlyFile makes path unwritable for this process.
func readOnlyFile(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, args := range [][]string{{"--bind", path, path}, {"-o", "remount,ro,bind", path}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			_ = exec.Command("umount", path).Run()
			t.Skipf("root, and cannot bind-mount the file read-only (%v: %s)", err, strings.TrimSpace(string(out)))
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", path).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", path, err, out)
		}
	})
}
