package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/webhook"
)

// The secret: "whsec_" + base64 of 32 bytes.
var secretKey = []byte("0123456789abcdef0123456789abcdef")

func secret() string { return "whsec_" + base64.StdEncoding.EncodeToString(secretKey) }

// fakeClock is an injected clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func message() *delivery.Message {
	return &delivery.Message{
		ID:            "dlv-01J9Z",
		Study:         "walk study",
		Participant:   "p-7f3a",
		DecisionID:    "dec-42",
		DecisionPoint: "morning",
		Trigger:       "scheduled",
		Time:          time.Date(2026, 12, 7, 8, 0, 0, 0, time.FixedZone("CET", 3600)),
		ExpiresAt:     time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC),
		Action:        "deliver",
		Title:         "Time for a walk",
		Body:          "Ten minutes outside?",
		Answer:        json.RawMessage(`{"decision_id":"dec-42","action":"deliver","option":{"id":"walk"}}`),
		Attempt:       1,
	}
}

// received is what the receiver saw of one request.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint that checks every request the way a
// Standard Webhooks + CloudEvents consumer would, and answers with the
// statuses it is given in turn (200 once they run out).
type receiver struct {
	t        *testing.T
	clock    *fakeClock
	mu       sync.Mutex
	statuses []int
	got      []received
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := rc.t
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, received{r.Header.Clone(), body})
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	rc.mu.Unlock()

	if r.Method != http.MethodPost {
		t.Errorf("method %s", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Errorf("content-type %q", ct)
	}
	// The Standard Webhooks reference algorithm, by hand...
	id, ts, sig := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	mac := hmac.New(sha256.New, secretKey)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if sig != want {
		t.Errorf("webhook-signature %q, want %q", sig, want)
	}
	if wantTS := fmt.Sprint(rc.clock.Now().Unix()); ts != wantTS {
		t.Errorf("webhook-timestamp %q, want %q (the injected clock)", ts, wantTS)
	}
	// ... by the reference library ...
	wh, err := standardwebhooks.NewWebhook(secret())
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.VerifyIgnoringTimestamp(body, r.Header); err != nil {
		t.Errorf("reference library: %v", err)
	}
	// ... and by the package's own receiver helper.
	if err := webhook.Verify(secret(), r.Header, body, rc.clock.Now(), time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusOK {
		fmt.Fprintf(w, `{"id":"rcv-%d"}`, len(rc.got))
	}
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func newChannel(t *testing.T, url string, clock *fakeClock) *webhook.Channel {
	t.Helper()
	ch, err := webhook.New(webhook.Config{URL: url, Secret: secret(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestSendSignedCloudEvent(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 7, 7, 0, 5, 0, time.UTC)}
	rc := &receiver{t: t, clock: clock}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ch := newChannel(t, srv.URL+"/hooks/jitai", clock)
	if ch.Name() != "webhook" {
		t.Errorf("name %q", ch.Name())
	}
	m := message()
	res, err := ch.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if res.MessageID != "rcv-1" {
		t.Errorf("message id %q, want the receiver's rcv-1", res.MessageID)
	}
	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	if id := got[0].header.Get("webhook-id"); id != m.ID {
		t.Errorf("webhook-id %q, want the delivery id %q", id, m.ID)
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(got[0].body, &ev); err != nil {
		t.Fatal(err)
	}
	wantAttrs := map[string]string{
		"specversion":     "1.0",
		"id":              m.ID,
		"source":          "/jitai/studies/walk%20study",
		"type":            "org.jitai.decision.v1",
		"subject":         "p-7f3a",
		"datacontenttype": "application/json",
	}
	for k, want := range wantAttrs {
		var v string
		if err := json.Unmarshal(ev[k], &v); err != nil || v != want {
			t.Errorf("%s = %s, want %q", k, ev[k], want)
		}
	}
	var ts string
	_ = json.Unmarshal(ev["time"], &ts)
	if tm, err := time.Parse(time.RFC3339Nano, ts); err != nil || !tm.Equal(m.Time) {
		t.Errorf("time %q, want %v", ts, m.Time)
	}
	var data, answer any
	_ = json.Unmarshal(ev["data"], &data)
	_ = json.Unmarshal(m.Answer, &answer)
	if fmt.Sprint(data) != fmt.Sprint(answer) {
		t.Errorf("data %s, want the answer %s", ev["data"], m.Answer)
	}
	if _, ok := ev["data_base64"]; ok {
		t.Error("data_base64 present; JSON data goes in data")
	}
}

// A receiver that is down (503) and then up: the first attempt is a
// retryable failure, the second is sent with the same webhook-id and a new
// timestamp and signature.
func TestReceiverDownThenUp(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)}
	rc := &receiver{t: t, clock: clock, statuses: []int{http.StatusServiceUnavailable}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	ch := newChannel(t, srv.URL, clock)
	m := message()
	_, err := ch.Send(context.Background(), m)
	if err == nil || delivery.IsPermanent(err) {
		t.Fatalf("first attempt: %v, want a retryable error", err)
	}
	clock.Add(30 * time.Second)
	m.Attempt = 2
	res, err := ch.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if res.MessageID != "rcv-2" {
		t.Errorf("message id %q", res.MessageID)
	}
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	if a, b := got[0].header.Get("webhook-id"), got[1].header.Get("webhook-id"); a != b || a != m.ID {
		t.Errorf("webhook-ids %q, %q: want %q on both", a, b, m.ID)
	}
	if a, b := got[0].header.Get("webhook-timestamp"), got[1].header.Get("webhook-timestamp"); a == b {
		t.Errorf("the timestamp %s was reused", a)
	}
	var e0, e1 struct{ ID string }
	_ = json.Unmarshal(got[0].body, &e0)
	_ = json.Unmarshal(got[1].body, &e1)
	if e0.ID != m.ID || e1.ID != m.ID {
		t.Errorf("event ids %q, %q", e0.ID, e1.ID)
	}
}

// A receiver that cannot be reached: retryable, and the URL (which may
// carry a token in its query) is not in the error.
func TestNetworkErrorRetryableAndRedacted(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hook?token=sekrit-query-token"
	srv.Close()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	ch := newChannel(t, url, clock)
	_, err := ch.Send(context.Background(), message())
	if err == nil || delivery.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "sekrit-query-token") || strings.Contains(err.Error(), srv.URL) {
		t.Errorf("the error names the URL: %v", err)
	}
}

func TestStatusClasses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{400, true}, {404, true}, {410, true}, {413, true}, {422, true},
		{401, false}, {408, false}, {429, false}, {500, false}, {502, false}, {503, false},
		{302, false}, // redirects are not followed
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status == 302 {
					http.Redirect(w, r, "/elsewhere", tc.status)
					return
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			ch := newChannel(t, srv.URL, &fakeClock{t: time.Unix(1_800_000_000, 0)})
			_, err := ch.Send(context.Background(), message())
			if err == nil {
				t.Fatal("no error")
			}
			if delivery.IsPermanent(err) != tc.permanent {
				t.Errorf("%v: permanent = %v, want %v", err, delivery.IsPermanent(err), tc.permanent)
			}
		})
	}
}

func TestMessageIDFallsBackToWebhookID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ch := newChannel(t, srv.URL, &fakeClock{t: time.Unix(1_800_000_000, 0)})
	res, err := ch.Send(context.Background(), message())
	if err != nil || res.MessageID != message().ID {
		t.Errorf("got %+v, %v; want the webhook id", res, err)
	}
}

func TestVerify(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)}
	ch := newChannel(t, "https://example.org/hook", clock)
	body, err := ch.Event(message())
	if err != nil {
		t.Fatal(err)
	}
	wh, _ := standardwebhooks.NewWebhook(secret())
	sig, _ := wh.Sign("dlv-01J9Z", clock.Now(), body)
	h := http.Header{}
	h.Set("webhook-id", "dlv-01J9Z")
	h.Set("webhook-timestamp", fmt.Sprint(clock.Now().Unix()))
	h.Set("webhook-signature", "v1,bm90IGl0 "+sig) // several signatures: any may match
	now := clock.Now()
	if err := webhook.Verify(secret(), h, body, now, 0); err != nil {
		t.Fatalf("valid: %v", err)
	}
	if err := webhook.Verify(secret(), h, append([]byte(" "), body...), now, 0); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("tampered body: %v", err)
	}
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret of 32 bytes......"))
	if err := webhook.Verify(other, h, body, now, 0); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("wrong secret: %v", err)
	}
	if err := webhook.Verify(secret(), h, body, now.Add(6*time.Minute), 0); !errors.Is(err, webhook.ErrTooOld) {
		t.Errorf("old: %v", err)
	}
	if err := webhook.Verify(secret(), h, body, now.Add(-time.Minute), 30*time.Second); !errors.Is(err, webhook.ErrTooNew) {
		t.Errorf("from the future: %v", err)
	}
	h.Del("webhook-id")
	if err := webhook.Verify(secret(), h, body, now, 0); !errors.Is(err, standardwebhooks.ErrRequiredHeaders) {
		t.Errorf("no id: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	short := "whsec_" + base64.StdEncoding.EncodeToString([]byte("too short"))
	for name, cfg := range map[string]webhook.Config{
		"no url":      {Secret: secret()},
		"relative":    {URL: "/hook", Secret: secret()},
		"ftp":         {URL: "ftp://example.org/", Secret: secret()},
		"no prefix":   {URL: "https://example.org/", Secret: base64.StdEncoding.EncodeToString(secretKey)},
		"not base64":  {URL: "https://example.org/", Secret: "whsec_!!!!"},
		"short":       {URL: "https://example.org/", Secret: short},
		"empty":       {URL: "https://example.org/"},
		"only prefix": {URL: "https://example.org/", Secret: "whsec_"},
	} {
		_, err := webhook.New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if cfg.Secret != "" && len(cfg.Secret) > 6 && strings.Contains(err.Error(), cfg.Secret[6:]) {
			t.Errorf("%s: the error contains the secret: %v", name, err)
		}
	}
}

func TestEventRefusesBadAnswer(t *testing.T) {
	ch := newChannel(t, "https://example.org/hook", &fakeClock{t: time.Unix(1_800_000_000, 0)})
	m := message()
	m.Answer = json.RawMessage(`{"broken"`)
	if _, err := ch.Send(context.Background(), m); !delivery.IsPermanent(err) {
		t.Errorf("got %v, want a permanent error", err)
	}
}
