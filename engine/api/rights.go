package api

import (
	"errors"
	"net/http"

	"github.com/jitai/jitai/engine"
)

// withdraw marks a participant withdrawn: no more decisions (409), data kept.
func (s *Server) withdraw(w http.ResponseWriter, r *http.Request) {
	study, pid := r.PathValue("study"), r.PathValue("participant")
	p, err := s.eng.Withdraw(r.Context(), study, pid)
	detail := map[string]any{"participant_pseudonym": s.auth.Audit.Pseudonym(study, pid)}
	if err != nil {
		prob := s.errorProblem(r, err)
		if !errors.Is(err, engine.ErrUnknownStudy) {
			s.audit(r, principal(r), r.Pattern, "withdraw", "failed", prob.Status, detail)
		}
		writeProblem(w, r, prob)
		return
	}
	s.audit(r, principal(r), r.Pattern, "withdraw", "done", http.StatusOK, detail)
	writeJSON(w, http.StatusOK, toEnrollment(p))
}

// erase deletes a participant's state, events, identifiers and idempotency
// entries; their decision records are removed or kept anonymised as the
// study's erasure setting says. The choice is in the answer and the audit log.
func (s *Server) erase(w http.ResponseWriter, r *http.Request) {
	study, pid := r.PathValue("study"), r.PathValue("participant")
	res, err := s.eng.Erase(r.Context(), study, pid)
	detail := map[string]any{"participant_pseudonym": s.auth.Audit.Pseudonym(study, pid), "erasure": res.Mode}
	if err != nil {
		prob := s.errorProblem(r, err)
		if !errors.Is(err, engine.ErrUnknownStudy) {
			s.audit(r, principal(r), r.Pattern, "erase", "failed", prob.Status, detail)
		}
		writeProblem(w, r, prob)
		return
	}
	detail["records"], detail["events"] = res.Records, res.Events
	s.audit(r, principal(r), r.Pattern, "erase", "done", http.StatusOK, detail)
	answer := map[string]any{"erased": true, "erasure": res.Mode, "records": res.Records, "events": res.Events}
	if len(res.Copies) > 0 {
		answer["copies"] = res.Copies // where the bytes are gone from the disk, and when
	}
	writeJSON(w, http.StatusOK, answer)
}
