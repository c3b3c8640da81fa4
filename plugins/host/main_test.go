package host_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/policies"
)

// binDir holds the plugin executables the tests build once.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jitai-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var builds sync.Map // package path -> *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// buildPlugin builds a plugin's main package (relative to the repository
// root) once per test run, without the race detector (the plugin is not
// under test there), and returns the executable's path.
func buildPlugin(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &buildResult{})
	r := v.(*buildResult)
	r.once.Do(func() {
		r.path = filepath.Join(binDir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", r.path, "./"+pkg)
		cmd.Dir = "../.."
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			r.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out.String())
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// testPlugin is the test plugin's executable and its checksum.
func testPlugin(t testing.TB) (string, string) {
	p := buildPlugin(t, "plugins/internal/testplugin")
	return p, sha256File(t, p)
}

// studyYAML is a one-decision-point study with the given extra sections.
func studyYAML(id, extra string) string {
	return fmt.Sprintf(`id: %s
name: Plugin test study
timezone: Europe/London
seed: "%s-seed-0123456789"
decision_points:
  - {id: app, kind: app}
crisis:
  text: "Call 116 123."
%s`, id, id, extra)
}

// rig is an engine with a plugin host over a fresh embedded store.
type rig struct {
	eng  *engine.Engine
	data string
	mu   sync.Mutex
	sets map[string]*host.Set
	// enrolling is set while enroll runs: participants enrol at rigEpoch,
	// before the tests' decisions; otherwise the clock is the real one.
	enrolling bool

	close     func()
	closeOnce sync.Once
}

func newRig(t testing.TB, opts host.Options, studies ...*policies.Study) *rig {
	t.Helper()
	return newRigAt(t, t.TempDir(), opts, studies...)
}

// newRigAt is newRig with the store and the plugins' data under data.
func newRigAt(t testing.TB, data string, opts host.Options, studies ...*policies.Study) *rig {
	t.Helper()
	r := &rig{data: data, sets: map[string]*host.Set{}}
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(r.data, "plugins")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = time.Minute // a loaded machine starts processes slowly
	}
	store, err := sqlite.Open(filepath.Join(r.data, "jitai.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	factory := func(s *policies.Study) (engine.StudyPlugins, error) {
		set, err := host.Start(s, opts)
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.sets[s.Config.ID] = set
		r.mu.Unlock()
		return set, nil
	}
	// The tests decide at fixed days of 2026 (the skew check is off) after
	// enrolments at rigEpoch (enroll); events are checked against the real
	// clock, so are in its past.
	now := func() time.Time {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.enrolling {
			return rigEpoch
		}
		return time.Now()
	}
	r.eng, err = engine.New(engine.Components{Store: store, Studies: studies, Plugins: factory, Now: now, MaxClockSkew: -1})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	r.close = func() {
		if err := r.eng.Close(); err != nil {
			t.Error(err)
		}
		store.Close()
	}
	t.Cleanup(r.Close)
	return r
}

// Close stops the engine's plugins and closes the store (once).
func (r *rig) Close() { r.closeOnce.Do(r.close) }

func (r *rig) set(id string) *host.Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sets[id]
}

// rigEpoch is when the rig's participants enrol: before every decision of
// the tests.
var rigEpoch = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func (r *rig) enroll(t testing.TB, study string, ids ...string) {
	t.Helper()
	r.mu.Lock()
	r.enrolling = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.enrolling = false
		r.mu.Unlock()
	}()
	for _, id := range ids {
		if _, _, err := r.eng.Enroll(context.Background(), study, engine.EnrollRequest{ParticipantID: id}); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *rig) decide(t testing.TB, study, participant string, at time.Time, ctx map[string]any) *trial.Record {
	t.Helper()
	ans, err := r.eng.Decide(context.Background(), study, participant, engine.DecideRequest{DecisionPoint: "app", Time: at, Context: ctx})
	if err != nil {
		t.Fatalf("decide: %v", err)
	}
	return ans.Record
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pluginYAML declares one plugin. Unless extra sets a timeout, the plugin's
// calls get testTimeout: a test that is not about deadlines must not
// depend on how fast a loaded machine answers.
func pluginYAML(name, kind, path, sum, extra string) string {
	if !strings.Contains(extra, "timeout:") {
		extra = "timeout: " + testTimeout.String() + "\n" + extra
	}
	return fmt.Sprintf("  - name: %s\n    kind: %s\n    path: %s\n    checksum: %s\n%s", name, kind, path, sum, indent(extra, "    "))
}

// testTimeout is the plugin deadline of tests that are not about deadlines,
// and the limit of their waits for something a plugin does.
const testTimeout = 30 * time.Second

// calls is a host.Options.Observer that counts the plugin calls by name
// (enrich, probability, outcome, notify, restart, ...) and outcome, and
// can hold the goroutine making a given call: a test waits for what the
// host did rather than for time to pass.
type calls struct {
	mu    sync.Mutex
	n     map[[2]string]int
	total map[string]int
	holds map[string]chan struct{} // "notify#4": held until closed
}

func newCalls() *calls {
	return &calls{n: map[[2]string]int{}, total: map[string]int{}, holds: map[string]chan struct{}{}}
}

// PluginCall implements engine.PluginObserver.
func (c *calls) PluginCall(_, _, _, call, outcome string, _ time.Duration) {
	c.mu.Lock()
	c.n[[2]string{call, outcome}]++
	c.total[call]++
	hold := c.holds[fmt.Sprintf("%s#%d", call, c.total[call])]
	c.mu.Unlock()
	if hold != nil {
		<-hold
	}
}

// count is the number of call calls with outcome so far ("" for any).
func (c *calls) count(call, outcome string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if outcome == "" {
		return c.total[call]
	}
	return c.n[[2]string{call, outcome}]
}

// hold makes the nth call of call (counted from the start) wait, after it
// was counted, until release is called (at the latest when t ends, before
// the cleanups registered earlier, such as the one closing the plugins).
func (c *calls) hold(t testing.TB, call string, nth int) (release func()) {
	ch := make(chan struct{})
	c.mu.Lock()
	c.holds[fmt.Sprintf("%s#%d", call, nth)] = ch
	c.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
