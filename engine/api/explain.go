package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/jitai/jitai/engine"
)

// explainDecision serves GET /v1/studies/{study}/decisions/{id}/explain:
// why a logged decision came out as it did (engine.Explain), for
// designers. The policy is evaluated again only when the decision was made
// with the revision loaded now; otherwise the explanation says so.
func (s *Server) explainDecision(w http.ResponseWriter, r *http.Request) {
	study := r.PathValue("study")
	rt, ok := s.eng.Study(study)
	if !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	rec, err := s.eng.Store().Decision(r.Context(), study, r.PathValue("id"))
	if errors.Is(err, engine.ErrNotFound) {
		writeProblem(w, r, problem(http.StatusNotFound, "unknown-decision", "Unknown decision",
			fmt.Sprintf("study %s has no decision with this id", study), "id"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The study as loaded now: a decision made with an older revision is
	// explained from its record only (once the engine keeps a revision
	// history, the record's own revision can be used here).
	s.writeExplanation(w, r, rt, rec)
}

// explainAnyStudy serves GET /v1/decisions/{id}/explain, the form of issue
// 6: the decision is looked up in every study the token may see.
func (s *Server) explainAnyStudy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, rt := range s.eng.Studies() {
		if !allowedStudy(r, rt.Config.ID) {
			continue
		}
		rec, err := s.eng.Store().Decision(r.Context(), rt.Config.ID, id)
		if errors.Is(err, engine.ErrNotFound) {
			continue
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.writeExplanation(w, r, rt, rec)
		return
	}
	writeProblem(w, r, problem(http.StatusNotFound, "unknown-decision", "Unknown decision",
		"no study this token may see has a decision with this id", "id"))
}

func (s *Server) writeExplanation(w http.ResponseWriter, r *http.Request, rt *engine.StudyRuntime, rec *engine.Record) {
	ex, err := engine.Explain(r.Context(), rt, rec)
	if err != nil {
		if errors.Is(err, engine.ErrInputHash) {
			writeProblem(w, r, problem(http.StatusConflict, "altered-record", "Record altered",
				"the decision's logged input does not match its input_hash, so it cannot be explained", "id"))
			return
		}
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ex)
}
