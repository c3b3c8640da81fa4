package apns_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/apns"
	"github.com/jitai/jitai/engine/trial"
)

const (
	keyID  = "ABC123DEFG"
	teamID = "TEAM456XYZ"
	topic  = "org.example.walk"
)

// Device tokens (hex) the fake APNs answers by.
var (
	tokOK      = strings.Repeat("0a", 32)
	tokOK2     = strings.Repeat("0b", 32)
	tokGone    = strings.Repeat("1c", 32)
	tokBad     = strings.Repeat("2d", 32)
	tokBusy    = strings.Repeat("3e", 32)
	tokExpired = strings.Repeat("4f", 32)
	tokTopic   = strings.Repeat("5a", 32)
)

var (
	now       = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	uuidShape = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

type request struct {
	token  string
	header http.Header
	body   map[string]any
}

// fakeAPNs is a local HTTP/2 (TLS) server that checks requests as APNs
// documents them and answers by device token.
type fakeAPNs struct {
	t      *testing.T
	pub    *ecdsa.PublicKey
	srv    *httptest.Server
	mu     sync.Mutex
	got    []request
	before int64 // a lower bound of the provider token's iat
}

func newFake(t *testing.T, pub *ecdsa.PublicKey) *fakeAPNs {
	f := &fakeAPNs{t: t, pub: pub, before: time.Now().Unix()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /3/device/{token}", f.serve)
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.EnableHTTP2 = true
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPNs) serve(w http.ResponseWriter, r *http.Request) {
	t := f.t
	if r.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", r.Proto)
	}
	f.checkJWT(r.Header.Get("Authorization"))
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		t.Errorf("payload: %v", err)
	}
	tok := r.PathValue("token")
	f.mu.Lock()
	f.got = append(f.got, request{tok, r.Header.Clone(), body})
	f.mu.Unlock()
	fail := func(status int, reason string) {
		w.Header().Set("apns-id", r.Header.Get("apns-id"))
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"reason":%q}`, reason)
	}
	switch tok {
	case tokOK, tokOK2:
		w.Header().Set("apns-id", r.Header.Get("apns-id"))
		w.Header().Set("apns-unique-id", "a8f2e4c1-0000-4000-8000-000000000001")
	case tokGone:
		w.Header().Set("apns-id", r.Header.Get("apns-id"))
		w.WriteHeader(http.StatusGone)
		fmt.Fprintf(w, `{"reason":"Unregistered","timestamp":%d}`, now.UnixMilli())
	case tokBad:
		fail(http.StatusBadRequest, "BadDeviceToken")
	case tokTopic:
		fail(http.StatusBadRequest, "BadTopic")
	case tokBusy:
		fail(http.StatusServiceUnavailable, "ServiceUnavailable")
	case tokExpired:
		fail(http.StatusForbidden, "ExpiredProviderToken")
	default:
		t.Errorf("unexpected token %s", tok)
		fail(http.StatusBadRequest, "BadDeviceToken")
	}
}

// checkJWT verifies the provider token: ES256 with the key id, signed by
// the .p8 key, iss the team id, iat now.
func (f *fakeAPNs) checkJWT(auth string) {
	t := f.t
	bearer, ok := strings.CutPrefix(auth, "bearer ")
	if !ok {
		t.Errorf("authorization %q", auth)
		return
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(bearer, claims, func(*jwt.Token) (any, error) { return f.pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		t.Errorf("provider token: %v", err)
		return
	}
	if tok.Header["alg"] != "ES256" || tok.Header["kid"] != keyID {
		t.Errorf("provider token header %v", tok.Header)
	}
	if claims["iss"] != teamID {
		t.Errorf("iss %v", claims["iss"])
	}
	iat, ok := claims["iat"].(float64)
	if !ok || int64(iat) < f.before || int64(iat) > time.Now().Unix() {
		t.Errorf("iat %v, want the time of the send", claims["iat"])
	}
}

func (f *fakeAPNs) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.got...)
}

func newChannel(t *testing.T) (*apns.Channel, *fakeAPNs) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "AuthKey_"+keyID+".p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFake(t, &key.PublicKey)
	ch, err := apns.New(apns.Config{
		Topic: topic, KeyFile: path, KeyID: keyID, TeamID: teamID,
		Host: f.srv.URL, HTTPClient: f.srv.Client(),
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch, f
}

func message(tokens ...string) *delivery.Message {
	m := &delivery.Message{
		ID: "dlv-1", Study: "walk", Participant: "p-1", DecisionID: "dec-1", DecisionPoint: "morning",
		Trigger: "scheduled", Action: "deliver", Time: now, ExpiresAt: now.Add(time.Hour),
		Title: "Time for a walk", Body: "Ten minutes outside?",
		Devices: []*trial.Device{{ID: "pixel", Platform: "fcm", Token: "fcm-token"}},
	}
	for i, tok := range tokens {
		m.Devices = append(m.Devices, &trial.Device{ID: fmt.Sprintf("iphone-%d", i), Platform: "apns", Token: tok})
	}
	return m
}

func TestSendShape(t *testing.T) {
	ch, f := newChannel(t)
	if ch.Name() != "apns" {
		t.Errorf("name %q", ch.Name())
	}
	m := message(tokOK)
	res, err := ch.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	got := f.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want one (only the apns device)", len(got))
	}
	r := got[0]
	if r.token != tokOK {
		t.Errorf("path token %s", r.token)
	}
	apnsID := r.header.Get("apns-id")
	if !uuidShape.MatchString(apnsID) || res.MessageID != apnsID || res.Devices != 1 {
		t.Errorf("apns-id %q, result %+v", apnsID, res)
	}
	for k, want := range map[string]string{
		"apns-topic":       topic,
		"apns-push-type":   "alert",
		"apns-priority":    "10",
		"apns-expiration":  fmt.Sprint(m.ExpiresAt.Unix()),
		"apns-collapse-id": "dlv-1",
	} {
		if v := r.header.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	aps, _ := r.body["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	if alert["title"] != m.Title || alert["body"] != m.Body {
		t.Errorf("aps %v", aps)
	}
	for k, want := range map[string]string{"delivery_id": "dlv-1", "decision_id": "dec-1", "study": "walk",
		"decision_point": "morning", "action": "deliver", "trigger": "scheduled"} {
		if r.body[k] != want {
			t.Errorf("payload %s = %v, want %q", k, r.body[k], want)
		}
	}
	if _, ok := r.body["participant"]; ok {
		t.Error("the participant id went to Apple")
	}
	// A retry carries the same apns-id.
	if _, err := ch.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if again := f.requests()[1].header.Get("apns-id"); again != apnsID {
		t.Errorf("apns-id %q on the retry, %q before", again, apnsID)
	}
}

func TestApnsIDKeepsUUIDs(t *testing.T) {
	id := "0f8fad5b-d9cb-469f-a165-70867728950e"
	if got := apns.ApnsID(id); got != id {
		t.Errorf("ApnsID(%s) = %s", id, got)
	}
	if a, b := apns.ApnsID("x"), apns.ApnsID("y"); a == b || !uuidShape.MatchString(a) {
		t.Errorf("ApnsID: %s, %s", a, b)
	}
}

func TestPerDeviceOutcomes(t *testing.T) {
	ch, _ := newChannel(t)
	for _, tc := range []struct {
		name      string
		tokens    []string
		sent      int
		permanent bool
	}{
		{"one gone, one delivered", []string{tokGone, tokOK}, 1, false},
		{"two delivered", []string{tokOK, tokOK2}, 2, false},
		{"gone and bad token", []string{tokGone, tokBad}, 0, true},
		{"not hex", []string{"not-a-token/../x"}, 0, true},
		{"bad topic", []string{tokTopic}, 0, true},
		{"gone and busy", []string{tokGone, tokBusy}, 0, false},
		{"provider token expired", []string{tokExpired}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ch.Send(context.Background(), message(tc.tokens...))
			if tc.sent > 0 {
				if err != nil || res.Devices != tc.sent {
					t.Fatalf("got %+v, %v", res, err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if delivery.IsPermanent(err) != tc.permanent {
				t.Errorf("%v: permanent = %v", err, !tc.permanent)
			}
			for _, tok := range tc.tokens {
				if strings.Contains(err.Error(), tok) {
					t.Errorf("the error names a token: %v", err)
				}
			}
		})
	}
}

func TestNetworkErrorRedacted(t *testing.T) {
	ch, f := newChannel(t)
	f.srv.Close()
	_, err := ch.Send(context.Background(), message(tokOK))
	if err == nil || delivery.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), tokOK) {
		t.Errorf("the error names the token: %v", err)
	}
}

func TestNoDeviceAndExpired(t *testing.T) {
	ch, f := newChannel(t)
	if _, err := ch.Send(context.Background(), message()); !errors.Is(err, delivery.ErrNoDevice) {
		t.Errorf("no apns device: %v", err)
	}
	m := message(tokOK)
	m.ExpiresAt = now.Add(-time.Second)
	if _, err := ch.Send(context.Background(), m); !delivery.IsPermanent(err) {
		t.Errorf("expired: %v", err)
	}
	if len(f.requests()) != 0 {
		t.Error("something was sent")
	}
}

func TestNewValidates(t *testing.T) {
	rsaPEM := []byte("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	good := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if _, err := apns.New(apns.Config{Topic: topic, KeyPEM: good, KeyID: keyID, TeamID: teamID, Environment: "development"}); err != nil {
		t.Errorf("valid: %v", err)
	}
	for name, cfg := range map[string]apns.Config{
		"no topic":     {KeyPEM: good, KeyID: keyID, TeamID: teamID},
		"no key id":    {Topic: topic, KeyPEM: good, TeamID: teamID},
		"no key":       {Topic: topic, KeyID: keyID, TeamID: teamID},
		"missing file": {Topic: topic, KeyFile: "/nonexistent/AuthKey.p8", KeyID: keyID, TeamID: teamID},
		"not a key":    {Topic: topic, KeyPEM: rsaPEM, KeyID: keyID, TeamID: teamID},
		"environment":  {Topic: topic, KeyPEM: good, KeyID: keyID, TeamID: teamID, Environment: "staging"},
		"http host":    {Topic: topic, KeyPEM: good, KeyID: keyID, TeamID: teamID, Host: "http://127.0.0.1:1"},
	} {
		if _, err := apns.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
