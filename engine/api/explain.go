package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
)

// explainDecision serves GET /v1/studies/{study}/decisions/{id}/explain:
// why a logged decision came out as it did (engine.Explain), for
// designers. The policy is evaluated again with the revision the decision
// was made with, while hot reload keeps it; otherwise the explanation says
// so.
func (s *Server) explainDecision(w http.ResponseWriter, r *http.Request) {
	study := r.PathValue("study")
	rt, ok := s.eng.Study(study)
	if !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	rec, err := s.eng.Decision(r.Context(), study, r.PathValue("id"))
	if errors.Is(err, trial.ErrNotFound) {
		writeProblem(w, r, problem(http.StatusNotFound, "unknown-decision", "Unknown decision",
			fmt.Sprintf("study %s has no decision with this id", study), "id"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeExplanation(w, r, s.versionOf(rt, rec), rec)
}

// explainAnyStudy serves GET /v1/decisions/{id}/explain, the form of issue
// 6: the decision is looked up in every study the token may see.
func (s *Server) explainAnyStudy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, rt := range s.eng.Studies() {
		if !allowedStudy(r, rt.Config.ID) {
			continue
		}
		rec, err := s.eng.Decision(r.Context(), rt.Config.ID, id)
		if errors.Is(err, trial.ErrNotFound) {
			continue
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// The route names no study: say in the audit log which one was read.
		s.auditStudy(r, principal(r), r.Pattern, rt.Config.ID, "explain-decision", "found", http.StatusOK, nil)
		s.writeExplanation(w, r, s.versionOf(rt, rec), rec)
		return
	}
	writeProblem(w, r, problem(http.StatusNotFound, "unknown-decision", "Unknown decision",
		"no study this token may see has a decision with this id", "id"))
}

// versionOf is the study version a decision was made with when hot reload
// still keeps it (engine.StudyAt), else the one loaded now: a decision made
// with a revision no longer kept is explained from its record only, and the
// explanation says so.
func (s *Server) versionOf(rt *engine.StudyRuntime, rec *trial.Record) *engine.StudyRuntime {
	if rec.PolicyRevision != rt.Revision {
		if old, ok := s.eng.StudyAt(rt.Config.ID, rec.PolicyRevision); ok {
			return old
		}
	}
	return rt
}

func (s *Server) writeExplanation(w http.ResponseWriter, r *http.Request, rt *engine.StudyRuntime, rec *trial.Record) {
	ex, err := decision.Explain(r.Context(), rt.Runtime, rec)
	if err != nil {
		if errors.Is(err, decision.ErrInputHash) {
			writeProblem(w, r, problem(http.StatusConflict, "altered-record", "Record altered",
				"the decision's logged input does not match its input_hash, so it cannot be explained", "id"))
			return
		}
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ex)
}
