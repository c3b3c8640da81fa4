package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/trial"
)

// updateParticipant changes a participant's time zone, region or locale,
// effective from their next scheduled point.
func (s *Server) updateParticipant(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.eng.Study(r.PathValue("study")); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	var req engine.UpdateRequest
	if !decodeBody(w, r, &req) {
		return
	}
	p, err := s.eng.UpdateParticipant(r.Context(), r.PathValue("study"), r.PathValue("participant"), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toEnrollment(p))
}

// device is a registered device as answered: never its token.
type device struct {
	DeviceID  string    `json:"device_id"`
	Platform  string    `json:"platform"`
	UpdatedAt time.Time `json:"updated_at"`
}

// putDevice registers or replaces a participant's push target.
func (s *Server) putDevice(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.eng.Study(r.PathValue("study")); !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	var req struct {
		Platform string `json:"platform"`
		Token    string `json:"token"`
		P256DH   string `json:"p256dh"`
		Auth     string `json:"auth"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	d := &trial.Device{ID: r.PathValue("device"), Platform: req.Platform, Token: req.Token, P256DH: req.P256DH, Auth: req.Auth}
	if err := s.eng.PutDevice(r.Context(), r.PathValue("study"), r.PathValue("participant"), d); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, device{DeviceID: d.ID, Platform: d.Platform, UpdatedAt: d.UpdatedAt})
}

// deleteDevice removes a participant's device.
func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	if err := s.eng.DeleteDevice(r.Context(), r.PathValue("study"), r.PathValue("participant"), r.PathValue("device")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getDelivery answers a decision's delivery log.
func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	study := r.PathValue("study")
	rec, err := s.eng.Decision(r.Context(), study, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.eng.Delivery(r.Context(), study, rec.Participant, rec.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// deadLetters lists a study's failed and expired deliveries.
func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.fail(w, r, &trial.InputError{Field: "limit", Reason: fmt.Sprintf("limit must be a whole number from 1 to %d", maxListLimit)})
			return
		}
		limit = n
	}
	ds, err := s.eng.DeadLetters(r.Context(), r.PathValue("study"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []*trial.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
}
