package api

import (
	"net/http"
	"slices"

	"github.com/jitai/jitai/engine/auth"
)

// getHealth answers a study's live randomisation integrity and decision
// counts (engine.StudyHealth), kept incrementally by the engine.
func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) {
	h, err := s.eng.Health(r.Context(), r.PathValue("study"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

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
