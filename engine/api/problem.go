package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/policies"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Field names the offending request field (JSON path or header name).
	Field string `json:"field,omitempty"`
	// retryAfter is the Retry-After of a 503, in seconds (default 1).
	retryAfter int
}

func problem(status int, slug, title, detail, field string) *Problem {
	return &Problem{Type: "urn:jitai:problem:" + slug, Title: title, Status: status, Detail: detail, Field: field}
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(max(p.retryAfter, 1)))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// errorProblem maps an engine error to a problem; unexpected errors are
// logged (without request data) and answered as 500.
func (s *Server) errorProblem(r *http.Request, err error) *Problem {
	var ie *trial.InputError
	var pe *decision.PolicyError
	var dc *policies.DesignChangedError
	var ce *trial.EventConflictError
	var ue *trial.UnavailableError
	switch {
	case errors.As(err, &ie):
		return problem(http.StatusUnprocessableEntity, "invalid-field", "A field is invalid", ie.Error(), ie.Field)
	case errors.As(err, &ce):
		field := ce.Field
		if field == "" {
			field = "events"
		}
		return problem(http.StatusConflict, "event-id-conflict", "Event id already used",
			fmt.Sprintf("event id %q was already stored for this participant with a different type, time or data; nothing of this request was stored. Send an event again only unchanged; a new event needs a new id", ce.ID), field)
	case errors.Is(err, engine.ErrUnknownStudy):
		return problem(http.StatusNotFound, "unknown-study", "Unknown study", fmt.Sprintf("no study %q is loaded", r.PathValue("study")), "study")
	case errors.Is(err, engine.ErrUnknownParticipant):
		return problem(http.StatusNotFound, "unknown-participant", "Unknown participant", "the participant is not enrolled in this study; enrol with POST /v1/studies/{study}/participants", "participant")
	case errors.Is(err, trial.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "Not found", "no such record", "")
	case errors.Is(err, engine.ErrIdempotencyMismatch):
		return problem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused", "this Idempotency-Key was used for a different request; use a new key for a new decision", "Idempotency-Key")
	case errors.As(err, &dc):
		s.log.Error("between-person design differs from the pinned one", zap.String("study", r.PathValue("study")), zap.Error(err))
		return problem(http.StatusConflict, "design-changed", "The study's design changed", "the study's between-person design differs from the one its participants were enrolled under, so nobody can be enrolled: "+err.Error(), "")
	case errors.Is(err, engine.ErrNotSupported):
		return problem(http.StatusNotImplemented, "not-implemented", "Not supported by this store", "the configured store cannot withdraw or erase participants", "")
	case errors.Is(err, engine.ErrPluginErasure):
		return problem(http.StatusServiceUnavailable, "plugin-erasure-failed", "Plugin data not erased",
			"the participant's data held by the study's plugins could not all be erased (a plugin is down or failed); repeat the request", "")
	case errors.Is(err, engine.ErrWithdrawn):
		return problem(http.StatusConflict, "withdrawn", "Participant withdrawn", "the participant has withdrawn from the study", "participant")
	case errors.Is(err, decision.ErrPolicyTimeout):
		s.log.Error("policy timed out", zap.String("study", r.PathValue("study")), zap.Error(err))
		return problem(http.StatusServiceUnavailable, "policy-timeout", "The study's policy timed out", err.Error()+"; nothing was recorded", "")
	case errors.As(err, &pe):
		s.log.Error("policy failed", zap.String("study", pe.Study), zap.Error(pe.Err))
		return problem(http.StatusInternalServerError, "policy-error", "The study's policy failed", pe.Err.Error(), "")
	case errors.As(err, &ue):
		s.storeDown(err)
		return cannotWrite(ue, "; nothing of this request was stored: retry later with the same Idempotency-Key")
	case errors.Is(err, trial.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		s.storeDown(err)
		return problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "the store is not reachable now; retry shortly with the same Idempotency-Key: if the decision was recorded before the store went away you get that decision, otherwise a new one is made (no randomised decision is returned without its record)", "")
	case errors.Is(err, context.Canceled):
		return problem(499, "cancelled", "Request cancelled", "the client went away", "")
	}
	s.log.Error("request failed", zap.String("route", r.Pattern), zap.Error(err))
	return problem(http.StatusInternalServerError, "internal", "Internal error", "the request failed; nothing was returned to the participant", "")
}

// cannotWrite is the problem of a store that answers but cannot write (its
// disk is nearly full or read-only): 503 with the store's Retry-After.
func cannotWrite(ue *trial.UnavailableError, more string) *Problem {
	p := problem(http.StatusServiceUnavailable, "store-cannot-write", "The store cannot write now", ue.Reason+more, "")
	p.retryAfter = int(ue.RetryAfter.Seconds())
	return p
}

// decodeError turns a JSON decoding error into a problem naming the field.
func decodeError(err error) *Problem {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	var de *depthError
	var dk *duplicateKeyError
	switch {
	case errors.As(err, &de):
		return de.problem()
	case errors.As(err, &dk):
		return problem(http.StatusBadRequest, "duplicate-key", "Duplicate JSON key",
			fmt.Sprintf("%q appears more than once in the same object; send each member once", dk.Path), dk.Path)
	case bodyTimeout(err):
		return problem(http.StatusRequestTimeout, "body-timeout", "Request body too slow",
			"the body did not arrive within the request timeout; nothing was read into the request", "")
	case errors.As(err, &mbe):
		return problem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large", fmt.Sprintf("the body is over the limit of %d bytes", mbe.Limit), "")
	case errors.As(err, &se):
		return problem(http.StatusBadRequest, "malformed-json", "Malformed JSON", fmt.Sprintf("%v (at byte %d)", se, se.Offset), "")
	case errors.As(err, &te):
		return problem(http.StatusBadRequest, "wrong-type", "A field has the wrong type", fmt.Sprintf("%s must be %s, not %s", te.Field, te.Type, te.Value), te.Field)
	case errors.Is(err, errEmptyBody):
		return problem(http.StatusBadRequest, "empty-body", "Empty body", "the request needs a JSON body", "")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return problem(http.StatusBadRequest, "unknown-field", "Unknown field", fmt.Sprintf("field %q is not part of this request", f), f)
	}
	return problem(http.StatusBadRequest, "malformed-json", "Malformed JSON", err.Error(), "")
}
