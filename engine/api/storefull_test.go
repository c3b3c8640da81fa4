package api_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/store/sqlite"
)

// disk is a simulated file system under the SQLite store (an injected
// DiskStatus); every look at it is a second after the last one, so the
// store sees each change at once.
type disk struct {
	mu       sync.Mutex
	free     uint64
	readOnly bool
	tick     atomic.Int64
}

func (d *disk) status(string) (sqlite.Disk, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return sqlite.Disk{Free: d.free, ReadOnly: d.readOnly}, nil
}

func (d *disk) set(free uint64, readOnly bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.free, d.readOnly = free, readOnly
}

// cannotWrite checks a 503 problem+json of a store that cannot write, with
// its Retry-After.
func cannotWrite(t *testing.T, what string, r response, retryAfter string) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Content-Type") != "application/problem+json" ||
		r.Header.Get("Retry-After") != retryAfter || !strings.Contains(string(r.Body), "store-cannot-write") {
		t.Errorf("%s: %d %s Retry-After %q: %s; want 503 problem+json store-cannot-write, Retry-After %s",
			what, r.Status, r.Header.Get("Content-Type"), r.Header.Get("Retry-After"), r.Body, retryAfter)
	}
}

// A nearly full disk or a read-only file: enrolment and decisions answer 503
// problem+json with Retry-After (never 500), and /readyz is 503; once space
// is back, both work again without a restart.
func TestStoreCannotWrite(t *testing.T) {
	d := &disk{free: 1 << 40}
	e := newEnv(t, storeOptions(sqlite.Options{MinFree: 256 << 20, DiskStatus: d.status, Now: func() time.Time { return time.Unix(d.tick.Add(1), 0) }}))
	st := e.study(stressMRT)
	e.enrol(stressMRT, "p1")
	when := at(0, 14, 30)
	e.decide(stressMRT, "p1", appPoint(st), when, nil)
	decide := func() response {
		return e.do(req{Method: "POST", Path: decisionsPath(stressMRT, "p1"), Body: map[string]any{"decision_point": appPoint(st), "time": rfc(when)}})
	}
	enrol := func(p string) response {
		return e.do(req{Method: "POST", Path: participantsPath(stressMRT), Body: map[string]any{"participant_id": p, "timezone": "Europe/London"}})
	}

	d.set(100<<20, false)
	cannotWrite(t, "enrol on a nearly full disk", enrol("p2"), "10")
	when = at(1, 14, 30)
	e.clock.Set(when)
	cannotWrite(t, "decide on a nearly full disk", decide(), "10")
	cannotWrite(t, "/readyz on a nearly full disk", e.do(req{Method: "GET", Path: "/readyz"}), "10")

	d.set(1<<40, false)
	e.do(req{Method: "GET", Path: "/readyz"}).expect(t, http.StatusOK)
	enrol("p2").expect(t, http.StatusCreated)
	decide().expect(t, http.StatusOK)

	d.set(1<<40, true)
	cannotWrite(t, "enrol on a read-only file", enrol("p3"), "60")
	cannotWrite(t, "/readyz on a read-only file", e.do(req{Method: "GET", Path: "/readyz"}), "60")
}

// A real read-only database file (chmod 0444; as root, which ignores file
// modes, a read-only bind mount of the file): the server starts and reads,
// but enrolment answers 503 problem+json with Retry-After, never 500, and
// /readyz is 503.
func TestReadOnlyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitai.db")
	st, err := sqlite.Open(path, sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
	} else {
		for _, args := range [][]string{{"--bind", path, path}, {"-o", "remount,ro,bind", path}} {
			if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
				_ = exec.Command("umount", path).Run()
				t.Skipf("root, and cannot bind-mount the file read-only (%v: %s)", err, out)
			}
		}
		t.Cleanup(func() { _ = exec.Command("umount", path).Run() })
	}
	e := newEnv(t, func(c *envConfig) { c.dbPath = path })
	r := e.do(req{Method: "POST", Path: participantsPath(stressMRT), Body: map[string]any{"participant_id": "p1", "timezone": "Europe/London"}})
	cannotWrite(t, "enrol on a read-only database", r, "60")
	cannotWrite(t, "/readyz on a read-only database", e.do(req{Method: "GET", Path: "/readyz"}), "60")
}
