package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"gopkg.in/yaml.v3"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// examples is the folder of the example studies the tests serve.
const examples = "../../policies/examples"

// The example studies.
const (
	stressMRT = "stress-mrt"
	moodMOST  = "mood-most"
)

// london is the example studies' time zone.
var london = mustLocation("Europe/London")

func mustLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// day0 is the first day of the tests' fictional study (a Monday in November,
// when Europe/London is UTC+0).
var day0 = time.Date(2026, time.November, 16, 0, 0, 0, 0, london)

// at is a participant-local time (Europe/London) on the given study day.
func at(day int, hh, mm int) time.Time {
	return time.Date(day0.Year(), day0.Month(), day0.Day()+day, hh, mm, 0, 0, london)
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

var (
	studiesOnce sync.Once
	studiesVal  []*policies.Study
	studiesErr  error
)

// loadStudies loads (once per test binary) the example studies with the
// embedded catalogue, as `jitai serve` does.
func loadStudies(t testing.TB) []*policies.Study {
	t.Helper()
	studiesOnce.Do(func() {
		cat, err := interventions.Embedded()
		if err != nil {
			studiesErr = fmt.Errorf("embedded catalogue: %w", err)
			return
		}
		studiesVal, studiesErr = policies.LoadStudies(context.Background(), examples, cat)
	})
	if studiesErr != nil {
		t.Fatalf("loading the example studies: %v", studiesErr)
	}
	return studiesVal
}

// clock is a controllable engine clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// env is a real engine over a real SQLite store behind a real HTTP server.
type env struct {
	t       testing.TB
	srv     *httptest.Server
	hc      *http.Client
	store   trial.Store
	eng     *engine.Engine
	clock   *clock
	studies map[string]*policies.Study
	// tokens are the plaintext tokens by name with withTokens; requests
	// carry tokens["admin"] unless their headers set Authorization.
	tokens map[string]string
}

type envOption func(*envConfig)

type envConfig struct {
	quiet, anyTime bool
	// open opens the store (the embedded store in a temporary folder
	// when nil; see withStore).
	open func(t testing.TB, log *zap.Logger) trial.Store
	// requestTimeout is Options.RequestTimeout (the default when zero).
	requestTimeout time.Duration
	// tokens turns authentication on (see withTokens).
	tokens bool
	// sqlite and dbPath open the embedded store (see storeOptions).
	sqlite sqlite.Options
	dbPath string // default: jitai.db in a temporary folder
}

// storeOptions opens the env's SQLite store with o.
func storeOptions(o sqlite.Options) envOption { return func(c *envConfig) { c.sqlite = o } }

// quietLogs logs nothing (for tests with thousands of requests).
func quietLogs(c *envConfig) { c.quiet = true }

// anyTime turns the engine's clock skew check off, for tests whose
// requests run in parallel at times far apart (the clock is one for all of
// them); enrolments are still at the clock, so before the decisions.
func anyTime(c *envConfig) { c.anyTime = true }

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	var cfg envConfig
	for _, o := range opts {
		o(&cfg)
	}
	log := zap.NewNop()
	if !cfg.quiet {
		log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	studies := loadStudies(t)
	var st trial.Store
	if cfg.open != nil {
		st = cfg.open(t, log)
	} else {
		cfg.sqlite.Durability = "process"
		if cfg.dbPath == "" {
			cfg.dbPath = filepath.Join(t.TempDir(), "jitai.db")
		}
		lite, err := sqlite.Open(cfg.dbPath, cfg.sqlite, log)
		if err != nil {
			t.Fatalf("opening sqlite store: %v", err)
		}
		st = lite
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	clk := &clock{t: at(0, 8, 0)}
	skew := time.Duration(0) // the default
	if cfg.anyTime {
		skew = -1
	}
	eng, err := engine.New(engine.Components{Store: st, Studies: studies, Logger: log, Now: clk.Now, MaxClockSkew: skew})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	// The server as jitai serve runs it: its http.Server and listener.
	a := api.New(eng, log, api.Options{RequestTimeout: cfg.requestTimeout})
	var tokens map[string]string
	if cfg.tokens {
		tokens = setTokens(t, a)
	}
	srv := httptest.NewUnstartedServer(a)
	srv.Config = a.HTTPServer()
	srv.Listener = api.ProblemListener(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	e := &env{
		t: t, srv: srv, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		eng: eng, clock: clk, studies: map[string]*policies.Study{}, tokens: tokens,
	}
	e.store = st
	t.Cleanup(tr.CloseIdleConnections)
	for _, s := range studies {
		e.studies[s.Config.ID] = s
	}
	return e
}

// study returns a loaded example study or fails the test.
func (e *env) study(id string) *policies.Study {
	e.t.Helper()
	s, ok := e.studies[id]
	if !ok {
		e.t.Fatalf("example study %s is not loaded from %s (loaded: %v)", id, examples, slices.Sorted(mapsKeys(e.studies)))
	}
	return s
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// response is an HTTP answer read in full.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// raw is a request body sent exactly as given.
type raw string

// req is one request. Body is marshalled to JSON unless it is raw or []byte.
type req struct {
	Method string
	Path   string
	Body   any
	// Header overrides headers; Content-Type defaults to application/json
	// when there is a body (set it to "" to send none).
	Header map[string]string
}

func (e *env) do(r req) response {
	e.t.Helper()
	res, err := e.try(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	return res
}

// try is do without failing the test (safe to call from goroutines).
func (e *env) try(r req) (response, error) {
	var body io.Reader
	switch b := r.Body.(type) {
	case nil:
	case raw:
		body = strings.NewReader(string(b))
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		body = bytes.NewReader(j)
	}
	hr, err := http.NewRequest(r.Method, e.srv.URL+r.Path, body)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if tok := e.tokens["admin"]; tok != "" {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range r.Header {
		if v == "" {
			hr.Header.Del(k)
			continue
		}
		hr.Header.Set(k, v)
	}
	res, err := e.hc.Do(hr)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// decode decodes the body into v, failing the test when it is not JSON.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d is not the JSON expected (%v): %s", r.Status, err, r.Body)
	}
}

// expect fails the test unless the status is want.
func (r response) expect(t testing.TB, want int) response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d; body: %s", r.Status, want, r.Body)
	}
	return r
}

// problem is the problem document of the API (RFC 9457).
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
	Field    string `json:"field"`
}

// checkProblem checks that r is a well-formed problem with the given status
// and, when field is not empty, naming that field.
func checkProblem(t testing.TB, r response, status int, field string) problem {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem is not JSON (%v): %s", err, r.Body)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("problem lacks type, title or detail: %s", r.Body)
	}
	if p.Status != r.Status {
		t.Errorf("problem status %d differs from HTTP status %d", p.Status, r.Status)
	}
	if field != "" && p.Field != field {
		t.Errorf("problem field %q, want %q; body: %s", p.Field, field, r.Body)
	}
	return p
}

// Wire documents, decoded independently of the engine's Go types so that the
// tests pin the JSON the API promises.

type enrollmentDoc struct {
	ParticipantID string            `json:"participant_id"`
	Study         string            `json:"study"`
	Timezone      string            `json:"timezone"`
	Assignment    map[string]string `json:"assignment"`
	EnrolledAt    time.Time         `json:"enrolled_at"`
	Status        string            `json:"status"`
}

type interventionDoc struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Body      string   `json:"body"`
	Steps     []string `json:"steps"`
	DurationS int      `json:"duration_s"`
}

type signpostingDoc struct {
	Title    string              `json:"title"`
	Text     string              `json:"text"`
	Contacts []map[string]string `json:"contacts"`
}

type decisionDoc struct {
	DecisionID     string            `json:"decision_id"`
	Study          string            `json:"study"`
	ParticipantID  string            `json:"participant_id"`
	DecisionPoint  string            `json:"decision_point"`
	Time           time.Time         `json:"time"`
	Action         string            `json:"action"`
	Intervention   *interventionDoc  `json:"intervention"`
	Signposting    *signpostingDoc   `json:"signposting"`
	Components     map[string]string `json:"components"`
	Reasons        []string          `json:"reasons"`
	ExpiresAt      time.Time         `json:"expires_at"`
	PolicyRevision string            `json:"policy_revision"`
}

type factorDoc struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Level       *int     `json:"level"`
	Label       string   `json:"label"`
	Probability *float64 `json:"probability"`
	Draw        *float64 `json:"draw"`
	Source      string   `json:"source"`
}

type optionDoc struct {
	ID          string  `json:"id"`
	Probability float64 `json:"probability"`
	Draw        float64 `json:"draw"`
}

type recordDoc struct {
	DecisionID         string           `json:"decision_id"`
	Study              string           `json:"study"`
	ParticipantID      string           `json:"participant_id"`
	DecisionPoint      string           `json:"decision_point"`
	Time               time.Time        `json:"time"`
	LocalTime          string           `json:"local_time"`
	RecordedAt         time.Time        `json:"recorded_at"`
	ExpiresAt          time.Time        `json:"expires_at"`
	PolicyRevision     string           `json:"policy_revision"`
	Action             string           `json:"action"`
	Reasons            []string         `json:"reasons"`
	SafetyReasons      []string         `json:"safety_reasons"`
	Available          *bool            `json:"available"`
	UnavailableReasons []string         `json:"unavailable_reasons"`
	Randomised         bool             `json:"randomised"`
	Factors            []factorDoc      `json:"factors"`
	Option             *optionDoc       `json:"option"`
	Intervention       *interventionDoc `json:"intervention"`
	Input              json.RawMessage  `json:"input"`
	InputHash          string           `json:"input_hash"`
	IdempotencyKey     string           `json:"idempotency_key"`
}

func (r *recordDoc) factor(name string) *factorDoc {
	for i := range r.Factors {
		if r.Factors[i].Name == name {
			return &r.Factors[i]
		}
	}
	return nil
}

type eventDoc struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Time string `json:"time"`
	Data any    `json:"data"`
}

type eventsResult struct {
	Accepted   *int `json:"accepted"`
	Duplicates *int `json:"duplicates"`
}

// Paths.

func participantsPath(study string) string {
	return "/v1/studies/" + study + "/participants"
}

func eventsPath(study, p string) string {
	return "/v1/studies/" + study + "/participants/" + p + "/events"
}

func decisionsPath(study, p string) string {
	return "/v1/studies/" + study + "/participants/" + p + "/decisions"
}

// enrol enrols a participant, giving every stratum the study declares.
func (e *env) enrol(study, p string) (response, enrollmentDoc) {
	e.t.Helper()
	body := map[string]any{"participant_id": p, "timezone": "Europe/London"}
	if strata := e.study(study).Config.Strata; len(strata) > 0 {
		m := map[string]string{}
		for _, s := range strata {
			m[s] = "a"
		}
		body["strata"] = m
	}
	r := e.do(req{Method: "POST", Path: participantsPath(study), Body: body})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		e.t.Fatalf("enrolling %s in %s: status %d: %s", p, study, r.Status, r.Body)
	}
	var doc enrollmentDoc
	r.decode(e.t, &doc)
	return r, doc
}

// postEvents posts events and expects 202.
func (e *env) postEvents(study, p string, evs ...eventDoc) eventsResult {
	e.t.Helper()
	r := e.do(req{Method: "POST", Path: eventsPath(study, p), Body: map[string]any{"events": evs}})
	r.expect(e.t, http.StatusAccepted)
	var res eventsResult
	r.decode(e.t, &res)
	if res.Accepted == nil || res.Duplicates == nil {
		e.t.Fatalf("events answer lacks accepted or duplicates: %s", r.Body)
	}
	return res
}

// decide asks for a decision at t, the clock set to t (an app asking on
// time), and expects 200.
func (e *env) decide(study, p, dp string, t time.Time, ctx map[string]any) (response, decisionDoc) {
	e.t.Helper()
	e.clock.Set(t)
	body := map[string]any{"decision_point": dp, "time": rfc(t)}
	if ctx != nil {
		body["context"] = ctx
	}
	r := e.do(req{Method: "POST", Path: decisionsPath(study, p), Body: body})
	r.expect(e.t, http.StatusOK)
	var d decisionDoc
	r.decode(e.t, &d)
	return r, d
}

// listDecisions lists every decision record of a study (of one participant
// when p is not empty), following next_cursor.
func (e *env) listDecisions(study, p string) []recordDoc {
	e.t.Helper()
	var out []recordDoc
	cursor := ""
	for page := 0; ; page++ {
		if page > 10000 {
			e.t.Fatalf("listing decisions of %s does not end", study)
		}
		q := url.Values{"limit": {"1000"}}
		if p != "" {
			q.Set("participant", p)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := e.do(req{Method: "GET", Path: "/v1/studies/" + study + "/decisions?" + q.Encode()})
		r.expect(e.t, http.StatusOK)
		var doc struct {
			Decisions  []recordDoc `json:"decisions"`
			NextCursor string      `json:"next_cursor"`
		}
		r.decode(e.t, &doc)
		if doc.Decisions == nil {
			e.t.Fatalf("listing has no decisions array: %.300s", r.Body)
		}
		out = append(out, doc.Decisions...)
		if doc.NextCursor == "" {
			return out
		}
		cursor = doc.NextCursor
	}
}

// studyYAML is the part of a study.yaml the tests read directly.
type studyYAML struct {
	Seed   string `yaml:"seed"`
	Crisis struct {
		Title    string              `yaml:"title"`
		Text     string              `yaml:"text"`
		Contacts []map[string]string `yaml:"contacts"`
	} `yaml:"crisis"`
}

// readStudyYAML reads an example study's study.yaml, independently of the
// loader under test.
func readStudyYAML(t testing.TB, study string) studyYAML {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examples, study, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var y studyYAML
	if err := yaml.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s/study.yaml: %v", study, err)
	}
	return y
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

func TestHealthReadyAndUnknownRoute(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{Method: "GET", Path: "/healthz"}).expect(t, http.StatusOK)
	var h map[string]any
	r.decode(t, &h)
	if h["status"] != "ok" {
		t.Errorf("/healthz: %s", r.Body)
	}
	r = e.do(req{Method: "GET", Path: "/readyz"}).expect(t, http.StatusOK)
	r.decode(t, &h)
	if h["status"] != "ready" {
		t.Errorf("/readyz: %s", r.Body)
	}
	for _, rq := range []req{
		{Method: "GET", Path: "/v1/nothing-here"},
		{Method: "GET", Path: "/"},
		{Method: "POST", Path: "/v2/studies", Body: raw(`{}`)},
		{Method: "GET", Path: "/v1/studies/stress-mrt/participants/p1/nothing"},
	} {
		t.Run(rq.Method+rq.Path, func(t *testing.T) {
			checkProblem(t, e.do(rq), http.StatusNotFound, "")
		})
	}
}

func TestListStudies(t *testing.T) {
	e := newEnv(t)
	r := e.do(req{Method: "GET", Path: "/v1/studies"}).expect(t, http.StatusOK)
	var doc struct {
		Studies []struct {
			ID       string `json:"id"`
			Revision string `json:"policy_revision"`
			Timezone string `json:"timezone"`
		} `json:"studies"`
	}
	r.decode(t, &doc)
	var ids []string
	for _, s := range doc.Studies {
		ids = append(ids, s.ID)
		if st, ok := e.studies[s.ID]; ok && s.Revision != st.Revision {
			t.Errorf("study %s: policy_revision %q, want %q", s.ID, s.Revision, st.Revision)
		}
	}
	if want := []string{moodMOST, stressMRT}; !slices.Equal(ids, want) {
		t.Errorf("GET /v1/studies lists %v, want %v", ids, want)
	}
	r = e.do(req{Method: "GET", Path: "/v1/studies/" + stressMRT}).expect(t, http.StatusOK)
	var one struct {
		ID string `json:"id"`
	}
	r.decode(t, &one)
	if one.ID != stressMRT {
		t.Errorf("GET /v1/studies/%s: %s", stressMRT, r.Body)
	}
	checkProblem(t, e.do(req{Method: "GET", Path: "/v1/studies/no-such-study"}), http.StatusNotFound, "study")
}

// TestCompanionAppFlow walks through what a companion app does: enrol, send
// events, ask for a decision, report engagement, and what an analyst then
// sees in the decision log.
func TestCompanionAppFlow(t *testing.T) {
	for _, study := range []string{stressMRT, moodMOST} {
		t.Run(study, func(t *testing.T) { companionAppFlow(t, study) })
	}
}

// companionAppFlow is what a companion app does in a study, start to end.
func companionAppFlow(t *testing.T, study string) {
	e := newEnv(t)
	st := e.study(study)
	const p = "p-flow-01"

	// Enrol, twice.
	r1, enr := e.enrol(study, p)
	r1.expect(t, http.StatusCreated)
	r2, _ := e.enrol(study, p)
	r2.expect(t, http.StatusOK)
	if !bytes.Equal(r1.Body, r2.Body) {
		t.Errorf("enrolling again answers a different body:\n first: %s\nsecond: %s", r1.Body, r2.Body)
	}
	if enr.ParticipantID != p || enr.Study != study || enr.Timezone != "Europe/London" || enr.Status != "active" {
		t.Errorf("enrolment: %s", r1.Body)
	}
	var rawEnr map[string]json.RawMessage
	r1.decode(t, &rawEnr)
	if a := string(rawEnr["assignment"]); a == "" || a == "null" {
		t.Errorf("assignment must be an object, got %q", a)
	}
	between := st.Config.FactorsOf(policies.Between)
	switch study {
	case stressMRT:
		if len(enr.Assignment) != 0 {
			t.Errorf("stress-mrt has no between-person factor; assignment %v", enr.Assignment)
		}
	case moodMOST:
		if len(between) != 4 {
			t.Errorf("mood-most declares %d between-person factors, want 4", len(between))
		}
	}
	if len(enr.Assignment) != len(between) {
		t.Errorf("assignment %v has %d factors, want the %d between-person factors", enr.Assignment, len(enr.Assignment), len(between))
	}
	for _, f := range between {
		if v, ok := enr.Assignment[f.Name]; !ok || !slices.Contains(f.Levels, v) {
			t.Errorf("assignment of %s is %q, want one of %v", f.Name, v, f.Levels)
		}
	}
	r := e.do(req{Method: "GET", Path: participantsPath(study) + "/" + p}).expect(t, http.StatusOK)
	var got enrollmentDoc
	r.decode(t, &got)
	if got.ParticipantID != p || !mapsEqual(got.Assignment, enr.Assignment) {
		t.Errorf("GET participant: %s", r.Body)
	}

	// Events, then the same again.
	e.clock.Set(at(0, 13, 5))
	evs := []eventDoc{
		{ID: "ev-ema-1", Type: "ema", Time: rfc(at(0, 13, 0)), Data: map[string]any{"stress": 6, "mood": 5, "energy": 6}},
		{ID: "ev-ctx-1", Type: "context", Time: rfc(at(0, 13, 0)), Data: map[string]any{"location": "home", "phone_in_use": true}},
		{ID: "ev-pref-1", Type: "preference", Time: rfc(at(0, 13, 1)), Data: map[string]any{"quiet_hours": map[string]string{"start": "22:30", "end": "07:30"}}},
		{ID: "ev-phq9-1", Type: "assessment", Time: rfc(at(0, 13, 2)), Data: map[string]any{"instrument": "phq9", "items": []int{1, 1, 2, 1, 0, 1, 1, 0, 0}}},
	}
	if res := e.postEvents(study, p, evs...); *res.Accepted != 4 || *res.Duplicates != 0 {
		t.Errorf("first send: accepted %d, duplicates %d; want 4, 0", *res.Accepted, *res.Duplicates)
	}
	if res := e.postEvents(study, p, evs...); *res.Accepted != 0 || *res.Duplicates != 4 {
		t.Errorf("resend: accepted %d, duplicates %d; want 0, 4", *res.Accepted, *res.Duplicates)
	}
	more := eventDoc{ID: "ev-gad7-1", Type: "assessment", Time: rfc(at(0, 13, 3)), Data: map[string]any{"instrument": "gad7", "items": []int{1, 1, 1, 0, 0, 1, 1}}}
	if res := e.postEvents(study, p, evs[0], more, evs[2]); *res.Accepted != 1 || *res.Duplicates != 2 {
		t.Errorf("mixed send: accepted %d, duplicates %d; want 1, 2", *res.Accepted, *res.Duplicates)
	}

	// Decide until something is delivered (stress-mrt randomises delivery).
	var delivered decisionDoc
	var answered []decisionDoc
	for day := 0; day < 30 && delivered.DecisionID == ""; day++ {
		when := at(day, 14, 30)
		e.clock.Set(when)
		r, d := e.decide(study, p, appPoint(st), when, nil)
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("decision Content-Type %q", ct)
		}
		var rawD map[string]json.RawMessage
		r.decode(t, &rawD)
		if rr := string(rawD["reasons"]); !strings.HasPrefix(rr, "[") {
			t.Errorf("reasons must be an array, got %s", rr)
		}
		checkDecisionDoc(t, st, p, when, d)
		answered = append(answered, d)
		if d.Action == "deliver" {
			delivered = d
		}
	}
	if delivered.DecisionID == "" {
		t.Fatalf("no delivery in 30 available decision points: %+v", answered)
	}

	// Engagement on the delivered decision.
	e.clock.Set(delivered.Time.Add(5 * time.Minute))
	eng := []eventDoc{
		{ID: "ev-eng-1", Type: "engagement", Time: rfc(delivered.Time.Add(2 * time.Minute)), Data: map[string]any{"decision_id": delivered.DecisionID, "status": "opened"}},
		{ID: "ev-eng-2", Type: "engagement", Time: rfc(delivered.Time.Add(4 * time.Minute)), Data: map[string]any{"decision_id": delivered.DecisionID, "status": "rated", "rating": 7}},
	}
	if res := e.postEvents(study, p, eng...); *res.Accepted != 2 {
		t.Errorf("engagement: accepted %d, want 2", *res.Accepted)
	}

	// The analyst's view.
	recs := e.listDecisions(study, p)
	if len(recs) != len(answered) {
		t.Fatalf("listing has %d decisions, %d were answered", len(recs), len(answered))
	}
	for i, rec := range recs {
		d := answered[i]
		if rec.DecisionID != d.DecisionID || rec.Action != d.Action || rec.ParticipantID != p || rec.Study != study {
			t.Errorf("record %d = %s/%s, answered %s/%s", i, rec.DecisionID, rec.Action, d.DecisionID, d.Action)
		}
		if rec.PolicyRevision != st.Revision {
			t.Errorf("record %s: policy_revision %q, want %q", rec.DecisionID, rec.PolicyRevision, st.Revision)
		}
		if !rec.Time.Equal(d.Time) || !rec.ExpiresAt.Equal(d.ExpiresAt) {
			t.Errorf("record %s: time %s expires %s; answered %s %s", rec.DecisionID, rec.Time, rec.ExpiresAt, d.Time, d.ExpiresAt)
		}
		if rec.Available == nil || !*rec.Available || len(rec.UnavailableReasons) != 0 {
			t.Errorf("record %s: available %v, unavailable_reasons %v; the point was available", rec.DecisionID, rec.Available, rec.UnavailableReasons)
		}
		if len(rec.Input) == 0 || rec.InputHash == "" {
			t.Errorf("record %s has no input snapshot or hash", rec.DecisionID)
		}
		checkRecordFactors(t, st, enr.Assignment, rec)
	}
	last := recs[len(recs)-1]
	if !interventionEqual(last.Intervention, delivered.Intervention) {
		t.Errorf("record intervention %+v, answered %+v", last.Intervention, delivered.Intervention)
	}
	if last.Option == nil || last.Option.ID != delivered.Intervention.ID {
		t.Errorf("record option %+v, delivered %s", last.Option, delivered.Intervention.ID)
	}
	r = e.do(req{Method: "GET", Path: "/v1/studies/" + study + "/decisions/" + delivered.DecisionID}).expect(t, http.StatusOK)
	var one recordDoc
	r.decode(t, &one)
	if one.DecisionID != delivered.DecisionID || one.Action != "deliver" {
		t.Errorf("GET decision: %.300s", r.Body)
	}
	checkProblem(t, e.do(req{Method: "GET", Path: "/v1/studies/" + study + "/decisions/01NOSUCHDECISION000000000"}), http.StatusNotFound, "")

	// The events are stored once each.
	stored, err := e.store.Events(context.Background(), study, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 7 {
		t.Errorf("store holds %d events, want 7", len(stored))
	}
}

func interventionEqual(a, b *interventionDoc) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID && a.Title == b.Title && a.Body == b.Body && slices.Equal(a.Steps, b.Steps) && a.DurationS == b.DurationS
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// appPoint is the study's first app-requested decision point (kind app; the
// example studies' on_demand), which the app may ask for at any time: a
// scheduled point has one decision a day, at its own instant.
func appPoint(s *policies.Study) string {
	for _, dp := range s.Config.DecisionPoints {
		if dp.Kind == "app" {
			return dp.ID
		}
	}
	return "" // the request is refused, naming decision_point
}

// checkDecisionDoc checks an app-facing decision.
func checkDecisionDoc(t testing.TB, st *policies.Study, p string, when time.Time, d decisionDoc) {
	t.Helper()
	if d.DecisionID == "" || d.Study != st.Config.ID || d.ParticipantID != p || !d.Time.Equal(when) {
		t.Errorf("decision header fields: %+v", d)
	}
	if d.PolicyRevision != st.Revision {
		t.Errorf("decision policy_revision %q, want %q", d.PolicyRevision, st.Revision)
	}
	if want := when.Add(st.Config.DecisionTTL.Duration); !d.ExpiresAt.Equal(want) {
		t.Errorf("expires_at %s, want %s (time + decision_ttl)", d.ExpiresAt, want)
	}
	switch d.Action {
	case "deliver":
		iv := d.Intervention
		if iv == nil || iv.ID == "" || iv.Title == "" || iv.Body == "" || len(iv.Steps) == 0 || iv.DurationS <= 0 {
			t.Errorf("a delivery needs an intervention with id, title, body, steps and duration_s: %+v", iv)
		}
		if iv != nil {
			if _, ok := st.Catalogue.Get(iv.ID); !ok {
				t.Errorf("delivered %q is not in the study's catalogue", iv.ID)
			}
		}
		for _, f := range st.Config.Factors {
			if l, ok := d.Components[f.Name]; !ok || !slices.Contains(f.Levels, l) {
				t.Errorf("components[%s] = %q, want one of %v", f.Name, l, f.Levels)
			}
		}
		if d.Signposting != nil {
			t.Errorf("a delivery carries no crisis signposting")
		}
	case "none":
		if d.Intervention != nil {
			t.Errorf("action none with an intervention: %+v", d.Intervention)
		}
		if len(d.Reasons) == 0 {
			t.Errorf("action none without reasons")
		}
	case "safety":
		if d.Signposting == nil {
			t.Errorf("safety without signposting")
		}
	default:
		t.Errorf("action %q is not deliver, none or safety", d.Action)
	}
}

// checkRecordFactors checks a record's factors against the study design:
// between-person factors carry the enrolment level and no draw; within-person
// factors carry probability and a reproducible draw when, and only when, the
// point was randomised.
func checkRecordFactors(t testing.TB, st *policies.Study, assignment map[string]string, rec recordDoc) {
	t.Helper()
	drawer := experiments.NewDrawer(st.Config.Seed)
	for _, f := range st.Config.Factors {
		fd := rec.factor(f.Name)
		randomised := rec.Available != nil && *rec.Available && rec.Action != "safety"
		switch {
		case f.Type == policies.Between:
			if fd == nil {
				t.Errorf("record %s lacks between-person factor %s", rec.DecisionID, f.Name)
				continue
			}
			if fd.Label != assignment[f.Name] || fd.Level == nil || f.Levels[*fd.Level] != fd.Label {
				t.Errorf("record %s factor %s = level %v label %q; assigned %q", rec.DecisionID, f.Name, fd.Level, fd.Label, assignment[f.Name])
			}
			if fd.Draw != nil || fd.Probability != nil {
				t.Errorf("record %s: between-person factor %s has a draw or probability", rec.DecisionID, f.Name)
			}
		case !randomised:
			if fd != nil && (fd.Draw != nil || fd.Probability != nil) {
				t.Errorf("record %s (action %s, available %v) randomised %s: %+v", rec.DecisionID, rec.Action, rec.Available, f.Name, fd)
			}
		default:
			if fd == nil || fd.Level == nil || fd.Probability == nil || fd.Draw == nil {
				t.Errorf("record %s: within-person factor %s lacks level, probability or draw: %+v", rec.DecisionID, f.Name, fd)
				continue
			}
			if u := drawer.Uniform(rec.ParticipantID, rec.DecisionID, f.Name); u != *fd.Draw {
				t.Errorf("record %s factor %s: draw %v, re-derived %v", rec.DecisionID, f.Name, *fd.Draw, u)
			}
			if lvl := experiments.Level(*fd.Draw, *fd.Probability); lvl != *fd.Level || f.Levels[lvl] != fd.Label {
				t.Errorf("record %s factor %s: level %d (%s) but draw %v < probability %v gives %d", rec.DecisionID, f.Name, *fd.Level, fd.Label, *fd.Draw, *fd.Probability, lvl)
			}
			if p := *fd.Probability; p < f.Bounds[0] || p > f.Bounds[1] {
				t.Errorf("record %s factor %s: probability %v outside bounds %v", rec.DecisionID, f.Name, p, f.Bounds)
			}
			if !rec.Randomised {
				t.Errorf("record %s has draws but randomised is false", rec.DecisionID)
			}
		}
	}
	if rec.Action == "deliver" && rec.Option != nil {
		if u := drawer.Uniform(rec.ParticipantID, rec.DecisionID, "_option"); u != rec.Option.Draw {
			t.Errorf("record %s: option draw %v, re-derived %v", rec.DecisionID, rec.Option.Draw, u)
		}
	}
}

// TestSafetyPreemptsAndSignposts: a PHQ-9 item 9 answer above 0 makes the next
// decision `safety`, with the study's own crisis text, and nothing is drawn.
func TestSafetyPreemptsAndSignposts(t *testing.T) {
	for _, study := range []string{stressMRT, moodMOST} {
		t.Run(study, func(t *testing.T) {
			e := newEnv(t)
			st := e.study(study)
			y := readStudyYAML(t, study)
			const p = "p-safety-01"
			_, enr := e.enrol(study, p)
			e.clock.Set(at(1, 14, 0))
			e.postEvents(study, p, eventDoc{ID: "phq9-1", Type: "assessment", Time: rfc(at(1, 13, 0)),
				Data: map[string]any{"instrument": "phq9", "items": []int{0, 1, 0, 0, 0, 0, 0, 0, 1}}})
			when := at(1, 14, 30)
			r, d := e.decide(study, p, appPoint(st), when, nil)
			if d.Action != "safety" {
				t.Fatalf("after PHQ-9 item 9 = 1 the action is %q, want safety: %s", d.Action, r.Body)
			}
			checkDecisionDoc(t, st, p, when, d)
			if d.Signposting == nil || d.Signposting.Text != y.Crisis.Text || d.Signposting.Title != y.Crisis.Title {
				t.Errorf("signposting %+v, want the crisis text of %s/study.yaml: %q", d.Signposting, study, y.Crisis.Text)
			}
			if d.Signposting != nil && len(d.Signposting.Contacts) != len(y.Crisis.Contacts) {
				t.Errorf("signposting has %d contacts, study.yaml %d", len(d.Signposting.Contacts), len(y.Crisis.Contacts))
			}
			if d.Intervention != nil || len(d.Components) != 0 {
				t.Errorf("a safety decision offers no intervention and no components: %s", r.Body)
			}
			if len(d.Reasons) == 0 {
				t.Errorf("a safety decision gives its reasons")
			}
			recs := e.listDecisions(study, p)
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			rec := recs[0]
			if rec.Action != "safety" || rec.Randomised || rec.Option != nil || rec.Intervention != nil || len(rec.SafetyReasons) == 0 {
				t.Errorf("safety record: action %s randomised %v option %+v safety_reasons %v", rec.Action, rec.Randomised, rec.Option, rec.SafetyReasons)
			}
			for _, f := range rec.Factors {
				if f.Draw != nil || f.Probability != nil {
					t.Errorf("safety record draws factor %s: %+v", f.Name, f)
				}
			}
			checkRecordFactors(t, st, enr.Assignment, rec)

			// Safety holds for the following decisions too, until the answer is old.
			_, d2 := e.decide(study, p, appPoint(st), at(2, 14, 30), nil)
			if d2.Action != "safety" {
				t.Errorf("the next day the action is %q, want safety", d2.Action)
			}
		})
	}
}

// TestAvailability: unavailable points end with `none`, give the reasons,
// and are recorded without any draw.
func TestAvailability(t *testing.T) {
	for _, study := range []string{stressMRT, moodMOST} {
		t.Run(study, func(t *testing.T) {
			e := newEnv(t)
			st := e.study(study)
			cases := []struct {
				name   string
				when   time.Time
				events []eventDoc
				ctx    map[string]any
				reason string
			}{
				{name: "quiet_hours", when: at(1, 23, 30), reason: "quiet_hours"},
				{name: "driving", when: at(1, 14, 30), ctx: map[string]any{"driving": true}, reason: "driving"},
				{name: "snoozed", when: at(1, 14, 30), reason: "snoozed",
					events: []eventDoc{{ID: "snooze-1", Type: "preference", Time: rfc(at(1, 14, 0)), Data: map[string]any{"snooze_minutes": 120}}}},
				{name: "snoozed_until", when: at(1, 14, 30), reason: "snoozed",
					events: []eventDoc{{ID: "snooze-1", Type: "preference", Time: rfc(at(1, 9, 0)), Data: map[string]any{"snooze_until": rfc(at(1, 18, 0))}}}},
				{name: "opted_out", when: at(1, 14, 30), reason: "opted_out",
					events: []eventDoc{{ID: "opt-1", Type: "preference", Time: rfc(at(1, 10, 0)), Data: map[string]any{"opt_out": true}}}},
				{name: "own_quiet_hours", when: at(1, 14, 30), reason: "quiet_hours",
					events: []eventDoc{{ID: "qh-1", Type: "preference", Time: rfc(at(1, 10, 0)), Data: map[string]any{"quiet_hours": map[string]string{"start": "14:00", "end": "15:00"}}}}},
			}
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := fmt.Sprintf("p-avail-%02d", i)
					e.clock.Set(day0) // enrolled before the decision
					_, enr := e.enrol(study, p)
					e.clock.Set(c.when.Add(-time.Minute))
					if len(c.events) > 0 {
						e.postEvents(study, p, c.events...)
					}
					r, d := e.decide(study, p, appPoint(st), c.when, c.ctx)
					checkDecisionDoc(t, st, p, c.when, d)
					if d.Action != "none" || !slices.Equal(d.Reasons, []string{c.reason}) {
						t.Errorf("action %s reasons %v, want none [%s]: %s", d.Action, d.Reasons, c.reason, r.Body)
					}
					recs := e.listDecisions(study, p)
					if len(recs) != 1 {
						t.Fatalf("%d records, want 1", len(recs))
					}
					rec := recs[0]
					if rec.Available == nil || *rec.Available || !slices.Contains(rec.UnavailableReasons, c.reason) {
						t.Errorf("record available %v unavailable_reasons %v, want false with %s", rec.Available, rec.UnavailableReasons, c.reason)
					}
					if rec.Randomised || rec.Option != nil || rec.Intervention != nil {
						t.Errorf("unavailable record was randomised: randomised %v option %+v", rec.Randomised, rec.Option)
					}
					for _, f := range rec.Factors {
						if f.Draw != nil || f.Probability != nil {
							t.Errorf("unavailable record draws factor %s: %+v", f.Name, f)
						}
					}
					checkRecordFactors(t, st, enr.Assignment, rec)
				})
			}
		})
	}
}

// TestIdempotency: a retried decision request with the same Idempotency-Key
// returns the same bytes and is recorded once.
func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	const study = stressMRT
	e.enrol(study, "p-idem-1")
	e.enrol(study, "p-idem-2")
	body := map[string]any{"decision_point": "on_demand", "time": rfc(at(0, 14, 30)), "context": map[string]any{"location": "home"}}
	send := func(p, key string, b any) response {
		return e.do(req{Method: "POST", Path: decisionsPath(study, p), Body: b, Header: map[string]string{"Idempotency-Key": key}})
	}

	t.Run("retry", func(t *testing.T) {
		e.clock.Set(at(0, 14, 30))
		r1 := send("p-idem-1", "key-0001", body).expect(t, http.StatusOK)
		if r1.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("first answer marked Idempotent-Replayed")
		}
		r2 := send("p-idem-1", "key-0001", body).expect(t, http.StatusOK)
		if !bytes.Equal(r1.Body, r2.Body) {
			t.Errorf("retry answered different bytes:\n%s\n%s", r1.Body, r2.Body)
		}
		if got := r2.Header.Get("Idempotent-Replayed"); got != "true" {
			t.Errorf("retry: Idempotent-Replayed %q, want true", got)
		}
		// The same body with the keys in another order is the same request.
		r3 := send("p-idem-1", "key-0001", raw(`{"time":"`+rfc(at(0, 14, 30))+`","context":{"location":"home"},"decision_point":"on_demand"}`)).expect(t, http.StatusOK)
		if !bytes.Equal(r1.Body, r3.Body) {
			t.Errorf("retry with reordered JSON answered different bytes")
		}
		recs := e.listDecisions(study, "p-idem-1")
		if len(recs) != 1 {
			t.Fatalf("%d records after a retried request, want 1", len(recs))
		}
		var d decisionDoc
		r1.decode(t, &d)
		if recs[0].DecisionID != d.DecisionID || recs[0].IdempotencyKey != "key-0001" {
			t.Errorf("record %s key %q, answered %s", recs[0].DecisionID, recs[0].IdempotencyKey, d.DecisionID)
		}
	})

	t.Run("reused key", func(t *testing.T) {
		other := map[string]any{"decision_point": "on_demand", "time": rfc(at(0, 15, 30))}
		e.clock.Set(at(0, 15, 30))
		checkProblem(t, send("p-idem-1", "key-0001", other), http.StatusUnprocessableEntity, "Idempotency-Key")
		other = map[string]any{"decision_point": "on_demand", "time": rfc(at(0, 14, 30)), "context": map[string]any{"location": "work"}}
		e.clock.Set(at(0, 14, 30))
		checkProblem(t, send("p-idem-1", "key-0001", other), http.StatusUnprocessableEntity, "Idempotency-Key")
		if recs := e.listDecisions(study, "p-idem-1"); len(recs) != 1 {
			t.Errorf("%d records after a refused reuse, want 1", len(recs))
		}
	})

	t.Run("concurrent retries", func(t *testing.T) {
		const n = 10
		var wg sync.WaitGroup
		res := make([]response, n)
		errs := make([]error, n)
		b := map[string]any{"decision_point": "on_demand", "time": rfc(at(0, 20, 30))}
		e.clock.Set(at(0, 20, 30))
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i], errs[i] = e.try(req{Method: "POST", Path: decisionsPath(study, "p-idem-2"), Body: b, Header: map[string]string{"Idempotency-Key": "key-conc"}})
			}()
		}
		wg.Wait()
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			res[i].expect(t, http.StatusOK)
			if !bytes.Equal(res[i].Body, res[0].Body) {
				t.Errorf("concurrent retry %d answered different bytes:\n%s\n%s", i, res[0].Body, res[i].Body)
			}
			if res[i].Header.Get("Idempotent-Replayed") != "true" {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d answers were not marked as replayed, want exactly 1", fresh)
		}
		if recs := e.listDecisions(study, "p-idem-2"); len(recs) != 1 {
			t.Errorf("%d records after %d concurrent retries, want 1", len(recs), n)
		}
	})
}
