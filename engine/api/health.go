package api

import (
	"net/http"
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
