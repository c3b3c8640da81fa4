package api_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/policies/policytest"
)

// TestShadowRoutes: a candidate posted over HTTP is shadowed (201); one
// with a file outside a study's layout or one that does not compile is
// refused with 422 naming the file; the report counts what the candidate
// changes on live decisions; a candidate put in the study's shadow/ folder
// replaces it; promoting it makes it serve; after a drop GET is 404.
func TestShadowRoutes(t *testing.T) {
	e, dir := newSwapEnv(t)
	path := "/v1/studies/swap/shadow"
	if r := e.do(req{Method: "GET", Path: path}); r.Status != 404 || !strings.Contains(string(r.Body), "no-shadow") {
		t.Fatalf("GET without a candidate: %d %s", r.Status, r.Body)
	}
	bad := e.do(req{Method: "PUT", Path: path, Body: map[string]any{"files": map[string]string{"study.yaml": swapStudyYAML, "policy/../../x.rego": "x"}}})
	if bad.Status != 422 || !strings.Contains(string(bad.Body), `"field":"files[\"policy/../../x.rego\"]"`) {
		t.Fatalf("a path outside the study: %d %s", bad.Status, bad.Body)
	}
	broken := e.do(req{Method: "PUT", Path: path, Body: map[string]any{"files": map[string]string{"study.yaml": swapStudyYAML, "policy/p.rego": swapBroken}}})
	if broken.Status != 422 || !strings.Contains(string(broken.Body), "p.rego:4") {
		t.Fatalf("a candidate that does not compile: %d %s", broken.Status, broken.Body)
	}
	put := e.do(req{Method: "PUT", Path: path, Body: map[string]any{"files": map[string]string{"study.yaml": swapStudyYAML, "policy/p.rego": swapPolicy("b")}}})
	var rep engine.ShadowReport
	if put.Status != 201 || json.Unmarshal(put.Body, &rep) != nil || rep.CandidateRevision != swapRevision(t, "b") || rep.Source != "posted" {
		t.Fatalf("PUT a candidate: %d %s", put.Status, put.Body)
	}
	for i := range 5 {
		e.enrol("swap", "p"+string(rune('a'+i)))
		e.decide("swap", "p"+string(rune('a'+i)), "app", at(0, 9, i), nil)
	}
	if err := e.eng.FlushShadow(context.Background(), "swap"); err != nil {
		t.Fatal(err)
	}
	get := e.do(req{Method: "GET", Path: path})
	if get.Status != 200 || json.Unmarshal(get.Body, &rep) != nil {
		t.Fatalf("GET: %d %s", get.Status, get.Body)
	}
	if rep.Decisions != 5 || rep.Changed != 5 || rep.ByReason["+rev_b"] != 5 || rep.ByReason["-rev_a"] != 5 || len(rep.Diffs) != 5 {
		t.Fatalf("the report of 5 decisions whose reason the candidate renames: %s", get.Body)
	}

	// A candidate in the study's shadow/ folder replaces the posted one.
	sdir := filepath.Join(dir, engine.ShadowFolder)
	policytest.WriteFiles(t, sdir, swapStudyYAML, swapPolicy("c"))
	deadline := time.Now().Add(time.Minute)
	for rep.CandidateRevision != swapRevision(t, "c") {
		if time.Now().After(deadline) {
			t.Fatalf("the watcher did not shadow the folder's candidate: %+v", rep)
		}
		time.Sleep(5 * time.Millisecond)
		r := e.do(req{Method: "GET", Path: path})
		_ = json.Unmarshal(r.Body, &rep)
	}
	if rep.Source != sdir || rep.Decisions != 0 {
		t.Fatalf("the folder's candidate: %+v", rep)
	}
	prom := e.do(req{Method: "POST", Path: path + "/promote"})
	if prom.Status != 200 || !strings.Contains(string(prom.Body), swapRevision(t, "c")) {
		t.Fatalf("promote: %d %s", prom.Status, prom.Body)
	}
	if rt, _ := e.eng.Study("swap"); rt.Revision != swapRevision(t, "c") {
		t.Fatalf("serving %s after the promotion, want the candidate", rt.Revision)
	}
	if _, err := os.Stat(sdir); !os.IsNotExist(err) {
		t.Fatalf("the promoted candidate's folder is still there: %v", err)
	}
	if r := e.do(req{Method: "DELETE", Path: path}); r.Status != 404 {
		t.Fatalf("DELETE after the promotion ended the shadow: %d %s", r.Status, r.Body)
	}
	put = e.do(req{Method: "PUT", Path: path, Body: map[string]any{"files": map[string]string{"study.yaml": swapStudyYAML, "policy/p.rego": swapPolicy("d")}}})
	if put.Status != 201 {
		t.Fatalf("PUT: %d %s", put.Status, put.Body)
	}
	if r := e.do(req{Method: "DELETE", Path: path}); r.Status != 204 {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	if r := e.do(req{Method: "GET", Path: path}); r.Status != 404 {
		t.Fatalf("GET after DELETE: %d %s", r.Status, r.Body)
	}
}
