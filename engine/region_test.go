package engine_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// TestRegionalSignposting: a participant in the US who answers PHQ-9 item 9
// = 2 gets the US crisis resources (988), not the UK's 999; one without a
// region gets the study default; a region set later by PATCH applies.
func TestRegionalSignposting(t *testing.T) {
	ctx := context.Background()
	study := policytest.Load(t, "../policies/examples/stress-mrt")
	clk := &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	eng, err := engine.New(engine.Components{Store: memstore.New(), Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	phones := func(p string) string {
		t.Helper()
		clk.now = clk.now.Add(time.Minute)
		if _, _, err := eng.Ingest(ctx, study.Config.ID, p, []trial.Event{{ID: "a" + clk.now.Format("1504"), Type: trial.EventAssessment, Time: clk.now.Add(-30 * time.Second),
			Data: json.RawMessage(`{"instrument":"phq9","items":[2,2,2,2,1,1,1,1,2]}`)}}); err != nil {
			t.Fatal(err)
		}
		ans, err := eng.Decide(ctx, study.Config.ID, p, engine.DecideRequest{DecisionPoint: "on_demand", Time: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Action      string `json:"action"`
			Signposting struct {
				Contacts []struct {
					Phone string `json:"phone"`
				} `json:"contacts"`
			} `json:"signposting"`
		}
		if err := json.Unmarshal(ans.Body, &body); err != nil || body.Action != trial.ActionSafety {
			t.Fatalf("%s at risk: %s", p, ans.Body)
		}
		var out []string
		for _, c := range body.Signposting.Contacts {
			if c.Phone != "" {
				out = append(out, c.Phone)
			}
		}
		return strings.Join(out, ",")
	}
	for _, e := range []engine.EnrollRequest{
		{ParticipantID: "ny", Timezone: "America/New_York", Region: "US"},
		{ParticipantID: "london", Timezone: "Europe/London", Region: "GB"},
		{ParticipantID: "unknown", Timezone: "Europe/London"},
	} {
		if _, _, err := eng.Enroll(ctx, study.Config.ID, e); err != nil {
			t.Fatal(err)
		}
	}
	if got := phones("ny"); !strings.Contains(got, "988") || strings.Contains(got, "999") {
		t.Fatalf("US participant at risk was given %s, want 988 and not 999", got)
	}
	if got := phones("london"); !strings.Contains(got, "999") || strings.Contains(got, "988") {
		t.Fatalf("GB participant at risk was given %s, want 999", got)
	}
	if got := phones("unknown"); !strings.Contains(got, "999") {
		t.Fatalf("a participant without a region was given %s, want the study default", got)
	}
	us := "US"
	if _, err := eng.UpdateParticipant(ctx, study.Config.ID, "unknown", engine.UpdateRequest{Region: &us}); err != nil {
		t.Fatal(err)
	}
	if got := phones("unknown"); !strings.Contains(got, "988") {
		t.Fatalf("after PATCH region US: %s, want 988", got)
	}
	if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: "bad", Region: "usa"}); err == nil {
		t.Fatal("region usa was accepted")
	}
}
