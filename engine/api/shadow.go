package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/jitai/jitai/engine"
)

// Shadowing a candidate version of a study (docs/study.md "Shadowing a
// candidate"): PUT posts one, GET reports what it would change on the live
// decisions since, DELETE drops it, POST .../promote makes it serve.

// candidateBody is the body of PUT /v1/studies/{study}/shadow: the
// candidate's files by their path in the study folder.
type candidateBody struct {
	Files map[string]string `json:"files"`
}

// candidateProblem is a refused candidate: the problem plus every error.
type candidateProblem struct {
	*Problem
	Errors []string `json:"errors"`
}

func (s *Server) putShadow(w http.ResponseWriter, r *http.Request) {
	var body candidateBody
	if !decodeBody(w, r, &body) {
		return
	}
	if len(body.Files) == 0 {
		writeProblem(w, r, problem(http.StatusUnprocessableEntity, "invalid-field", "A field is invalid", "files: give the candidate's study.yaml and policy/*.rego by path", "files"))
		return
	}
	files := make(map[string][]byte, len(body.Files))
	for k, v := range body.Files {
		files[k] = []byte(v)
	}
	rep, err := s.eng.PostCandidate(r.Context(), r.PathValue("study"), files)
	if err != nil {
		s.shadowFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rep)
}

// servedStudy is the path's study, or false after answering 404.
func (s *Server) servedStudy(w http.ResponseWriter, r *http.Request) (string, bool) {
	study := r.PathValue("study")
	if _, ok := s.eng.Study(study); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return "", false
	}
	return study, true
}

func (s *Server) getShadow(w http.ResponseWriter, r *http.Request) {
	study, ok := s.servedStudy(w, r)
	if !ok {
		return
	}
	rep, err := s.eng.Shadow(study)
	if err != nil {
		s.shadowFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) deleteShadow(w http.ResponseWriter, r *http.Request) {
	study, ok := s.servedStudy(w, r)
	if !ok {
		return
	}
	if err := s.eng.DropShadow(study); err != nil {
		s.shadowFail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) promoteShadow(w http.ResponseWriter, r *http.Request) {
	study, ok := s.servedStudy(w, r)
	if !ok {
		return
	}
	a, err := s.eng.PromoteShadow(r.Context(), study)
	var re *engine.ReloadError
	if errors.As(err, &re) {
		s.reloadRefused(w, r, re)
		return
	}
	if err != nil {
		s.shadowFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) shadowFail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *engine.CandidateError
	switch {
	case errors.Is(err, engine.ErrNoShadow):
		writeProblem(w, r, problem(http.StatusNotFound, "no-shadow", "No candidate is shadowed",
			fmt.Sprintf("study %q has no shadowed candidate: PUT one to /v1/studies/{study}/shadow or put it in the study's shadow/ folder", r.PathValue("study")), ""))
	case errors.As(err, &ce):
		field := ce.Field
		if field == "" {
			field = "files"
		}
		p := problem(http.StatusUnprocessableEntity, "candidate-refused", "The candidate was refused",
			fmt.Sprintf("%d problem(s); nothing is shadowed or served differently", len(ce.Errors)), field)
		p.Instance = r.URL.Path
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(p.Status)
		_ = json.NewEncoder(w).Encode(candidateProblem{Problem: p, Errors: ce.Errors})
	default:
		s.fail(w, r, err)
	}
}
