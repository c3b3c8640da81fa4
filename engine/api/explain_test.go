package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/auth"
	"github.com/jitai/jitai/policies/policytest"
)

// explanationDoc is the explanation as the API promises it.
type explanationDoc struct {
	DecisionID      string   `json:"decision_id"`
	Action          string   `json:"action"`
	PolicyRevision  string   `json:"policy_revision"`
	LoadedRevision  string   `json:"loaded_revision"`
	PolicyEvaluated bool     `json:"policy_evaluated"`
	Reproduced      *bool    `json:"reproduced"`
	Summary         []string `json:"summary"`
	Unavailable     []struct {
		Reason string   `json:"reason"`
		Source string   `json:"source"`
		Rules  []string `json:"rules"`
		Detail string   `json:"detail"`
	} `json:"unavailable"`
	Factors []struct {
		Name        string   `json:"name"`
		Probability *float64 `json:"probability"`
		Draw        *float64 `json:"draw"`
		Detail      string   `json:"detail"`
	} `json:"factors"`
	Rules []struct {
		Rule   string `json:"rule"`
		Head   string `json:"head"`
		File   string `json:"file"`
		Line   int    `json:"line"`
		Inputs []struct {
			Ref     string `json:"ref"`
			Value   any    `json:"value"`
			Defined bool   `json:"defined"`
		} `json:"inputs"`
	} `json:"rules"`
}

// TestExplainAPI: a designer gets the explanation of a decision made in
// quiet hours (the policy's reason, the rule that gave it and the input
// value it read) and of an available one (factor draws); an app token is
// forbidden; an unknown id is a problem+json 404; the unscoped form finds
// the decision only in the studies the token is bound to.
func TestExplainAPI(t *testing.T) {
	ae := newAuthEnv(t)
	ae.enrolAs(pAdmin, "p-x").expect(t, http.StatusCreated)
	var quiet, day struct {
		ID string `json:"decision_id"`
	}
	ae.decideAs(pApp, "p-x", at(0, 23, 15)).expect(t, http.StatusOK).decode(t, &quiet)
	ae.decideAs(pApp, "p-x", at(1, 12, 0)).expect(t, http.StatusOK).decode(t, &day)
	s := "/v1/studies/" + stressMRT

	var ex explanationDoc
	ae.as(pDesigner, req{Method: "GET", Path: s + "/decisions/" + quiet.ID + "/explain"}).expect(t, http.StatusOK).decode(t, &ex)
	if ex.DecisionID != quiet.ID || ex.Action != "none" || !ex.PolicyEvaluated || ex.Reproduced == nil || !*ex.Reproduced || ex.PolicyRevision != ex.LoadedRevision {
		t.Fatalf("explanation: %+v", ex)
	}
	i := slices.IndexFunc(ex.Unavailable, func(u struct {
		Reason string   `json:"reason"`
		Source string   `json:"source"`
		Rules  []string `json:"rules"`
		Detail string   `json:"detail"`
	}) bool {
		return u.Reason == "quiet_hours"
	})
	if i < 0 || ex.Unavailable[i].Source != "policy" || len(ex.Unavailable[i].Rules) != 1 || !strings.Contains(ex.Unavailable[i].Rules[0], "policy.rego:") {
		t.Fatalf("quiet_hours not explained by its rule: %+v", ex.Unavailable)
	}
	found := false
	for _, r := range ex.Rules {
		for _, in := range r.Inputs {
			if r.Rule == "now_minute" && in.Ref == "input.local.minute_of_day" && in.Defined && in.Value == float64(23*60+15) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no rule read input.local.minute_of_day = 1395: %+v", ex.Rules)
	}
	if len(ex.Summary) < 3 || !strings.Contains(strings.Join(ex.Summary, " "), "quiet_hours") {
		t.Errorf("summary: %q", ex.Summary)
	}

	ae.as(pDesigner, req{Method: "GET", Path: s + "/decisions/" + day.ID + "/explain"}).expect(t, http.StatusOK).decode(t, &ex)
	if len(ex.Factors) != 2 || ex.Factors[0].Probability == nil || ex.Factors[0].Draw == nil || !strings.Contains(ex.Factors[0].Detail, "drawn with probability") {
		t.Errorf("factors not explained: %+v", ex.Factors)
	}

	checkProblem(t, ae.as(pApp, req{Method: "GET", Path: s + "/decisions/" + day.ID + "/explain"}), http.StatusForbidden, "")
	checkProblem(t, ae.as(pAnalyst, req{Method: "GET", Path: s + "/decisions/" + day.ID + "/explain"}), http.StatusForbidden, "")
	checkProblem(t, ae.as(pDesigner, req{Method: "GET", Path: s + "/decisions/01NOSUCHDECISION000000000/explain"}), http.StatusNotFound, "id")
	checkProblem(t, ae.as(pDesigner, req{Method: "GET", Path: "/v1/studies/no-such-study/decisions/" + day.ID + "/explain"}), http.StatusForbidden, "")
	checkProblem(t, ae.as(pAdmin, req{Method: "GET", Path: "/v1/studies/no-such-study/decisions/" + day.ID + "/explain"}), http.StatusNotFound, "study")

	// The unscoped form; the audit log names the study it was found in.
	ae.as(pDesigner, req{Method: "GET", Path: "/v1/decisions/" + day.ID + "/explain"}).expect(t, http.StatusOK).decode(t, &ex)
	if ex.DecisionID != day.ID {
		t.Errorf("unscoped explain: %+v", ex)
	}
	located := 0
	for _, e := range readAudit(t, ae.auditFile) {
		if e.Route == "GET /v1/decisions/{id}/explain" && e.Outcome == "found" {
			located++
			if e.Study != stressMRT || e.Action != "explain-decision" || e.TokenName == "" {
				t.Errorf("audit entry of the unscoped explain: %+v", e)
			}
		}
	}
	if located != 1 {
		t.Errorf("%d audit entries saying where the unscoped explain found its decision, want 1", located)
	}
	plain, _, err := auth.Create(ae.tokensFile, "designer-other", auth.RoleDesigner, []string{moodMOST}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ae.tok["designer-other"] = plain
	checkProblem(t, ae.as("designer-other", req{Method: "GET", Path: "/v1/decisions/" + day.ID + "/explain"}), http.StatusNotFound, "id")
	checkProblem(t, ae.as("designer-other", req{Method: "GET", Path: s + "/decisions/" + day.ID + "/explain"}), http.StatusForbidden, "study")
}

// A decision made before a hot reload is explained with the revision it was
// made with, which the engine still keeps, not with the one serving now.
func TestExplainAfterReload(t *testing.T) {
	e, dir := newSwapEnv(t)
	e.enrol("swap", "p1")
	_, before := e.decide("swap", "p1", "app", at(0, 9, 0), nil)
	policytest.WriteFiles(t, dir, "", swapPolicy("b"))
	e.do(req{Method: "POST", Path: "/v1/studies/swap/reload"}).expect(t, http.StatusOK)
	_, after := e.decide("swap", "p1", "app", at(0, 10, 0), nil)
	if before.PolicyRevision != swapRevision(t, "a") || after.PolicyRevision != swapRevision(t, "b") {
		t.Fatalf("revisions %s then %s; want a then b", before.PolicyRevision, after.PolicyRevision)
	}
	var ex explanationDoc
	e.do(req{Method: "GET", Path: "/v1/studies/swap/decisions/" + before.DecisionID + "/explain"}).expect(t, http.StatusOK).decode(t, &ex)
	if !ex.PolicyEvaluated || ex.Reproduced == nil || !*ex.Reproduced || ex.PolicyRevision != swapRevision(t, "a") || ex.LoadedRevision != swapRevision(t, "a") {
		t.Fatalf("explanation of the decision made before the reload: %+v", ex)
	}
	if !strings.Contains(strings.Join(ex.Summary, " "), "rev_a") {
		t.Errorf("summary does not give version a's reason: %q", ex.Summary)
	}
}

// TestExplainMissedPoint: asking for a scheduled point after its window
// gives its missed record (engine_unavailable), and the designer gets that
// record explained from what it holds (no input, no policy evaluated), not
// an internal error.
func TestExplainMissedPoint(t *testing.T) {
	ae := newAuthEnv(t)
	ae.enrolAs(pAdmin, "p-miss").expect(t, http.StatusCreated)
	ae.clock.Set(at(0, 9, 15))
	var missed struct {
		ID      string   `json:"decision_id"`
		Action  string   `json:"action"`
		Reasons []string `json:"reasons"`
	}
	r := req{Method: "POST", Path: decisionsPath(stressMRT, "p-miss"), Body: map[string]any{"decision_point": "morning", "time": rfc(at(0, 9, 15))}}
	ae.as(pApp, r).expect(t, http.StatusOK).decode(t, &missed)
	if missed.Action != "none" || !slices.Equal(missed.Reasons, []string{"engine_unavailable"}) {
		t.Fatalf("morning asked for after its window: %+v, want the missed record", missed)
	}
	var ex explanationDoc
	ae.as(pDesigner, req{Method: "GET", Path: "/v1/studies/" + stressMRT + "/decisions/" + missed.ID + "/explain"}).expect(t, http.StatusOK).decode(t, &ex)
	if ex.DecisionID != missed.ID || ex.Action != "none" || ex.PolicyEvaluated || ex.Reproduced != nil || len(ex.Rules) != 0 || len(ex.Factors) != 0 {
		t.Errorf("explanation of a missed point: %+v", ex)
	}
	if len(ex.Unavailable) != 1 || ex.Unavailable[0].Reason != "engine_unavailable" || ex.Unavailable[0].Source != "engine" || !strings.Contains(ex.Unavailable[0].Detail, "missed") {
		t.Errorf("engine_unavailable not explained as the engine's: %+v", ex.Unavailable)
	}
	if !strings.Contains(strings.Join(ex.Summary, " "), "recorded as missed") {
		t.Errorf("summary: %q", ex.Summary)
	}
}
