package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/jitai/jitai/engine"
)

// reloadProblem is the problem document of a refused reload: the standard
// members plus every error (file:line: reason) and the attempt.
type reloadProblem struct {
	*Problem
	Errors  []string              `json:"errors"`
	Attempt *engine.ReloadAttempt `json:"attempt"`
}

// reloadStudy reloads a study from its folder (POST
// /v1/studies/{study}/reload): 200 with the attempt when the new version
// serves or nothing changed, 422 problem+json with the errors when it was
// refused (the last good version keeps serving).
func (s *Server) reloadStudy(w http.ResponseWriter, r *http.Request) {
	study := r.PathValue("study")
	a, err := s.eng.ReloadStudy(r.Context(), study)
	var re *engine.ReloadError
	switch {
	case errors.As(err, &re):
		s.reloadRefused(w, r, re)
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, http.StatusOK, a)
	}
}

// reloadRefused answers a refused reload: 422 with every error.
func (s *Server) reloadRefused(w http.ResponseWriter, r *http.Request, re *engine.ReloadError) {
	p := problem(http.StatusUnprocessableEntity, "reload-refused", "The new version of the study was refused",
		fmt.Sprintf("%d problem(s); revision %.12s keeps serving", len(re.Attempt.Errors), re.Attempt.Previous), "")
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(reloadProblem{Problem: p, Errors: re.Attempt.Errors, Attempt: re.Attempt})
}
