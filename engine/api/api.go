// Package api is the engine's HTTP/JSON API for companion apps, designers
// and analysts. Errors are application/problem+json (RFC 9457).
package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/metrics"
	"github.com/jitai/jitai/engine/ratelimit"
)

// MaxBodyBytes is the largest request body accepted (1 MiB).
const MaxBodyBytes = 1 << 20

var errEmptyBody = errors.New("empty body")

// Server serves the API.
type Server struct {
	eng            *engine.Engine
	log            *zap.Logger
	mux            *http.ServeMux
	requestTimeout time.Duration
	headerTimeout  time.Duration
	draining       atomic.Bool

	mu      sync.Mutex
	storeOK bool

	limiter ratelimit.Limiter
	limit   ratelimit.Limit

	metrics *metrics.Metrics

	auth authConfig // see auth.go
}

// Options configure a Server.
type Options struct {
	// RequestTimeout bounds every request, reading its body included
	// (default 10s): a body still arriving then is answered 408.
	RequestTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers in the
	// http.Server of HTTPServer (default DefaultReadHeaderTimeout).
	ReadHeaderTimeout time.Duration
	// RateLimit limits each client's requests (zero: no limit). Clients are
	// told their budget in RateLimit-* headers and get 429 with
	// Retry-After when over it.
	RateLimit ratelimit.Limit
	// Limiter enforces RateLimit (in-process when nil).
	Limiter ratelimit.Limiter
	// Metrics is served at GET /metrics and records HTTP requests (a
	// registry of the server's own when nil).
	Metrics *metrics.Metrics
}

// New returns the API server for an engine.
func New(eng *engine.Engine, log *zap.Logger, opts Options) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	s := &Server{eng: eng, log: log, mux: http.NewServeMux(), requestTimeout: opts.RequestTimeout, headerTimeout: opts.ReadHeaderTimeout, storeOK: true,
		limiter: opts.Limiter, limit: opts.RateLimit, metrics: opts.Metrics}
	if s.limiter == nil {
		s.limiter = ratelimit.NewMemory(nil)
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.metricsHandler())
	s.mux.HandleFunc("GET /openapi.json", s.openAPI)
	s.mux.HandleFunc("GET /v1/studies", s.listStudies)
	s.mux.HandleFunc("GET /v1/studies/{study}", s.getStudy)
	s.mux.HandleFunc("GET /v1/studies/{study}/openapi.json", s.studyOpenAPI)
	s.mux.HandleFunc("POST /v1/studies/{study}/reload", s.reloadStudy)
	s.mux.HandleFunc("GET /v1/studies/{study}/shadow", s.getShadow)
	s.mux.HandleFunc("GET /v1/studies/{study}/health", s.getHealth)
	s.mux.HandleFunc("PUT /v1/studies/{study}/shadow", s.putShadow)
	s.mux.HandleFunc("DELETE /v1/studies/{study}/shadow", s.deleteShadow)
	s.mux.HandleFunc("POST /v1/studies/{study}/shadow/promote", s.promoteShadow)
	s.mux.HandleFunc("POST /v1/studies/{study}/participants", s.enroll)
	s.mux.HandleFunc("GET /v1/studies/{study}/participants/{participant}", s.getParticipant)
	s.mux.HandleFunc("POST /v1/studies/{study}/participants/{participant}/events", s.events)
	s.mux.HandleFunc("POST /v1/studies/{study}/participants/{participant}/decisions", s.decide)
	s.mux.HandleFunc("GET /v1/studies/{study}/decisions", s.listDecisions)
	s.mux.HandleFunc("GET /v1/studies/{study}/decisions/{id}", s.getDecision)
	s.mux.HandleFunc("GET /v1/studies/{study}/decisions/{id}/explain", s.explainDecision)
	s.mux.HandleFunc("GET /v1/decisions/{id}/explain", s.explainAnyStudy)
	s.mux.HandleFunc("GET /v1/studies/{study}/export", s.export)
	s.mux.HandleFunc("POST /v1/studies/{study}/participants/{participant}/withdraw", s.withdraw)
	s.mux.HandleFunc("DELETE /v1/studies/{study}/participants/{participant}", s.erase)
	s.mux.HandleFunc("PATCH /v1/studies/{study}/participants/{participant}", s.updateParticipant)
	s.mux.HandleFunc("PUT /v1/studies/{study}/participants/{participant}/devices/{device}", s.putDevice)
	s.mux.HandleFunc("DELETE /v1/studies/{study}/participants/{participant}/devices/{device}", s.deleteDevice)
	s.mux.HandleFunc("GET /v1/studies/{study}/decisions/{id}/delivery", s.getDelivery)
	s.mux.HandleFunc("GET /v1/studies/{study}/deliveries/dead-letters", s.deadLetters)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.methodNotAllowed(w, r) {
			return
		}
		writeProblem(w, r, problem(http.StatusNotFound, "no-route", "No such route", r.Method+" "+r.URL.Path+" is not part of the API", ""))
	})
}

// SetDraining marks the server as shutting down: /readyz answers 503.
func (s *Server) SetDraining() { s.draining.Store(true) }

// ServeHTTP applies limits, timeouts, recovery and request logging.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rc := http.NewResponseController(w)
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	ctx, cancel := context.WithTimeout(r.Context(), s.requestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	r.Body = http.MaxBytesReader(sw, r.Body, MaxBodyBytes)
	if !s.edge(sw, r, rc) || !s.allow(sw, r) {
		s.observeRejected(r, sw.status, start)
		return
	}
	r, ok := s.authorize(sw, r)
	if !ok {
		s.observeRejected(r, sw.status, start)
		return
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic serving request", zap.String("route", r.Pattern), zap.Any("panic", v))
			writeProblem(sw, r, problem(http.StatusInternalServerError, "internal", "Internal error", "the request failed", ""))
		}
		// Route patterns, never paths: paths hold participant ids.
		s.log.Info("request",
			zap.String("method", r.Method),
			zap.String("route", r.Pattern),
			zap.String("study", r.PathValue("study")),
			zap.Int("status", sw.status),
			zap.Duration("took", time.Since(start)))
		s.observeRequest(r, sw.status, time.Since(start))
	}()
	s.mux.ServeHTTP(sw, r)
}

// allow applies the per-client rate limit; health checks are exempt. The
// client is its remote address until authentication names it.
func (s *Server) allow(w http.ResponseWriter, r *http.Request) bool {
	if s.limit.IsZero() || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
		return true
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	res, err := s.limiter.AllowN(r.Context(), "client:"+client, s.limit, 1)
	if err != nil {
		// A limiter outage must not take the API down: let the request
		// through and say so once per state change.
		s.storeDown(fmt.Errorf("rate limiter: %w", err))
		return true
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(s.limit.Burst))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(res.ResetAfter.Seconds()))))
	if res.Allowed > 0 {
		return true
	}
	retry := int(math.Ceil(res.RetryAfter.Seconds()))
	h.Set("Retry-After", strconv.Itoa(max(retry, 1)))
	p := problem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		fmt.Sprintf("this client may make %d requests per %s (bursts of %d); retry after %d s", s.limit.Rate, s.limit.Period, s.limit.Burst, max(retry, 1)), "")
	p.Instance = r.URL.Path
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
	return false
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// decodeBody reads exactly one JSON object into v, refusing unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			writeProblem(w, r, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "send Content-Type: application/json", "Content-Type"))
			return false
		}
	}
	body, err := io.ReadAll(r.Body)
	if err == nil && len(bytes.TrimSpace(body)) == 0 {
		err = errEmptyBody
	}
	if err == nil {
		err = checkDepth(body, MaxJSONDepth)
	}
	if err == nil {
		err = checkDuplicateKeys(body)
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		if err = dec.Decode(v); err == nil {
			// More() misses a trailing } or ]: ask for one more value.
			if extra := dec.Decode(&json.RawMessage{}); extra != io.EOF {
				err = errors.New("unexpected data after the JSON object")
			}
		}
	}
	if err != nil {
		p := decodeError(err)
		if p.Status == http.StatusRequestTimeout {
			w.Header().Set("Connection", "close")
		}
		writeProblem(w, r, p)
		return false
	}
	return true
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, r, s.errorProblem(r, err))
}

// storeDown logs a store outage once per change of state, not per request.
func (s *Server) storeDown(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.storeOK {
		s.storeOK = false
		s.log.Error("store unavailable", zap.Error(err))
	}
}

func (s *Server) storeUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.storeOK {
		s.storeOK = true
		s.log.Info("store available again")
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeProblem(w, r, problem(http.StatusServiceUnavailable, "draining", "Shutting down", "the server is draining in-flight requests", ""))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.eng.Ready(ctx); err != nil {
		s.storeDown(err)
		var ue *trial.UnavailableError
		if errors.As(err, &ue) { // the store answers but cannot write
			writeProblem(w, r, cannotWrite(ue, ""))
			return
		}
		writeProblem(w, r, problem(http.StatusServiceUnavailable, "unavailable", "Store unavailable", "the store does not answer", ""))
		return
	}
	s.storeUp()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "studies": len(s.eng.Studies())})
}

type studySummary struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Revision       string `json:"policy_revision"`
	Catalogue      string `json:"catalogue_revision"`
	Interventions  int    `json:"interventions"`
	LoadedAt       string `json:"loaded_at"`
	DecisionPoints any    `json:"decision_points"`
	Factors        any    `json:"factors"`
	Timezone       string `json:"timezone"`
	// Reload is the study's reload status (GET /v1/studies/{study} only).
	Reload *engine.ReloadStatus `json:"reload,omitempty"`
}

func summary(rt *engine.StudyRuntime) studySummary {
	return studySummary{
		ID:             rt.Config.ID,
		Name:           rt.Config.Name,
		Revision:       rt.Revision,
		Catalogue:      rt.Catalogue.Revision(),
		Interventions:  rt.Catalogue.Len(),
		LoadedAt:       rt.LoadedAt.Format(time.RFC3339),
		DecisionPoints: rt.Config.DecisionPoints,
		Factors:        rt.Config.Factors,
		Timezone:       rt.Config.Timezone,
	}
}

func (s *Server) listStudies(w http.ResponseWriter, r *http.Request) {
	out := []studySummary{}
	for _, rt := range s.eng.Studies() {
		if !allowedStudy(r, rt.Config.ID) {
			continue // a study-bound token sees its studies only
		}
		out = append(out, summary(rt))
	}
	writeJSON(w, http.StatusOK, map[string]any{"studies": out})
}

func (s *Server) getStudy(w http.ResponseWriter, r *http.Request) {
	rt, ok := s.eng.Study(r.PathValue("study"))
	if !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	sum := summary(rt)
	sum.Reload, _ = s.eng.ReloadStatus(rt.Config.ID)
	writeJSON(w, http.StatusOK, sum)
}

type enrollment struct {
	ParticipantID string            `json:"participant_id"`
	Study         string            `json:"study"`
	Timezone      string            `json:"timezone"`
	Strata        map[string]string `json:"strata,omitempty"`
	Assignment    map[string]string `json:"assignment"`
	EnrolledAt    time.Time         `json:"enrolled_at"`
	Status        string            `json:"status"`
	Region        string            `json:"region,omitempty"`
	Locale        string            `json:"locale,omitempty"`
}

func toEnrollment(p *trial.Participant) enrollment {
	return enrollment{ParticipantID: p.ID, Study: p.Study, Timezone: p.Timezone, Strata: p.Strata,
		Assignment: p.Assignment, EnrolledAt: p.EnrolledAt, Status: p.Status, Region: p.Region, Locale: p.Locale}
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	var req engine.EnrollRequest
	if _, ok := s.eng.Study(r.PathValue("study")); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	if !decodeBody(w, r, &req) {
		return
	}
	p, created, err := s.eng.Enroll(r.Context(), r.PathValue("study"), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, toEnrollment(p))
}

func (s *Server) getParticipant(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.eng.Study(r.PathValue("study")); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	p, err := s.eng.Participant(r.Context(), r.PathValue("study"), r.PathValue("participant"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toEnrollment(p))
}

type wireEvent struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Time string          `json:"time"`
	Data json.RawMessage `json:"data"`
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.eng.Study(r.PathValue("study")); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	var req struct {
		Events []json.RawMessage `json:"events"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Events == nil {
		s.fail(w, r, &trial.InputError{Field: "events", Reason: "events is required: an array of {id, type, time, data}"})
		return
	}
	if len(req.Events) > trial.MaxEventsPerRequest {
		s.fail(w, r, &trial.InputError{Field: "events", Reason: fmt.Sprintf("at most %d events per request", trial.MaxEventsPerRequest)})
		return
	}
	evs := make([]trial.Event, len(req.Events))
	for i, raw := range req.Events {
		var we wireEvent
		if err := decodeStrict(raw, &we); err != nil {
			p := decodeError(err)
			p.Field = fmt.Sprintf("events[%d]", i) + fieldSuffix(p.Field)
			p.Detail = fmt.Sprintf("events[%d]: %s", i, p.Detail)
			writeProblem(w, r, p)
			return
		}
		t, err := parseTime(fmt.Sprintf("events[%d].time", i), we.Time)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		evs[i] = trial.Event{ID: we.ID, Type: we.Type, Time: t, Data: we.Data}
	}
	acc, dup, err := s.eng.Ingest(r.Context(), r.PathValue("study"), r.PathValue("participant"), evs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": acc, "duplicates": dup})
}

// decodeStrict decodes one JSON value, refusing unknown fields.
func decodeStrict(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	return dec.Decode(v)
}

func fieldSuffix(f string) string {
	if f == "" {
		return ""
	}
	return "." + f
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, &trial.InputError{Field: field, Reason: "time is required (RFC 3339, e.g. 2026-11-21T14:05:00Z)"}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &trial.InputError{Field: field, Reason: fmt.Sprintf("%q is not an RFC 3339 time (e.g. 2026-11-21T14:05:00Z)", v)}
	}
	// One range for every time the API takes (trial.CheckTime).
	return t, trial.CheckTime(field, t)
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.eng.Study(r.PathValue("study")); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	var req struct {
		DecisionPoint string         `json:"decision_point"`
		Time          string         `json:"time"`
		Context       map[string]any `json:"context"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	t, err := parseTime("time", req.Time)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ans, err := s.eng.Decide(r.Context(), r.PathValue("study"), r.PathValue("participant"), engine.DecideRequest{
		DecisionPoint:  req.DecisionPoint,
		Time:           t,
		Context:        req.Context,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ans.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeRaw(w, http.StatusOK, ans.Body)
}

const maxListLimit = 1000

func (s *Server) listDecisions(w http.ResponseWriter, r *http.Request) {
	study := r.PathValue("study")
	if _, ok := s.eng.Study(study); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	q := trial.DecisionQuery{Study: study, Participant: r.URL.Query().Get("participant"), Limit: 100}
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := parseTime("since", v)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		q.Since = t
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.fail(w, r, &trial.InputError{Field: "limit", Reason: fmt.Sprintf("limit must be a whole number from 1 to %d", maxListLimit)})
			return
		}
		q.Limit = n
	}
	if v := r.URL.Query().Get("cursor"); v != "" {
		t, id, err := decodeCursor(v)
		if err != nil {
			s.fail(w, r, &trial.InputError{Field: "cursor", Reason: "cursor is not one this server issued"})
			return
		}
		q.AfterTime, q.AfterID = t, id
	}
	recs, err := s.eng.ListDecisions(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := map[string]any{"decisions": recs}
	if len(recs) == q.Limit {
		last := recs[len(recs)-1]
		out["next_cursor"] = encodeCursor(last.Time, last.ID)
	}
	if recs == nil {
		out["decisions"] = []*trial.Record{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getDecision(w http.ResponseWriter, r *http.Request) {
	study := r.PathValue("study")
	if _, ok := s.eng.Study(study); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	rec, err := s.eng.Decision(r.Context(), study, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return time.Time{}, "", errors.New("bad cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err == nil {
		err = trial.CheckTime("cursor", t)
	}
	return t, id, err
}
