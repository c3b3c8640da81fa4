package api

import (
	"slices"

	"github.com/jitai/jitai/engine/auth"
)

// What the web console (engine/console) needs of the API: the same token
// verifier and the same route table, so that it shows exactly what the API
// would answer.

// Tokens returns the verifier the server authenticates with (nil when
// authentication is off).
func (s *Server) Tokens() *auth.Verifier { return s.auth.Tokens }

// Permits says whether a token may use a route (a pattern of the route
// table, such as "GET /v1/studies/{study}/health") for study ("" for a
// route without one), exactly as the API decides: admin always may,
// otherwise the token needs one of the route's roles and, for a study
// route, a binding to the study. A nil token (authentication off) may.
// The console shows what the API would answer by asking it.
func Permits(route string, tok *auth.Token, study string) bool {
	if tok == nil {
		return true
	}
	if tok.Revoked() {
		return false
	}
	ru, known := routeRules[route]
	if tok.Role != auth.RoleAdmin && (!known || !slices.Contains(ru.roles, tok.Role)) {
		return false
	}
	return study == "" || tok.AllowsStudy(study)
}
