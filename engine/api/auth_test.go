package api_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/auth"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/policies"
)

// authEnv is an env whose server requires tokens.
type authEnv struct {
	*env
	tokensFile, auditFile string
	tok                   map[string]string // principal -> plaintext token
	audit                 *auth.Audit
}

// Principals of the route x role table.
const (
	pNone         = "no-token"
	pRevoked      = "revoked"
	pApp          = "app"
	pDesigner     = "designer"
	pAnalyst      = "analyst"
	pAdmin        = "admin"
	pAppOther     = "app-other-study"
	pAnalystOther = "analyst-other-study"
	pAnalystAll   = "analyst-every-study"
)

var principals = []string{pNone, pRevoked, pApp, pDesigner, pAnalyst, pAdmin, pAppOther, pAnalystOther, pAnalystAll}

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	log := zap.NewNop()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "jitai.db"), sqlite.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clk := &clock{t: at(0, 8, 0)}
	eng, err := engine.New(engine.Components{Store: st, Studies: loadStudies(t), Logger: log, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ae := &authEnv{tokensFile: filepath.Join(dir, "tokens.json"), auditFile: filepath.Join(dir, "audit.jsonl"), tok: map[string]string{}}
	mk := func(p string, role auth.Role, studies ...string) {
		plain, _, err := auth.Create(ae.tokensFile, p, role, studies, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ae.tok[p] = plain
	}
	mk(pApp, auth.RoleApp, stressMRT)
	mk(pDesigner, auth.RoleDesigner, stressMRT)
	mk(pAnalyst, auth.RoleAnalyst, stressMRT)
	mk(pAdmin, auth.RoleAdmin)
	mk(pAppOther, auth.RoleApp, moodMOST)
	mk(pAnalystOther, auth.RoleAnalyst, moodMOST)
	mk(pAnalystAll, auth.RoleAnalyst)
	mk(pRevoked, auth.RoleAdmin)
	if _, err := auth.Revoke(ae.tokensFile, pRevoked, time.Now()); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(ae.tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := eng.AuditKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	audit, err := auth.OpenAudit(ae.auditFile, key, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = audit.Close() })
	ae.audit = audit
	srv := api.New(eng, log, api.Options{})
	srv.SetAuth(api.AuthOptions{Tokens: v, Audit: audit})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	ae.env = &env{t: t, srv: hs, hc: hs.Client(), store: st, eng: eng, clock: clk, studies: map[string]*policies.Study{}}
	for _, s := range loadStudies(t) {
		ae.studies[s.Config.ID] = s
	}
	return ae
}

// as returns r sent with principal p's token.
func (ae *authEnv) as(p string, r req) response {
	if r.Header == nil {
		r.Header = map[string]string{}
	}
	if tok := ae.tok[p]; tok != "" {
		r.Header["Authorization"] = "Bearer " + tok
	}
	return ae.do(r)
}

// enrolAs enrols participant id with principal p's token.
func (ae *authEnv) enrolAs(p, id string) response {
	return ae.as(p, req{Method: "POST", Path: participantsPath(stressMRT), Body: map[string]any{"participant_id": id, "timezone": "Europe/London"}})
}

func (ae *authEnv) decideAs(p, id string, tm time.Time) response {
	dp := appPoint(ae.study(stressMRT))
	ae.clock.Set(tm) // the app asks on time
	return ae.as(p, req{Method: "POST", Path: decisionsPath(stressMRT, id), Body: map[string]any{"decision_point": dp, "time": rfc(tm)}})
}

// TestRouteRoleTable checks every route with every principal: exactly the
// intended ones succeed, the others get 401 (no, unknown or revoked token)
// or 403 (wrong role or study).
func TestRouteRoleTable(t *testing.T) {
	ae := newAuthEnv(t)
	// A participant and a decision for the read routes.
	ae.enrolAs(pAdmin, "p-read").expect(t, http.StatusCreated)
	var dec struct {
		ID string `json:"decision_id"`
	}
	ae.decideAs(pAdmin, "p-read", at(0, 9, 0)).expect(t, http.StatusOK).decode(t, &dec)
	if dec.ID == "" {
		t.Fatal("no decision id")
	}
	s := "/v1/studies/" + stressMRT
	type route struct {
		method, path string
		// body builds the request; fresh is a participant enrolled for
		// this case alone (for routes that change or erase them).
		build func(fresh string) req
		ok    int      // status of success
		who   []string // principals that succeed (admin always does)
		open  bool     // no token needed
		study bool     // study-scoped
		// unbound: for tokens bound to no study (it spans them all)
		unbound bool
	}
	get := func(p string) func(string) req { return func(string) req { return req{Method: "GET", Path: p} } }
	routes := []route{
		{method: "GET", path: "/healthz", build: get("/healthz"), ok: 200, open: true},
		{method: "GET", path: "/readyz", build: get("/readyz"), ok: 200, open: true},
		{method: "GET", path: "/metrics", build: get("/metrics"), ok: 200, who: []string{pAnalystAll}, unbound: true},
		{method: "GET", path: "/openapi.json", build: get("/openapi.json"), ok: 200, who: []string{pAnalyst, pAnalystOther}},
		{method: "GET", path: "/v1/studies", build: get("/v1/studies"), ok: 200, who: []string{pDesigner, pAnalyst, pAnalystOther}},
		{method: "GET", path: s, build: get(s), ok: 200, who: []string{pDesigner, pAnalyst}, study: true},
		{method: "GET", path: s + "/health", build: get(s + "/health"), ok: 200, who: []string{pDesigner, pAnalyst}, study: true},
		{method: "POST", path: s + "/reload", ok: 200, who: []string{pDesigner}, study: true, build: func(string) req {
			return req{Method: "POST", Path: s + "/reload"}
		}},
		{method: "POST", path: s + "/participants", ok: 201, who: []string{pApp}, study: true, build: func(string) req {
			return req{Method: "POST", Path: s + "/participants", Body: map[string]any{"participant_id": fmt.Sprintf("new-%d", time.Now().UnixNano()), "timezone": "Europe/London"}}
		}},
		{method: "GET", path: s + "/participants/{p}", ok: 200, who: []string{pApp}, study: true, build: func(f string) req {
			return req{Method: "GET", Path: s + "/participants/" + f}
		}},
		{method: "POST", path: s + "/participants/{p}/events", ok: 202, who: []string{pApp}, study: true, build: func(f string) req {
			return req{Method: "POST", Path: eventsPath(stressMRT, f), Body: map[string]any{"events": []eventDoc{{ID: "e1", Type: "ema", Time: rfc(at(0, 7, 0)), Data: map[string]any{"stress": 4}}}}}
		}},
		{method: "POST", path: s + "/participants/{p}/decisions", ok: 200, who: []string{pApp}, study: true, build: func(f string) req {
			return req{Method: "POST", Path: decisionsPath(stressMRT, f), Body: map[string]any{"decision_point": appPoint(ae.study(stressMRT)), "time": rfc(at(0, 9, 0))}}
		}},
		{method: "POST", path: s + "/participants/{p}/withdraw", ok: 200, who: []string{pApp}, study: true, build: func(f string) req {
			return req{Method: "POST", Path: s + "/participants/" + f + "/withdraw"}
		}},
		{method: "DELETE", path: s + "/participants/{p}", ok: 200, study: true, build: func(f string) req {
			return req{Method: "DELETE", Path: s + "/participants/" + f}
		}},
		{method: "GET", path: s + "/decisions", build: get(s + "/decisions"), ok: 200, who: []string{pAnalyst}, study: true},
		{method: "GET", path: s + "/decisions/{id}", build: get(s + "/decisions/" + dec.ID), ok: 200, who: []string{pAnalyst}, study: true},
		{method: "GET", path: s + "/decisions/{id}/explain", build: get(s + "/decisions/" + dec.ID + "/explain"), ok: 200, who: []string{pDesigner}, study: true},
		{method: "GET", path: "/v1/decisions/{id}/explain", build: get("/v1/decisions/" + dec.ID + "/explain"), ok: 200, who: []string{pDesigner}},
		{method: "GET", path: s + "/export", build: get(s + "/export?format=csv"), ok: 200, who: []string{pAnalyst}, study: true},
		{method: "GET", path: "/no/such/route", build: get("/no/such/route"), ok: 404, who: principals},
	}
	roleOf := map[string]string{pApp: "app", pDesigner: "designer", pAnalyst: "analyst", pAdmin: "admin", pAppOther: "app", pAnalystOther: "analyst", pAnalystAll: "analyst"}
	bound := []string{pApp, pDesigner, pAnalyst, pAppOther, pAnalystOther}
	n := 0
	for _, rt := range routes {
		for _, p := range principals {
			t.Run(rt.method+" "+rt.path+" as "+p, func(t *testing.T) {
				n++
				fresh := fmt.Sprintf("p-%d", n)
				ae.enrolAs(pAdmin, fresh).expect(t, http.StatusCreated)
				want := rt.ok
				switch {
				case rt.open:
				case p == pNone || p == pRevoked:
					want = http.StatusUnauthorized
				case p != pAdmin && !slices.Contains(rt.who, p) && !slices.ContainsFunc(rt.who, func(w string) bool { return roleOf[w] == roleOf[p] }):
					want = http.StatusForbidden // wrong role
				case rt.study && (p == pAppOther || p == pAnalystOther):
					want = http.StatusForbidden // another study's token
				case rt.unbound && slices.Contains(bound, p):
					want = http.StatusForbidden // a study-bound token on a route over every study
				}
				res := ae.as(p, rt.build(fresh))
				if res.Status != want {
					t.Fatalf("status %d, want %d: %s", res.Status, want, res.Body)
				}
				if want == http.StatusUnauthorized {
					if h := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
						t.Errorf("401 without WWW-Authenticate: Bearer (got %q)", h)
					}
					checkProblem(t, res, 401, "")
				}
				if want == http.StatusForbidden {
					checkProblem(t, res, 403, "")
				}
			})
		}
	}
	// A study-bound analyst lists only its studies.
	var list struct {
		Studies []struct {
			ID string `json:"id"`
		} `json:"studies"`
	}
	ae.as(pAnalyst, req{Method: "GET", Path: "/v1/studies"}).expect(t, 200).decode(t, &list)
	if len(list.Studies) != 1 || list.Studies[0].ID != stressMRT {
		t.Errorf("a token bound to %s lists %+v", stressMRT, list.Studies)
	}
	// A malformed Authorization header is 401 too.
	res := ae.do(req{Method: "GET", Path: s + "/decisions", Header: map[string]string{"Authorization": "Basic " + ae.tok[pAdmin]}})
	if res.Status != 401 {
		t.Errorf("Basic auth: status %d, want 401", res.Status)
	}
}

// TestTokenFileHoldsNoPlaintext: the token file has hashes only, mode 0600.
func TestTokenFileHoldsNoPlaintext(t *testing.T) {
	ae := newAuthEnv(t)
	raw, err := os.ReadFile(ae.tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	for p, tok := range ae.tok {
		if !strings.HasPrefix(tok, auth.Prefix) || len(tok) != len(auth.Prefix)+43 {
			t.Errorf("%s token %q: want %s + 43 base64url characters", p, tok, auth.Prefix)
		}
		if strings.Contains(string(raw), tok) || strings.Contains(string(raw), strings.TrimPrefix(tok, auth.Prefix)) {
			t.Errorf("the token file holds the plaintext of %s's token", p)
		}
		if !strings.Contains(string(raw), auth.Hash(tok)) {
			t.Errorf("the token file lacks the hash of %s's token", p)
		}
	}
	fi, err := os.Stat(ae.tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestRevocationWithoutRestart: revoking in the file takes effect at the
// next request; so does a token created after start.
func TestRevocationWithoutRestart(t *testing.T) {
	ae := newAuthEnv(t)
	r := req{Method: "GET", Path: "/v1/studies/" + stressMRT + "/decisions"}
	ae.as(pAnalyst, r).expect(t, http.StatusOK)
	if _, err := auth.Revoke(ae.tokensFile, pAnalyst, time.Now()); err != nil {
		t.Fatal(err)
	}
	checkProblem(t, ae.as(pAnalyst, r), http.StatusUnauthorized, "Authorization")
	plain, _, err := auth.Create(ae.tokensFile, "late", auth.RoleAnalyst, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ae.tok["late"] = plain
	ae.as("late", r).expect(t, http.StatusOK)
}

// TestWithdrawThenDecide: a withdrawn participant gets no decisions (409);
// their data stay; the audit log names them only by hash.
func TestWithdrawThenDecide(t *testing.T) {
	ae := newAuthEnv(t)
	ae.enrolAs(pApp, "p-w").expect(t, http.StatusCreated)
	ae.decideAs(pApp, "p-w", at(0, 9, 0)).expect(t, http.StatusOK)
	var doc enrollmentDoc
	ae.as(pApp, req{Method: "POST", Path: "/v1/studies/" + stressMRT + "/participants/p-w/withdraw"}).expect(t, http.StatusOK).decode(t, &doc)
	if doc.Status != trial.StatusWithdrawn {
		t.Errorf("status %q after withdrawal", doc.Status)
	}
	checkProblem(t, ae.decideAs(pApp, "p-w", at(0, 12, 0)), http.StatusConflict, "participant")
	ae.as(pApp, req{Method: "GET", Path: "/v1/studies/" + stressMRT + "/participants/p-w"}).expect(t, http.StatusOK)
	if recs := ae.recordsOf(t, "p-w"); len(recs) != 1 {
		t.Errorf("%d records kept after withdrawal, want 1", len(recs))
	}
	entries := readAudit(t, ae.auditFile)
	found := false
	for _, e := range entries {
		if e.Action == "withdraw" {
			found = true
			if e.Detail["participant_pseudonym"] != ae.audit.Pseudonym(stressMRT, "p-w") || e.TokenName != pApp || e.Outcome != "done" {
				t.Errorf("audit entry %+v", e)
			}
			checkNotGuessable(t, e.Detail["participant_pseudonym"])
		}
	}
	if !found {
		t.Error("no withdraw entry in the audit log")
	}
	raw, _ := os.ReadFile(ae.auditFile)
	if strings.Contains(string(raw), "p-w") {
		t.Error("the audit log holds the participant id")
	}
}

func (ae *authEnv) recordsOf(t *testing.T, p string) []*trial.Record {
	t.Helper()
	recs, err := ae.store.ListDecisions(t.Context(), trial.DecisionQuery{Study: stressMRT, Participant: p, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func readAudit(t *testing.T, path string) []auth.AuditEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auth.AuditEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e auth.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// TestEraseAnonymises erases through the API with the default setting
// (anonymise): state, events and idempotency entries go, records stay
// under a surrogate without inputs; the audit log records the choice.
func TestEraseAnonymises(t *testing.T) {
	ae := newAuthEnv(t)
	if got := ae.study(stressMRT).Config.Erasure; got != policies.ErasureAnonymise {
		t.Fatalf("erasure default %q", got)
	}
	ae.enrolAs(pApp, "p-e").expect(t, http.StatusCreated)
	ae.as(pApp, req{Method: "POST", Path: eventsPath(stressMRT, "p-e"), Body: map[string]any{"events": []eventDoc{{ID: "e1", Type: "ema", Time: rfc(at(0, 7, 0)), Data: map[string]any{"stress": 4}}}}}).expect(t, 202)
	r := req{Method: "POST", Path: decisionsPath(stressMRT, "p-e"), Header: map[string]string{"Idempotency-Key": "k1"},
		Body: map[string]any{"decision_point": appPoint(ae.study(stressMRT)), "time": rfc(at(0, 9, 0))}}
	var dec struct {
		ID string `json:"decision_id"`
	}
	ae.clock.Set(at(0, 9, 0))
	ae.as(pApp, r).expect(t, 200).decode(t, &dec)
	var erased struct {
		Copies []struct {
			Name  string `json:"name"`
			Clean bool   `json:"clean"`
		} `json:"copies"`
	}
	ae.as(pAdmin, req{Method: "DELETE", Path: "/v1/studies/" + stressMRT + "/participants/p-e"}).expect(t, 200).decode(t, &erased)
	// The SQLite store says the bytes are gone from its database file and
	// its write-ahead log.
	if len(erased.Copies) != 2 || !erased.Copies[0].Clean || !erased.Copies[1].Clean {
		t.Errorf("erasure answer copies %+v, want the database and the write-ahead log clean", erased.Copies)
	}
	ae.as(pApp, req{Method: "GET", Path: "/v1/studies/" + stressMRT + "/participants/p-e"}).expect(t, 404)
	if evs, _ := ae.store.Events(t.Context(), stressMRT, "p-e"); len(evs) != 0 {
		t.Errorf("%d events left", len(evs))
	}
	if len(ae.recordsOf(t, "p-e")) != 0 {
		t.Error("records still under the participant id")
	}
	rec, err := ae.store.Decision(t.Context(), stressMRT, dec.ID)
	if err != nil {
		t.Fatalf("anonymised record: %v", err)
	}
	if rec.Participant == "p-e" || !strings.HasPrefix(rec.Participant, "anon-") || string(rec.Input) != "{}" || rec.Tailoring != nil || rec.IdempotencyKey != "" {
		t.Errorf("record not anonymised: participant %q input %s tailoring %v key %q", rec.Participant, rec.Input, rec.Tailoring, rec.IdempotencyKey)
	}
	// Re-enrolling the same id starts afresh: the idempotency key is gone.
	ae.enrolAs(pApp, "p-e").expect(t, http.StatusCreated)
	res := ae.as(pApp, r).expect(t, 200)
	if res.Header.Get("Idempotent-Replayed") != "" {
		t.Error("the idempotency entry survived erasure")
	}
	found := false
	for _, e := range readAudit(t, ae.auditFile) {
		if e.Action == "erase" {
			found = true
			if e.Detail["erasure"] != policies.ErasureAnonymise || e.Role != auth.RoleAdmin {
				t.Errorf("audit entry %+v", e)
			}
		}
	}
	if !found {
		t.Error("no erase entry in the audit log")
	}
}

// checkNotGuessable fails when an audit pseudonym can be found without the
// server's key: trying the unkeyed SHA-256 of every id p-w and p-0000 to
// p-9999 (as an attacker holding only the audit log would) must find none.
func checkNotGuessable(t *testing.T, pseudonym any) {
	t.Helper()
	got, _ := pseudonym.(string)
	if len(got) != 64 {
		t.Fatalf("pseudonym %v is not 32 bytes of hex", pseudonym)
	}
	ids := []string{"p-w"}
	for i := range 10000 {
		ids = append(ids, fmt.Sprintf("p-%04d", i))
	}
	for _, id := range ids {
		sum := sha256.Sum256([]byte(stressMRT + "\x00" + id))
		if hex.EncodeToString(sum[:]) == got {
			t.Fatalf("the pseudonym is the unkeyed SHA-256 of %s", id)
		}
	}
}
