package fcm_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/fcm"
	"github.com/jitai/jitai/engine/trial"
)

const (
	project     = "demo-project"
	clientEmail = "jitai-push@demo-project.iam.gserviceaccount.com"
	accessToken = "ya29.local-test-token"
)

// Registration tokens the fake FCM answers by (long, like real ones, so
// that a leak into an error message is easy to spot).
var (
	tokOK      = "tokOK:" + strings.Repeat("a", 140)
	tokOK2     = "tokOK2:" + strings.Repeat("b", 140)
	tokUnreg   = "tokUnreg:" + strings.Repeat("c", 140)
	tokInvalid = "tokInvalid:" + strings.Repeat("d", 140)
	tokBusy    = "tokBusy:" + strings.Repeat("e", 140)
)

// google is a local OAuth 2.0 token endpoint (the service account's
// token_uri) and FCM HTTP v1 endpoint, checking what they are sent.
type google struct {
	t        *testing.T
	key      *rsa.PrivateKey
	srv      *httptest.Server
	tokens   atomic.Int32
	tokenErr atomic.Bool
	mu       sync.Mutex
	sent     []map[string]any
}

func newGoogle(t *testing.T) *google {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	g := &google{t: t, key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", g.token)
	mux.HandleFunc("POST /v1/projects/{project}/{send}", g.send)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

// credentials is a service-account key file whose token_uri is local.
func (g *google) credentials(t *testing.T) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(g.key)
	if err != nil {
		t.Fatal(err)
	}
	sa := map[string]string{
		"type":           "service_account",
		"project_id":     project,
		"private_key_id": "kid-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   clientEmail,
		"client_id":      "1234567890",
		"token_uri":      g.srv.URL + "/token",
	}
	b, _ := json.Marshal(sa)
	path := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// token is the JWT-bearer grant (RFC 7523) of a Google service account.
func (g *google) token(w http.ResponseWriter, r *http.Request) {
	t := g.t
	g.tokens.Add(1)
	if g.tokenErr.Load() {
		http.Error(w, `{"error":"backend_error"}`, http.StatusServiceUnavailable)
		return
	}
	if err := r.ParseForm(); err != nil {
		t.Error(err)
	}
	if gt := r.PostForm.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		t.Errorf("grant_type %q", gt)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(tok *jwt.Token) (any, error) {
		return &g.key.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		t.Errorf("assertion: %v", err)
	} else {
		if tok.Header["kid"] != "kid-1" {
			t.Errorf("assertion kid %v", tok.Header["kid"])
		}
		if claims["iss"] != clientEmail || claims["scope"] != fcm.Scope || claims["aud"] != g.srv.URL+"/token" {
			t.Errorf("assertion claims %v", claims)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, accessToken)
}

func (g *google) send(w http.ResponseWriter, r *http.Request) {
	t := g.t
	if r.PathValue("project") != project || r.PathValue("send") != "messages:send" {
		t.Errorf("path %s", r.URL.Path)
	}
	if a := r.Header.Get("Authorization"); a != "Bearer "+accessToken {
		t.Errorf("authorization %q", a)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content-type %q", ct)
	}
	var body struct {
		Message map[string]any `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.sent = append(g.sent, body.Message)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fcmError := func(status int, rpc, code, msg string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"status":%q,"details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":%q}]}}`,
			status, msg, rpc, code)
	}
	switch body.Message["token"] {
	case tokOK, tokOK2:
		fmt.Fprintf(w, `{"name":"projects/%s/messages/0:1500415314455276%%31bd1c96"}`, project)
	case tokUnreg:
		fcmError(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
	case tokInvalid:
		fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token")
	case tokBusy:
		fcmError(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
	default:
		t.Errorf("unexpected token %v", body.Message["token"])
		w.WriteHeader(500)
	}
}

func (g *google) messages() []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]any(nil), g.sent...)
}

var now = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

func newChannel(t *testing.T, g *google) *fcm.Channel {
	t.Helper()
	ch, err := fcm.New(fcm.Config{
		CredentialsFile: g.credentials(t),
		Endpoint:        g.srv.URL,
		Now:             func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func message(tokens ...string) *delivery.Message {
	m := &delivery.Message{
		ID: "dlv-1", Study: "walk", Participant: "p-1", DecisionID: "dec-1", DecisionPoint: "morning",
		Trigger: "scheduled", Action: "deliver", Time: now, ExpiresAt: now.Add(time.Hour),
		Title: "Time for a walk", Body: "Ten minutes outside?",
		Answer: json.RawMessage(`{"decision_id":"dec-1"}`),
		Devices: []*trial.Device{
			{ID: "iphone", Platform: "apns", Token: "apns-token"},
			{ID: "browser", Platform: "webpush", Token: "https://push.example/x"},
		},
	}
	for i, tok := range tokens {
		m.Devices = append(m.Devices, &trial.Device{ID: fmt.Sprintf("android-%d", i), Platform: "fcm", Token: tok})
	}
	return m
}

func TestSendShape(t *testing.T) {
	g := newGoogle(t)
	ch := newChannel(t, g)
	if ch.Name() != "fcm" {
		t.Errorf("name %q", ch.Name())
	}
	res, err := ch.Send(context.Background(), message(tokOK))
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 1 || res.MessageID != "projects/demo-project/messages/0:1500415314455276%31bd1c96" {
		t.Errorf("result %+v", res)
	}
	sent := g.messages()
	if len(sent) != 1 {
		t.Fatalf("%d requests, want one (only the fcm device)", len(sent))
	}
	msg, _ := json.Marshal(sent[0])
	var got struct {
		Token        string            `json:"token"`
		Notification map[string]string `json:"notification"`
		Data         map[string]string `json:"data"`
		Android      map[string]string `json:"android"`
		APNS         struct {
			Headers map[string]string `json:"headers"`
		} `json:"apns"`
	}
	if err := json.Unmarshal(msg, &got); err != nil {
		t.Fatalf("the message does not have the v1 shape (data values must be strings): %v\n%s", err, msg)
	}
	if got.Token != tokOK {
		t.Error("token")
	}
	if got.Notification["title"] != "Time for a walk" || got.Notification["body"] != "Ten minutes outside?" {
		t.Errorf("notification %v", got.Notification)
	}
	wantData := map[string]string{"delivery_id": "dlv-1", "decision_id": "dec-1", "study": "walk",
		"decision_point": "morning", "action": "deliver", "trigger": "scheduled"}
	if fmt.Sprint(got.Data) != fmt.Sprint(wantData) {
		t.Errorf("data %v, want %v", got.Data, wantData)
	}
	if got.Android["ttl"] != "3600s" || got.Android["collapse_key"] != "dlv-1" || got.Android["priority"] != "high" {
		t.Errorf("android %v", got.Android)
	}
	if got.APNS.Headers["apns-expiration"] != fmt.Sprint(now.Add(time.Hour).Unix()) || got.APNS.Headers["apns-collapse-id"] != "dlv-1" {
		t.Errorf("apns %v", got.APNS.Headers)
	}
	// A second send reuses the access token.
	if _, err := ch.Send(context.Background(), message(tokOK)); err != nil {
		t.Fatal(err)
	}
	if n := g.tokens.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestPerTokenOutcomes(t *testing.T) {
	g := newGoogle(t)
	ch := newChannel(t, g)
	for _, tc := range []struct {
		name      string
		tokens    []string
		sent      int
		permanent bool
	}{
		{"one of two unknown", []string{tokUnreg, tokOK}, 1, false},
		{"two delivered", []string{tokOK, tokOK2}, 2, false},
		{"all unknown or invalid", []string{tokUnreg, tokInvalid}, 0, true},
		{"unknown and busy", []string{tokUnreg, tokBusy}, 0, false},
		{"busy", []string{tokBusy}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ch.Send(context.Background(), message(tc.tokens...))
			if tc.sent > 0 {
				if err != nil || res.Devices != tc.sent {
					t.Fatalf("got %+v, %v; want %d devices", res, err, tc.sent)
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
				if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), tok[:20]) {
					t.Errorf("the error names a token: %v", err)
				}
			}
			if !strings.Contains(err.Error(), "android-0") {
				t.Errorf("the error does not name the device: %v", err)
			}
		})
	}
}

func TestNoDeviceAndExpired(t *testing.T) {
	g := newGoogle(t)
	ch := newChannel(t, g)
	if _, err := ch.Send(context.Background(), message()); !errors.Is(err, delivery.ErrNoDevice) {
		t.Errorf("no fcm device: %v", err)
	}
	m := message(tokOK)
	m.ExpiresAt = now
	if _, err := ch.Send(context.Background(), m); !delivery.IsPermanent(err) {
		t.Errorf("expired: %v", err)
	}
	if len(g.messages()) != 0 {
		t.Error("something was sent")
	}
}

func TestTokenEndpointDown(t *testing.T) {
	g := newGoogle(t)
	ch := newChannel(t, g)
	g.tokenErr.Store(true)
	_, err := ch.Send(context.Background(), message(tokOK))
	if err == nil || delivery.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	g.tokenErr.Store(false)
	if _, err := ch.Send(context.Background(), message(tokOK)); err != nil {
		t.Fatalf("after the token endpoint came back: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	g := newGoogle(t)
	path := g.credentials(t)
	key, _ := os.ReadFile(path)
	if _, err := fcm.New(fcm.Config{CredentialsJSON: key}); err != nil {
		t.Errorf("project id from the key: %v", err)
	}
	user := []byte(`{"type":"authorized_user","client_email":"x","private_key":"y","project_id":"p"}`)
	for name, cfg := range map[string]fcm.Config{
		"nothing":        {},
		"missing file":   {CredentialsFile: filepath.Join(t.TempDir(), "none.json")},
		"not json":       {CredentialsJSON: []byte("nope")},
		"not an account": {CredentialsJSON: user},
		"bad project":    {CredentialsJSON: key, ProjectID: "a/b"},
	} {
		_, err := fcm.New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
}
