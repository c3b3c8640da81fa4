package webpush_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
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

	webpushgo "github.com/SherClockHolmes/webpush-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/webpush"
	"github.com/jitai/jitai/engine/trial"
)

var now = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

const contact = "mailto:research@example.org"

var b64 = base64.RawURLEncoding

// browser is one push subscription: the user agent's key pair and auth
// secret, so that the test can decrypt what it is sent.
type browser struct {
	key  *ecdh.PrivateKey
	auth []byte
}

func newBrowser(t *testing.T) *browser {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return &browser{key: key, auth: auth}
}

func (b *browser) device(id, endpoint string) *trial.Device {
	return &trial.Device{ID: id, Platform: "webpush", Token: endpoint,
		P256DH: b64.EncodeToString(b.key.PublicKey().Bytes()), Auth: b64.EncodeToString(b.auth)}
}

// decrypt reverses RFC 8291 (aes128gcm, RFC 8188) with the subscription's
// private key and auth secret.
func (b *browser) decrypt(body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("short body")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("keyid length %d, want 65 (an uncompressed P-256 point)", idlen)
	}
	asPublic, ciphertext := body[21:21+idlen], body[21+idlen:]
	if rs < 18 || len(ciphertext) > int(rs) {
		return nil, fmt.Errorf("record size %d, ciphertext %d: not one record", rs, len(ciphertext))
	}
	as, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, err
	}
	secret, err := b.key.ECDH(as)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), b.key.PublicKey().Bytes()...), asPublic...)
	ikm, err := hkdf.Key(sha256.New, secret, b.auth, string(info), 32)
	if err != nil {
		return nil, err
	}
	cek, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, err
	}
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != 0x02 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}

type pushed struct {
	path   string
	header http.Header
	plain  []byte
}

// pushService is a local push service (TLS) that checks requests as RFC
// 8030/8291/8292 describe them, decrypts them, and answers by path.
type pushService struct {
	t        *testing.T
	srv      *httptest.Server
	vapidPub string
	browsers map[string]*browser
	mu       sync.Mutex
	got      []pushed
}

func newPushService(t *testing.T, vapidPub string) *pushService {
	p := &pushService{t: t, vapidPub: vapidPub, browsers: map[string]*browser{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /push/{id}", p.serve)
	p.srv = httptest.NewTLSServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// subscribe makes a subscription whose endpoint answers with status.
func (p *pushService) subscribe(t *testing.T, devID string, status int) *trial.Device {
	b := newBrowser(t)
	id := fmt.Sprintf("%s-%d-%s", devID, status, b64.EncodeToString(b.auth))
	p.mu.Lock()
	p.browsers[id] = b
	p.mu.Unlock()
	return b.device(devID, p.srv.URL+"/push/"+id)
}

func (p *pushService) serve(w http.ResponseWriter, r *http.Request) {
	t := p.t
	id := r.PathValue("id")
	p.mu.Lock()
	b := p.browsers[id]
	p.mu.Unlock()
	if b == nil {
		t.Errorf("unknown subscription %s", id)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	p.checkVAPID(r.Header.Get("Authorization"))
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		t.Errorf("content-encoding %q", ce)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("content-type %q", ct)
	}
	body, _ := io.ReadAll(r.Body)
	plain, err := b.decrypt(body)
	if err != nil {
		t.Errorf("decrypt: %v", err)
	}
	p.mu.Lock()
	p.got = append(p.got, pushed{r.URL.Path, r.Header.Clone(), plain})
	p.mu.Unlock()
	var status int
	_, _ = fmt.Sscanf(id[strings.Index(id, "-")+1:], "%d", &status)
	if status == http.StatusCreated {
		w.Header().Set("Location", p.srv.URL+"/message/m-"+fmt.Sprint(len(p.got)))
	}
	w.WriteHeader(status)
}

// checkVAPID verifies "vapid t=<JWT>, k=<public key>" (RFC 8292): k is the
// application server key, t an ES256 JWT signed by it for this origin.
func (p *pushService) checkVAPID(auth string) {
	t := p.t
	rest, ok := strings.CutPrefix(auth, "vapid ")
	if !ok {
		t.Errorf("authorization %q, want the vapid scheme", auth)
		return
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		params[k] = v
	}
	if params["k"] != p.vapidPub {
		t.Errorf("k=%s, want the VAPID public key %s", params["k"], p.vapidPub)
	}
	raw, err := b64.DecodeString(params["k"])
	if err != nil {
		t.Errorf("k: %v", err)
		return
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		t.Errorf("k: %v", err)
		return
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(params["t"], claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		t.Errorf("t: %v", err)
		return
	}
	if tok.Header["alg"] != "ES256" {
		t.Errorf("alg %v", tok.Header["alg"])
	}
	if claims["aud"] != p.srv.URL {
		t.Errorf("aud %v, want the endpoint's origin %s", claims["aud"], p.srv.URL)
	}
	if claims["sub"] != contact {
		t.Errorf("sub %v, want %s", claims["sub"], contact)
	}
	// RFC 8292: exp no more than 24 hours ahead.
	exp, _ := claims["exp"].(float64)
	if real := time.Now(); int64(exp) <= real.Unix() || int64(exp) > real.Add(24*time.Hour).Unix() {
		t.Errorf("exp %v", claims["exp"])
	}
}

func (p *pushService) pushes() []pushed {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pushed(nil), p.got...)
}

func newChannel(t *testing.T, cfg webpush.Config) (*webpush.Channel, *pushService) {
	t.Helper()
	priv, pub, err := webpushgo.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	p := newPushService(t, pub)
	cfg.VAPIDPublicKey, cfg.VAPIDPrivateKey, cfg.Subscriber = pub, priv, contact
	cfg.HTTPClient = p.srv.Client()
	cfg.Now = func() time.Time { return now }
	ch, err := webpush.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ch, p
}

func message(devs ...*trial.Device) *delivery.Message {
	return &delivery.Message{
		ID: "dlv-1", Study: "walk", Participant: "p-1", DecisionID: "dec-1", DecisionPoint: "morning",
		Trigger: "scheduled", Action: "deliver", Time: now, ExpiresAt: now.Add(90 * time.Minute),
		Title: "Time for a walk", Body: "Ten minutes outside?",
		Devices: append([]*trial.Device{{ID: "pixel", Platform: "fcm", Token: "fcm-token"}}, devs...),
	}
}

func TestSendEncryptedWithVAPID(t *testing.T) {
	ch, p := newChannel(t, webpush.Config{})
	if ch.Name() != "webpush" {
		t.Errorf("name %q", ch.Name())
	}
	res, err := ch.Send(context.Background(), message(p.subscribe(t, "laptop", 201)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices != 1 || res.MessageID != p.srv.URL+"/message/m-1" {
		t.Errorf("result %+v", res)
	}
	got := p.pushes()
	if len(got) != 1 {
		t.Fatalf("%d pushes, want one (only the webpush device)", len(got))
	}
	h := got[0].header
	for k, want := range map[string]string{"TTL": "5400", "Urgency": "normal", "Topic": "dlv-1"} {
		if v := h.Get(k); v != want {
			t.Errorf("%s: %q, want %q", k, v, want)
		}
	}
	var n map[string]string
	if err := json.Unmarshal(got[0].plain, &n); err != nil {
		t.Fatalf("payload %q: %v", got[0].plain, err)
	}
	want := map[string]string{"title": "Time for a walk", "body": "Ten minutes outside?", "delivery_id": "dlv-1",
		"decision_id": "dec-1", "study": "walk", "decision_point": "morning", "action": "deliver",
		"trigger": "scheduled", "expires_at": "2026-12-07T09:30:00Z"}
	if fmt.Sprint(n) != fmt.Sprint(want) {
		t.Errorf("payload %v, want %v", n, want)
	}
}

func TestSafetyIsUrgent(t *testing.T) {
	ch, p := newChannel(t, webpush.Config{})
	m := message(p.subscribe(t, "laptop", 201))
	m.Action = "safety"
	m.ExpiresAt = time.Time{}
	if _, err := ch.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	h := p.pushes()[0].header
	if h.Get("Urgency") != "high" || h.Get("TTL") != fmt.Sprint(int(webpush.DefaultTTL/time.Second)) {
		t.Errorf("urgency %q, TTL %q", h.Get("Urgency"), h.Get("TTL"))
	}
}

func TestPerSubscriptionOutcomes(t *testing.T) {
	ch, p := newChannel(t, webpush.Config{})
	for _, tc := range []struct {
		name      string
		statuses  []int
		sent      int
		permanent bool
	}{
		{"one gone, one delivered", []int{410, 201}, 1, false},
		{"gone and not found", []int{410, 404}, 0, true},
		{"too large", []int{413}, 0, true},
		{"gone and busy", []int{410, 503}, 0, false},
		{"rate limited", []int{429}, 0, false},
		{"redirected (not followed)", []int{307}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var devs []*trial.Device
			for i, s := range tc.statuses {
				devs = append(devs, p.subscribe(t, fmt.Sprintf("browser%d", i), s))
			}
			res, err := ch.Send(context.Background(), message(devs...))
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
			for _, d := range devs {
				if strings.Contains(err.Error(), d.Token) || strings.Contains(err.Error(), "/push/") {
					t.Errorf("the error names an endpoint: %v", err)
				}
			}
		})
	}
}

func TestEndpointsChecked(t *testing.T) {
	ch, p := newChannel(t, webpush.Config{AllowedHosts: []string{"push.example.org"}})
	d := p.subscribe(t, "laptop", 201) // 127.0.0.1: not allowed
	if _, err := ch.Send(context.Background(), message(d)); !delivery.IsPermanent(err) {
		t.Errorf("disallowed host: %v", err)
	}
	ch, p = newChannel(t, webpush.Config{})
	d = p.subscribe(t, "laptop", 201)
	d.Token = strings.Replace(d.Token, "https://", "http://", 1)
	if _, err := ch.Send(context.Background(), message(d)); !delivery.IsPermanent(err) {
		t.Errorf("http endpoint: %v", err)
	}
	d = p.subscribe(t, "laptop", 201)
	d.P256DH = b64.EncodeToString([]byte("not a point"))
	if _, err := ch.Send(context.Background(), message(d)); !delivery.IsPermanent(err) {
		t.Errorf("bad keys: %v", err)
	}
	if len(p.pushes()) != 0 {
		t.Error("something was sent")
	}
}

func TestNetworkErrorRedacted(t *testing.T) {
	ch, p := newChannel(t, webpush.Config{})
	d := p.subscribe(t, "laptop", 201)
	p.srv.Close()
	_, err := ch.Send(context.Background(), message(d))
	if err == nil || delivery.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), d.Token) || strings.Contains(err.Error(), "/push/") {
		t.Errorf("the error names the endpoint: %v", err)
	}
}

func TestNoDeviceAndExpired(t *testing.T) {
	ch, p := newChannel(t, webpush.Config{})
	if _, err := ch.Send(context.Background(), message()); !errors.Is(err, delivery.ErrNoDevice) {
		t.Errorf("no webpush device: %v", err)
	}
	m := message(p.subscribe(t, "laptop", 201))
	m.ExpiresAt = now
	if _, err := ch.Send(context.Background(), m); !delivery.IsPermanent(err) {
		t.Errorf("expired: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	priv, pub, _ := webpushgo.GenerateVAPIDKeys()
	_, otherPub, _ := webpushgo.GenerateVAPIDKeys()
	if _, err := webpush.New(webpush.Config{VAPIDPublicKey: pub, VAPIDPrivateKey: priv, Subscriber: "https://example.org/contact"}); err != nil {
		t.Errorf("valid: %v", err)
	}
	for name, cfg := range map[string]webpush.Config{
		"no keys":       {Subscriber: contact},
		"mismatch":      {VAPIDPublicKey: otherPub, VAPIDPrivateKey: priv, Subscriber: contact},
		"short private": {VAPIDPublicKey: pub, VAPIDPrivateKey: b64.EncodeToString([]byte("short")), Subscriber: contact},
		"no subscriber": {VAPIDPublicKey: pub, VAPIDPrivateKey: priv},
		"bare email":    {VAPIDPublicKey: pub, VAPIDPrivateKey: priv, Subscriber: "research@example.org"},
	} {
		_, err := webpush.New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), priv) {
			t.Errorf("%s: the error shows the private key", name)
		}
	}
}
