package trial_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/jitai/jitai/"

// goList runs `go list` with args and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// TestLayers holds the dependency rules of docs/architecture.md: the leaf
// and the stores import no OPA and no service; the leaf imports no store;
// the HTTP API and the console import no store implementation (outside
// their tests).
func TestLayers(t *testing.T) {
	stores := []string{"engine/store/sqlite", "engine/store/redisstore", "engine/store/memstore", "engine/store/storetest"}
	for _, pkg := range append([]string{"engine/trial"}, stores...) {
		for _, dep := range goList(t, "-deps", module+pkg) {
			if strings.Contains(dep, "open-policy-agent") {
				t.Errorf("%s depends on %s: the domain and the stores must not import OPA", pkg, dep)
			}
			rel := strings.TrimPrefix(dep, module)
			if rel == "engine" || rel == "engine/decision" || rel == "policies" || strings.HasPrefix(rel, "engine/api") || rel == "engine/console" {
				t.Errorf("%s depends on %s: the domain and the stores must not import the kernel, the service or the transport", pkg, rel)
			}
			if pkg == "engine/trial" && strings.HasPrefix(rel, "engine/store/") {
				t.Errorf("engine/trial depends on the store %s", rel)
			}
		}
	}
	for _, transport := range []string{"engine/api", "engine/console"} {
		imports := goList(t, "-f", `{{join .Imports " "}}`, module+transport)
		for _, s := range stores {
			if slices.Contains(imports, module+s) {
				t.Errorf("%s imports %s: the transport reaches stores only through the engine service", transport, s)
			}
		}
	}
	// The console asks the API's route table through api.Permits, which
	// serve hands it; it does not import the API.
	if slices.Contains(goList(t, "-f", `{{join .Imports " "}}`, module+"engine/console"), module+"engine/api") {
		t.Error("engine/console imports engine/api: it gets api.Permits from its caller")
	}
	for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, module+"engine/schedule") {
		if rel, ok := strings.CutPrefix(imp, module); ok && rel != "engine/trial" && rel != "policies" && rel != "experiments" {
			t.Errorf("engine/schedule imports %s: the schedule calculus imports only engine/trial, policies and experiments", rel)
		}
	}
	for _, dep := range goList(t, "-deps", module+"engine/schedule") {
		if rel := strings.TrimPrefix(dep, module); rel == "engine" || rel == "engine/decision" || strings.HasPrefix(rel, "engine/store/") {
			t.Errorf("engine/schedule depends on %s: it must hold no store and no service", rel)
		}
	}
	for _, pkg := range []string{"experiments/export", "engine/decision"} {
		if slices.Contains(goList(t, "-deps", module+pkg), module+"engine") {
			t.Errorf("%s depends on the engine service; offline tools use the domain and the kernel", pkg)
		}
	}
}
