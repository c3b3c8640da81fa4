package api

import (
	"errors"
	"net/http"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/auth"
	"github.com/jitai/jitai/policies"
)

// eraser returns the store's participant-rights ability, answering 501 if
// the store has none.
func (s *Server) eraser(w http.ResponseWriter, r *http.Request) (trial.Eraser, bool) {
	er, ok := s.eng.Store().(trial.Eraser)
	if !ok {
		writeProblem(w, r, problem(http.StatusNotImplemented, "not-implemented", "Not supported by this store", "the configured store cannot withdraw or erase participants", ""))
	}
	return er, ok
}

// withdraw marks a participant withdrawn: no more decisions (409), data kept.
func (s *Server) withdraw(w http.ResponseWriter, r *http.Request) {
	study, pid := r.PathValue("study"), r.PathValue("participant")
	if _, ok := s.eng.Study(study); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	er, ok := s.eraser(w, r)
	if !ok {
		return
	}
	p, err := er.Withdraw(r.Context(), study, pid)
	if errors.Is(err, trial.ErrNotFound) {
		err = engine.ErrUnknownParticipant
	}
	detail := map[string]any{"participant_sha256": auth.ParticipantHash(study, pid)}
	if err != nil {
		prob := s.errorProblem(r, err)
		s.audit(r, principal(r), r.Pattern, "withdraw", "failed", prob.Status, detail)
		writeProblem(w, r, prob)
		return
	}
	s.audit(r, principal(r), r.Pattern, "withdraw", "done", http.StatusOK, detail)
	writeJSON(w, http.StatusOK, toEnrollment(p))
}

var errPluginErasure = errors.New("plugin erasure failed")

// erase deletes a participant's state, events, identifiers and idempotency
// entries; their decision records are removed or kept anonymised as the
// study's erasure setting says. The choice is in the answer and the audit log.
func (s *Server) erase(w http.ResponseWriter, r *http.Request) {
	study, pid := r.PathValue("study"), r.PathValue("participant")
	rt, ok := s.eng.Study(study)
	if !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	er, ok := s.eraser(w, r)
	if !ok {
		return
	}
	mode := rt.Config.Erasure
	if mode == "" {
		mode = policies.ErasureAnonymise
	}
	res, err := er.Erase(r.Context(), study, pid, mode == policies.ErasureAnonymise)
	if err == nil || errors.Is(err, trial.ErrNotFound) {
		// What the study's plugins keep (pending notifications, plugin
		// state) goes too, also when a repeated request finds the store's
		// part already erased: a failed plugin erasure can be retried.
		if perr := rt.ErasePluginData(r.Context(), pid); perr != nil {
			s.log.Error("erasing plugin-held participant data failed", zap.String("study", study), zap.Error(perr))
			err = errPluginErasure
		}
	}
	if errors.Is(err, trial.ErrNotFound) {
		err = engine.ErrUnknownParticipant
	}
	detail := map[string]any{"participant_sha256": auth.ParticipantHash(study, pid), "erasure": mode}
	if errors.Is(err, errPluginErasure) {
		prob := problem(http.StatusServiceUnavailable, "plugin-erasure-failed", "Plugin data not erased",
			"the participant's data held by the study's plugins could not all be erased (a plugin is down or failed); repeat the request", "")
		s.audit(r, principal(r), r.Pattern, "erase", "failed", prob.Status, detail)
		writeProblem(w, r, prob)
		return
	}
	if err != nil {
		prob := s.errorProblem(r, err)
		s.audit(r, principal(r), r.Pattern, "erase", "failed", prob.Status, detail)
		writeProblem(w, r, prob)
		return
	}
	detail["records"], detail["events"] = res.Records, res.Events
	s.audit(r, principal(r), r.Pattern, "erase", "done", http.StatusOK, detail)
	writeJSON(w, http.StatusOK, map[string]any{"erased": true, "erasure": mode, "records": res.Records, "events": res.Events})
}
