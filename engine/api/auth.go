package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/auth"
)

// AuthOptions configure authentication and authorisation.
type AuthOptions struct {
	// Tokens authenticates bearer tokens; nil turns authentication off
	// (every request is allowed; serve permits that on loopback only).
	Tokens *auth.Verifier
	// OpenMetrics serves /metrics and /openapi.json without a token
	// (metrics_auth none); otherwise they need an analyst or admin token.
	OpenMetrics bool
	// Audit records who did what; nil records nothing.
	Audit *auth.Audit
}

type authConfig struct {
	AuthOptions
}

// SetAuth configures authentication; call it before serving.
func (s *Server) SetAuth(o AuthOptions) { s.auth = authConfig{o} }

// rule is who may use a route: the roles (admin always may) and whether
// the token must be bound to the route's study.
type rule struct {
	public bool
	roles  []auth.Role
	audit  string // action name for the audit log; empty: not audited
	// unbound: the route spans every study (GET /metrics), so a token
	// bound to some studies may not use it.
	unbound bool
}

var (
	app      = auth.RoleApp
	designer = auth.RoleDesigner
	analyst  = auth.RoleAnalyst
)

// routeRules maps each route pattern to its rule. A route missing here is
// for admin tokens only (fail closed), so a new route is never open by
// accident. Study-scoped routes ({study} in the pattern) also need a token
// bound to that study (or to every study).
var routeRules = map[string]rule{
	"GET /healthz":                                                           {public: true},
	"GET /readyz":                                                            {public: true},
	"GET /metrics":                                                           {roles: []auth.Role{analyst}, unbound: true},
	"GET /openapi.json":                                                      {roles: []auth.Role{analyst}},
	"GET /v1/studies":                                                        {roles: []auth.Role{designer, analyst}},
	"GET /v1/studies/{study}":                                                {roles: []auth.Role{designer, analyst}},
	"GET /v1/studies/{study}/openapi.json":                                   {roles: []auth.Role{app, designer, analyst}},
	"POST /v1/studies/{study}/reload":                                        {roles: []auth.Role{designer}, audit: "reload"},
	"GET /v1/studies/{study}/shadow":                                         {roles: []auth.Role{designer, analyst}},
	"GET /v1/studies/{study}/health":                                         {roles: []auth.Role{designer, analyst}},
	"PUT /v1/studies/{study}/shadow":                                         {roles: []auth.Role{designer}, audit: "shadow"},
	"DELETE /v1/studies/{study}/shadow":                                      {roles: []auth.Role{designer}, audit: "shadow-drop"},
	"POST /v1/studies/{study}/shadow/promote":                                {roles: []auth.Role{designer}, audit: "shadow-promote"},
	"POST /v1/studies/{study}/participants":                                  {roles: []auth.Role{app}},
	"GET /v1/studies/{study}/participants/{participant}":                     {roles: []auth.Role{app}},
	"POST /v1/studies/{study}/participants/{participant}/events":             {roles: []auth.Role{app}},
	"POST /v1/studies/{study}/participants/{participant}/decisions":          {roles: []auth.Role{app}},
	"GET /v1/studies/{study}/decisions":                                      {roles: []auth.Role{analyst}, audit: "list-decisions"},
	"GET /v1/studies/{study}/decisions/{id}":                                 {roles: []auth.Role{analyst}, audit: "read-decision"},
	"GET /v1/studies/{study}/decisions/{id}/explain":                         {roles: []auth.Role{designer}, audit: "explain-decision"},
	"GET /v1/decisions/{id}/explain":                                         {roles: []auth.Role{designer}, audit: "explain-decision"},
	"GET /v1/studies/{study}/export":                                         {roles: []auth.Role{analyst}, audit: "export"},
	"POST /v1/studies/{study}/participants/{participant}/withdraw":           {roles: []auth.Role{app}},
	"PATCH /v1/studies/{study}/participants/{participant}":                   {roles: []auth.Role{app}},
	"PUT /v1/studies/{study}/participants/{participant}/devices/{device}":    {roles: []auth.Role{app}},
	"DELETE /v1/studies/{study}/participants/{participant}/devices/{device}": {roles: []auth.Role{app}},
	"GET /v1/studies/{study}/decisions/{id}/delivery":                        {roles: []auth.Role{analyst}, audit: "read-delivery"},
	"GET /v1/studies/{study}/deliveries/dead-letters":                        {roles: []auth.Role{analyst, designer}, audit: "dead-letters"},
	"DELETE /v1/studies/{study}/participants/{participant}":                  {},
}

type principalKey struct{}

// principal returns the token that authenticated r (nil without auth).
func principal(r *http.Request) *auth.Token {
	t, _ := r.Context().Value(principalKey{}).(*auth.Token)
	return t
}

// allowedStudy says whether the request's token may see study.
func allowedStudy(r *http.Request, study string) bool {
	t := principal(r)
	return t == nil || t.AllowsStudy(study)
}

// authorize authenticates the bearer token and checks the route's rule:
// 401 (with WWW-Authenticate: Bearer) for a missing, unknown or revoked
// token, 403 for the wrong role or study.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if s.auth.Tokens == nil {
		return r, true
	}
	_, pattern := s.mux.Handler(r)
	ru, known := routeRules[pattern]
	if pattern == "/" || pattern == "" {
		known = true // the 404 route: any valid token, so routes cannot be probed without one
		ru = rule{roles: auth.Roles}
	}
	if ru.public || (s.auth.OpenMetrics && (pattern == "GET /metrics" || pattern == "GET /openapi.json")) {
		return r, true
	}
	plain, hasBearer := bearer(r)
	tok, err, reloadErr := s.auth.Tokens.Authenticate(plain)
	if reloadErr != nil {
		s.log.Error("token file changed but could not be read; the previous tokens stay in force", zap.Error(reloadErr))
	}
	if err != nil {
		detail := "send Authorization: Bearer <token>"
		switch {
		case !hasBearer && r.Header.Get("Authorization") != "":
			detail = "the Authorization header must be Bearer <token>"
		case errors.Is(err, auth.ErrRevoked):
			detail = "the token has been revoked"
		case errors.Is(err, auth.ErrInvalidToken):
			detail = "the token is not valid"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="jitai"`)
		s.audit(r, nil, pattern, "authenticate", "denied", http.StatusUnauthorized, nil)
		writeProblem(w, r, problem(http.StatusUnauthorized, "unauthenticated", "Authentication required", detail, "Authorization"))
		return r, false
	}
	study := studyOf(pattern, r)
	switch {
	case tok.Role != auth.RoleAdmin && (!known || !slices.Contains(ru.roles, tok.Role)):
		s.audit(r, tok, pattern, "authorize", "denied", http.StatusForbidden, nil)
		writeProblem(w, r, problem(http.StatusForbidden, "forbidden", "Not allowed", "a "+string(tok.Role)+" token may not use this route", ""))
		return r, false
	case ru.unbound && len(tok.Studies) > 0:
		s.audit(r, tok, pattern, "authorize", "denied", http.StatusForbidden, nil)
		writeProblem(w, r, problem(http.StatusForbidden, "forbidden-study-bound", "Not allowed for a study-bound token",
			"this route holds the series of every study; use an analyst or admin token bound to no study", "Authorization"))
		return r, false
	case study != "" && !tok.AllowsStudy(study):
		s.audit(r, tok, pattern, "authorize", "denied", http.StatusForbidden, nil)
		writeProblem(w, r, problem(http.StatusForbidden, "forbidden-study", "Not allowed for this study", "this token is not bound to this study", "study"))
		return r, false
	}
	if ru.audit != "" {
		s.audit(r, tok, pattern, ru.audit, "granted", 0, nil)
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, tok)), true
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// studyOf is the {study} path segment of a /v1/studies/{study}... route
// (path values are not set before routing).
func studyOf(pattern string, r *http.Request) string {
	if !strings.Contains(pattern, "{study}") {
		return ""
	}
	parts := strings.Split(r.URL.EscapedPath(), "/")
	if len(parts) < 4 || parts[1] != "v1" || parts[2] != "studies" {
		return ""
	}
	st, err := url.PathUnescape(parts[3])
	if err != nil {
		return parts[3]
	}
	return st
}

// audit writes one audit entry (no participant data: detail holds at most
// a participant pseudonym, Audit.Pseudonym).
func (s *Server) audit(r *http.Request, tok *auth.Token, route, action, outcome string, status int, detail map[string]any) {
	s.auditStudy(r, tok, route, studyOf(route, r), action, outcome, status, detail)
}

// auditStudy is audit for a route whose study is not in its path (it is
// found while serving, as GET /v1/decisions/{id}/explain finds it).
func (s *Server) auditStudy(r *http.Request, tok *auth.Token, route, study, action, outcome string, status int, detail map[string]any) {
	if s.auth.Audit == nil {
		return
	}
	e := auth.AuditEntry{Action: action, Route: route, Study: study, Outcome: outcome, Status: status, Detail: detail}
	if tok != nil {
		e.TokenID, e.TokenName, e.Role = tok.ID, tok.Name, tok.Role
	}
	_ = s.auth.Audit.Record(e)
}
