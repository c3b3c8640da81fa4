package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// device returns a push target of platform with a token derived from id.
func device(id, platform string, i int) *trial.Device {
	d := &trial.Device{ID: id, Platform: platform, Token: "token-" + id + "-secret", UpdatedAt: at(i)}
	if platform == "webpush" {
		d.Token = "https://push.example.org/send/" + id
		d.P256DH, d.Auth = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", "tBHItJI5svbpez7KI4CCXg"
	}
	return d
}

// mustDevices lists a participant's devices and fails the test on error.
func mustDevices(t *testing.T, s trial.Clock, study, p string) []*trial.Device {
	t.Helper()
	ds, err := s.Devices(ctx(t), study, p)
	if err != nil {
		t.Fatalf("Devices(%s/%s): %v", study, p, err)
	}
	return ds
}

func (h *harness) testDevices(t *testing.T) {
	s := h.store(t)
	if err := s.PutDevice(ctx(t), "s1", "nobody", device("a", "fcm", 1)); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("PutDevice of an unknown participant: %v, want ErrNotFound", err)
	}
	if ds, err := s.Devices(ctx(t), "s1", "nobody"); len(ds) != 0 || err != nil && !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("Devices of an unknown participant: %v, %v", ds, err)
	}
	mustEnroll(t, s, participant("s1", "p1", "a"))
	mustEnroll(t, s, participant("s1", "p2", "a"))
	if ds := mustDevices(t, s, "s1", "p1"); len(ds) != 0 {
		t.Errorf("devices of a new participant: %v", ds)
	}
	b, a, w := device("phone-b", "apns", 2), device("phone-a", "fcm", 1), device("browser", "webpush", 3)
	for _, d := range []*trial.Device{b, a, w} {
		if err := s.PutDevice(ctx(t), "s1", "p1", d); err != nil {
			t.Fatal(err)
		}
	}
	other := device("phone-a", "fcm", 4)
	if err := s.PutDevice(ctx(t), "s1", "p2", other); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "devices by id", mustDevices(t, s, "s1", "p1"), []*trial.Device{w, a, b})
	// Replaced by id.
	a2 := device("phone-a", "fcm", 5)
	a2.Token = "rotated-token"
	if err := s.PutDevice(ctx(t), "s1", "p1", a2); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "devices after a replacement", mustDevices(t, s, "s1", "p1"), []*trial.Device{w, a2, b})
	if err := s.DeleteDevice(ctx(t), "s1", "p1", "browser"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice(ctx(t), "s1", "p1", "browser"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("deleting a deleted device: %v, want ErrNotFound", err)
	}
	if err := s.DeleteDevice(ctx(t), "s1", "nobody", "browser"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("deleting a device of an unknown participant: %v, want ErrNotFound", err)
	}
	sameJSON(t, "devices after a deletion", mustDevices(t, s, "s1", "p1"), []*trial.Device{a2, b})
	sameJSON(t, "the other participant's devices", mustDevices(t, s, "s1", "p2"), []*trial.Device{other})
}

func (h *harness) testUpdateParticipant(t *testing.T) {
	s := h.store(t)
	if _, err := s.UpdateParticipant(ctx(t), "s1", "nobody", trial.ParticipantUpdate{Timezone: ptr("UTC")}); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("UpdateParticipant of an unknown participant: %v, want ErrNotFound", err)
	}
	want := mustEnroll(t, s, participant("s1", "p1", "a"))
	other := mustEnroll(t, s, participant("s1", "p2", "b"))
	check := func(what string, want *trial.Participant) {
		t.Helper()
		got, err := s.Participant(ctx(t), "s1", "p1")
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, what+": Participant", got, want)
		sameJSON(t, what+": Snapshot", mustSnapshot(t, s, "s1", "p1", "").Participant, want)
		ps, err := s.Participants(ctx(t), "s1")
		if err != nil || len(ps) != 2 {
			t.Fatalf("Participants: %v, %v", ps, err)
		}
		sameJSON(t, what+": Participants", ps, []*trial.Participant{want, other})
	}
	steps := []trial.ParticipantUpdate{
		{Timezone: ptr("America/New_York")},
		{Region: ptr("US"), Locale: ptr("en-US")},
		{},
		{Timezone: ptr("Europe/Berlin"), Locale: ptr("de-DE")},
		{Region: ptr("")},
	}
	for i, u := range steps {
		next := *want
		if u.Timezone != nil {
			next.Timezone = *u.Timezone
		}
		if u.Region != nil {
			next.Region = *u.Region
		}
		if u.Locale != nil {
			next.Locale = *u.Locale
		}
		got, err := s.UpdateParticipant(ctx(t), "s1", "p1", u)
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		sameJSON(t, "updated participant", got, &next)
		check("after update "+string(rune('0'+i)), &next)
		want = &next
	}
}

// testClockDurability: the schedule, claims, deliveries, devices and
// participant updates survive a reopen.
func (h *harness) testClockDurability(t *testing.T) {
	if h.reopen == nil {
		t.Skip("store is not durable across reopen")
	}
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	dl := delivery("s1", "p1", "d1", at(10))
	if err := commitWithDelivery(t, s, "p1", "d1", 10, dl); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p1", "p2"} {
		if err := s.Touch(ctx(t), "s1", p, at(5), at(1)); err != nil {
			t.Fatal(err)
		}
	}
	now, lease := at(20), time.Hour
	claimed := mustClaim(t, s, now, lease, 1)
	if len(claimed) != 1 {
		t.Fatalf("claimed %v", dueNames(claimed))
	}
	if ds := mustClaimDeliveries(t, s, now, lease, 10); len(ds) != 1 {
		t.Fatalf("claimed deliveries %v", deliveryIDs(ds))
	}
	dev := device("phone", "fcm", 3)
	if err := s.PutDevice(ctx(t), "s1", "p1", dev); err != nil {
		t.Fatal(err)
	}
	updated, err := s.UpdateParticipant(ctx(t), "s1", "p1", trial.ParticipantUpdate{Timezone: ptr("Asia/Tokyo"), Region: ptr("JP"), Locale: ptr("ja-JP")})
	if err != nil {
		t.Fatal(err)
	}

	h.reopenStore(t, s)

	// The claims hold: one entry and the delivery are leased, the other
	// entry is due.
	ds := mustClaim(t, s, now, lease, 10)
	if len(ds) != 1 || ds[0].Participant == claimed[0].Participant {
		t.Fatalf("after reopen claimed %v, want only the entry not claimed before (%s claimed)", dueNames(ds), claimed[0].Participant)
	}
	if ds := mustClaimDeliveries(t, s, now, lease, 10); len(ds) != 0 {
		t.Fatalf("after reopen claimed the leased delivery %v", deliveryIDs(ds))
	}
	if e := mustEntry(t, s, "s1", claimed[0].Participant); !e.At.Equal(now.Add(lease)) || !e.From.Equal(at(1)) {
		t.Errorf("claimed entry after reopen %+v", e)
	}
	if got := mustDelivery(t, s, "s1", "p1", "d1"); got.ID != dl.ID || got.Status != trial.DeliveryQueued {
		t.Errorf("delivery after reopen %+v", got)
	}
	sameJSON(t, "devices after reopen", mustDevices(t, s, "s1", "p1"), []*trial.Device{dev})
	got, err := s.Participant(ctx(t), "s1", "p1")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "updated participant after reopen", got, updated)
}
