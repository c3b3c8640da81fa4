package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestParticipantUpdateAndDevices: PATCH changes a participant's time zone
// and region (422 naming the field for bad values); a device is registered
// with PUT and its token is never answered; DELETE removes it (404 after);
// a decision without a delivery log answers 404 on .../delivery.
func TestParticipantUpdateAndDevices(t *testing.T) {
	e := newEnv(t)
	e.enrol(stressMRT, "p-dev")
	base := "/v1/studies/" + stressMRT + "/participants/p-dev"
	var p struct {
		Timezone string `json:"timezone"`
		Region   string `json:"region"`
	}
	e.do(req{Method: http.MethodPatch, Path: base, Body: map[string]any{"timezone": "Asia/Tokyo", "region": "US"}}).expect(t, http.StatusOK).decode(t, &p)
	if p.Timezone != "Asia/Tokyo" || p.Region != "US" {
		t.Fatalf("after PATCH: %+v", p)
	}
	checkProblem(t, e.do(req{Method: http.MethodPatch, Path: base, Body: map[string]any{"timezone": "Mars/Olympus"}}), http.StatusUnprocessableEntity, "timezone")
	checkProblem(t, e.do(req{Method: http.MethodPatch, Path: base, Body: map[string]any{"region": "usa"}}), http.StatusUnprocessableEntity, "region")
	checkProblem(t, e.do(req{Method: http.MethodPatch, Path: base, Body: map[string]any{"planet": "mars"}}), http.StatusBadRequest, "planet")

	const token = "fcm-secret-token-0123456789"
	r := e.do(req{Method: http.MethodPut, Path: base + "/devices/phone-1", Body: map[string]any{"platform": "fcm", "token": token}}).expect(t, http.StatusOK)
	if strings.Contains(string(r.Body), token) {
		t.Fatalf("the device token was answered: %s", r.Body)
	}
	checkProblem(t, e.do(req{Method: http.MethodPut, Path: base + "/devices/phone-2", Body: map[string]any{"platform": "pager", "token": "x"}}), http.StatusUnprocessableEntity, "platform")
	checkProblem(t, e.do(req{Method: http.MethodPut, Path: base + "/devices/phone-3", Body: map[string]any{"platform": "webpush", "token": "http://push.example/1", "p256dh": "k", "auth": "a"}}), http.StatusUnprocessableEntity, "token")
	checkProblem(t, e.do(req{Method: http.MethodPut, Path: "/v1/studies/" + stressMRT + "/participants/nobody/devices/d", Body: map[string]any{"platform": "fcm", "token": "t"}}), http.StatusNotFound, "")
	e.do(req{Method: http.MethodDelete, Path: base + "/devices/phone-1"}).expect(t, http.StatusNoContent)
	checkProblem(t, e.do(req{Method: http.MethodDelete, Path: base + "/devices/phone-1"}), http.StatusNotFound, "")

	_, d := e.decide(stressMRT, "p-dev", appPoint(e.study(stressMRT)), at(0, 12, 0), nil)
	checkProblem(t, e.do(req{Method: http.MethodGet, Path: "/v1/studies/" + stressMRT + "/decisions/" + d.DecisionID + "/delivery"}), http.StatusNotFound, "")
	var dead struct {
		Deliveries []any `json:"deliveries"`
	}
	e.do(req{Method: http.MethodGet, Path: "/v1/studies/" + stressMRT + "/deliveries/dead-letters"}).expect(t, http.StatusOK).decode(t, &dead)
	if dead.Deliveries == nil {
		t.Fatal("dead letters: want an empty list")
	}
}
