package host_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/policies/policytest"
)

// A hot reload starts the new version's plugins before it serves, and
// stops the retired version's plugin processes once its decisions are done:
// no plugin process outlives the version that started it.
func TestReloadStartsNewPluginsAndStopsRetiredOnes(t *testing.T) {
	exe, sum := testPlugin(t)
	root := t.TempDir()
	yaml := func(version string) string {
		return studyYAML("gate-open", "plugins:\n"+pluginYAML("gate", "enricher", exe, sum,
			`config: {derived: {block: false, level: 7}, version: "`+version+`"}`))
	}
	s := policytest.WriteStudy(t, filepath.Join(root, "gate-open"), yaml("gate/1"), gatePolicy)
	r := newRig(t, host.Options{}, s)
	r.enroll(t, "gate-open", "p1")
	at := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

	rec := r.decide(t, "gate-open", "p1", at, nil)
	if len(rec.Plugins) != 1 || rec.Plugins[0].Version != "gate/1" {
		t.Fatalf("before reload: plugins %+v, want gate/1", rec.Plugins)
	}
	oldPID := r.set("gate-open").PID("gate")
	if oldPID == 0 || !alive(oldPID) {
		t.Fatalf("plugin pid %d is not running", oldPID)
	}

	if err := os.WriteFile(filepath.Join(s.Dir, "study.yaml"), []byte(yaml("gate/2")), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := r.eng.ReloadStudy(context.Background(), "gate-open")
	if err != nil || a.Outcome != engine.ReloadLoaded {
		t.Fatalf("reload: %+v, %v", a, err)
	}
	r.eng.WaitRetired()
	newPID := r.set("gate-open").PID("gate")
	if newPID == 0 || newPID == oldPID || !alive(newPID) {
		t.Fatalf("after reload the plugin runs as pid %d (before: %d)", newPID, oldPID)
	}
	waitFor(t, func() bool { return !alive(oldPID) })

	rec = r.decide(t, "gate-open", "p1", at.Add(time.Hour), nil)
	if len(rec.Plugins) != 1 || rec.Plugins[0].Version != "gate/2" || rec.Plugins[0].Fallback != "" {
		t.Fatalf("after reload: plugins %+v, want gate/2 without fallback", rec.Plugins)
	}
	if rec.PolicyRevision != a.Revision || rec.PolicyRevision == s.Revision {
		t.Errorf("record revision %s, want the reloaded %s", rec.PolicyRevision, a.Revision)
	}

	// A reload that fails (the plugin's checksum no longer matches) keeps
	// the serving version and its plugin.
	bad := strings.Replace(yaml("gate/3"), sum, "sha256:"+strings.Repeat("0", 64), 1)
	if err := os.WriteFile(filepath.Join(s.Dir, "study.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if a, err := r.eng.ReloadStudy(context.Background(), "gate-open"); err == nil || a.Outcome != engine.ReloadFailed || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("reload with a wrong checksum: %+v, %v; want failed naming the checksum", a, err)
	}
	if !alive(newPID) {
		t.Fatal("a failed reload stopped the serving version's plugin")
	}
	rec = r.decide(t, "gate-open", "p1", at.Add(2*time.Hour), nil)
	if rec.Plugins[0].Version != "gate/2" || rec.Plugins[0].Fallback != "" {
		t.Errorf("after a failed reload: plugins %+v, want gate/2 still serving", rec.Plugins)
	}
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true // no /proc: the signal check is all there is
	}
	if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}
