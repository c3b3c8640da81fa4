package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/auth"
	"github.com/jitai/jitai/engine/console"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// Studies of the fixture: stress-mrt with real decisions, and stress-srm
// (the same study under another id) whose records realise 0.7 of the
// prompt factor against the 0.6 logged.
const (
	live = "stress-mrt"
	srm  = "stress-srm"
)

// Principals of the fixture's token file.
const (
	tAnalyst      = "analyst"           // every study
	tDesignerLive = "designer-live"     // stress-mrt only
	tApp          = "app"               // may not sign in
	tRevocable    = "analyst-revocable" // revoked by a test
)

type fixture struct {
	srv        *httptest.Server
	eng        *engine.Engine
	tokens     map[string]string
	tokensFile string
}

// clock is the engine's clock, moved by the fixture.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// copyStudy copies the stress-mrt example under another id.
func copyStudy(t *testing.T, id string) string {
	t.Helper()
	from, to := "../../policies/examples/stress-mrt", filepath.Join(t.TempDir(), id)
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "study.yaml" {
			b = []byte(strings.Replace(string(b), "id: stress-mrt", "id: "+id, 1))
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(to, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// newFixture serves the real API and console over HTTP; withAuth turns
// token authentication on.
func newFixture(t *testing.T, withAuth bool) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "jitai.db"), sqlite.Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// The sample-ratio study's log, written before the engine starts: its
	// health is rebuilt from it.
	start := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	for i := range 1000 {
		p := 0.6
		rec := &trial.Record{ID: fmt.Sprintf("srm-%04d", i), Study: srm, Participant: fmt.Sprintf("q%02d", i%25), DecisionPoint: "on_demand",
			Time: start.Add(time.Duration(i) * time.Minute), RecordedAt: start.Add(time.Duration(i) * time.Minute), Action: trial.ActionNone,
			Available: true, Randomised: true, Factors: []trial.FactorDraw{{Name: "prompt", Type: "within", Level: min(1, i%10/3), Probability: &p}}}
		if err := st.CommitDecision(ctx, &trial.Commit{Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
	clk := &clock{t: start}
	srmDir := copyStudy(t, srm)
	studies := []*policies.Study{policytest.Load(t, "../../policies/examples/stress-mrt"), policytest.Load(t, srmDir)}
	eng, err := engine.New(engine.Components{Store: st, Studies: studies, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	// A refused reload of the sample-ratio study: the console shows it.
	yaml := filepath.Join(srmDir, "study.yaml")
	b, err := os.ReadFile(yaml)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(yaml, []byte(strings.Replace(string(b), "probability: 0.6", "probability: 1.6", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ReloadStudy(ctx, srm); err == nil {
		t.Fatal("a study with a probability of 1.6 was reloaded")
	}
	for i := range 12 {
		if _, _, err := eng.Enroll(ctx, live, engine.EnrollRequest{ParticipantID: fmt.Sprintf("p%02d", i), Timezone: "Europe/London"}); err != nil {
			t.Fatal(err)
		}
	}
	at := start
	for i := range 300 {
		at = at.Add(17 * time.Minute)
		clk.Set(at)
		req := engine.DecideRequest{DecisionPoint: "on_demand", Time: at}
		if i%4 == 0 {
			req.Context = map[string]any{"driving": true}
		}
		if _, err := eng.Decide(ctx, live, fmt.Sprintf("p%02d", i%12), req); err != nil {
			t.Fatalf("decision %d: %v", i, err)
		}
	}
	f := &fixture{eng: eng, tokens: map[string]string{}}
	srv := api.New(eng, zap.NewNop(), api.Options{})
	if withAuth {
		f.tokensFile = filepath.Join(t.TempDir(), "tokens.json")
		for name, spec := range map[string]struct {
			role    auth.Role
			studies []string
		}{tAnalyst: {auth.RoleAnalyst, nil}, tDesignerLive: {auth.RoleDesigner, []string{live}}, tApp: {auth.RoleApp, []string{live}}, tRevocable: {auth.RoleAnalyst, nil}} {
			plain, _, err := auth.Create(f.tokensFile, name, spec.role, spec.studies, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			f.tokens[name] = plain
		}
		v, err := auth.NewVerifier(f.tokensFile)
		if err != nil {
			t.Fatal(err)
		}
		srv.SetAuth(api.AuthOptions{Tokens: v})
	}
	con, err := console.New(eng, console.Options{Tokens: srv.Tokens(), Permits: api.Permits, Refresh: -1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(con.Wrap(srv))
	t.Cleanup(f.srv.Close)
	return f
}

// get reads an API route with the analyst's token (none without auth).
func (f *fixture) get(t *testing.T, path string, into any) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	if tok := f.tokens[tAnalyst]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
}

// health reads GET /v1/studies/{study}/health through the API.
func (f *fixture) health(t *testing.T, study string) engine.StudyHealth {
	t.Helper()
	var h engine.StudyHealth
	f.get(t, "/v1/studies/"+study+"/health", &h)
	return h
}
