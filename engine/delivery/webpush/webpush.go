// Package webpush is the Web Push delivery channel: the message is
// encrypted for each subscription (RFC 8291, aes128gcm) and POSTed to the
// subscription's endpoint (RFC 8030) with VAPID authentication (RFC 8292),
// through github.com/SherClockHolmes/webpush-go.
//
// A device of platform webpush is a browser's PushSubscription: Token is
// its endpoint URL, P256DH and Auth its keys.
package webpush

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	webpushgo "github.com/SherClockHolmes/webpush-go"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/internal/push"
	"github.com/jitai/jitai/engine/trial"
)

// Name is the channel's name in study.yaml, and the device platform it
// sends to.
const Name = "webpush"

// Defaults.
const (
	DefaultTimeout = 10 * time.Second
	// DefaultTTL is the TTL of a message without ExpiresAt.
	DefaultTTL = 24 * time.Hour
	// MaxPayload is the largest plaintext one aes128gcm record of 4096
	// bytes holds (RFC 8291 section 4: 4096 - 16 tag - 86 header - 1
	// delimiter).
	MaxPayload = 3993
)

// Config configures the Web Push channel.
type Config struct {
	// VAPIDPublicKey is the application server's public key (the
	// applicationServerKey the app subscribed with): an uncompressed P-256
	// point, base64url. VAPIDPrivateKey is its private key (32 bytes,
	// base64url). The engine reads both from environment variables.
	VAPIDPublicKey  string
	VAPIDPrivateKey string
	// Subscriber is the contact in the VAPID token's sub claim: a mailto:
	// or https: URL.
	Subscriber string
	// AllowedHosts, when not empty, limits endpoints to these hosts and
	// their subdomains (e.g. fcm.googleapis.com, push.services.mozilla.com,
	// notify.windows.com, push.apple.com): a subscription is registered by
	// the app, and its endpoint is where the engine will POST.
	AllowedHosts []string
	// Timeout bounds one request (DefaultTimeout when zero).
	Timeout time.Duration
	// HTTPClient sends the requests (a default client when nil). Redirects
	// are never followed: an endpoint is where the app said, or nowhere.
	HTTPClient *http.Client
	// Now is the clock of TTL (time.Now when nil). The VAPID token's exp
	// is webpush-go's (twelve hours from time.Now).
	Now func() time.Time
}

// Channel is the Web Push channel. It is safe for concurrent use.
type Channel struct {
	public, private string
	subscriber      string
	allowed         []string
	timeout         time.Duration
	client          *http.Client
	now             func() time.Time
}

var _ delivery.Channel = (*Channel)(nil)

// New checks the VAPID key pair and returns the channel.
func New(cfg Config) (*Channel, error) {
	priv, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(cfg.VAPIDPrivateKey, "="))
	if err != nil || len(priv) != 32 {
		return nil, errors.New("webpush: the VAPID private key is not 32 bytes of base64url")
	}
	pub, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(cfg.VAPIDPublicKey, "="))
	if err != nil || len(pub) != 65 {
		return nil, errors.New("webpush: the VAPID public key is not an uncompressed P-256 point in base64url")
	}
	key, err := ecdh.P256().NewPrivateKey(priv)
	if err != nil {
		return nil, errors.New("webpush: the VAPID private key is not a P-256 key")
	}
	if !bytes.Equal(key.PublicKey().Bytes(), pub) {
		return nil, errors.New("webpush: the VAPID public key is not the private key's")
	}
	sub, err := subscriber(cfg.Subscriber)
	if err != nil {
		return nil, err
	}
	c := &Channel{
		public:     base64.RawURLEncoding.EncodeToString(pub),
		private:    base64.RawURLEncoding.EncodeToString(priv),
		subscriber: sub,
		timeout:    cfg.Timeout,
		now:        cfg.Now,
	}
	client := http.Client{}
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.client = &client
	for _, h := range cfg.AllowedHosts {
		c.allowed = append(c.allowed, strings.ToLower(strings.TrimPrefix(h, ".")))
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// subscriber is the sub claim as webpush-go wants it: it prefixes
// "mailto:" to anything that is not an https: URL, so a mailto: contact
// goes in without its scheme.
func subscriber(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, "mailto:") && strings.Contains(s, "@"):
		return strings.TrimPrefix(s, "mailto:"), nil
	case strings.HasPrefix(s, "https://") && len(s) > len("https://"):
		return s, nil
	}
	return "", errors.New("webpush: the subscriber must be a mailto: or https: URL")
}

// Name implements delivery.Channel.
func (c *Channel) Name() string { return Name }

// Notification is the push message's JSON: the app's service worker shows
// title and body and reads the ids.
type Notification struct {
	Title         string `json:"title,omitempty"`
	Body          string `json:"body,omitempty"`
	DeliveryID    string `json:"delivery_id"`
	DecisionID    string `json:"decision_id"`
	Study         string `json:"study"`
	DecisionPoint string `json:"decision_point,omitempty"`
	Action        string `json:"action,omitempty"`
	Trigger       string `json:"trigger,omitempty"`
	ExpiresAt     string `json:"expires_at,omitempty"`
}

// Send pushes m to each of the participant's Web Push subscriptions.
func (c *Channel) Send(ctx context.Context, m *delivery.Message) (delivery.Result, error) {
	devs := push.Devices(m.Devices, Name)
	if len(devs) == 0 {
		return delivery.Result{}, delivery.ErrNoDevice
	}
	ttl, ok := push.TTL(c.now(), m.ExpiresAt, DefaultTTL)
	if !ok {
		return delivery.Result{}, delivery.Permanent(fmt.Errorf("webpush: %w", push.ErrExpired))
	}
	n := Notification{
		Title: m.Title, Body: m.Body, DeliveryID: m.ID, DecisionID: m.DecisionID, Study: m.Study,
		DecisionPoint: m.DecisionPoint, Action: m.Action, Trigger: m.Trigger,
	}
	if !m.ExpiresAt.IsZero() {
		n.ExpiresAt = m.ExpiresAt.UTC().Format(time.RFC3339)
	}
	payload, err := json.Marshal(n)
	if err != nil || len(payload) > MaxPayload {
		return delivery.Result{}, delivery.Permanent(fmt.Errorf("webpush: the message is %d bytes, more than a push holds", len(payload)))
	}
	urgency := webpushgo.UrgencyNormal
	if m.Action == "safety" {
		urgency = webpushgo.UrgencyHigh
	}
	opts := webpushgo.Options{
		HTTPClient:      c.client,
		Subscriber:      c.subscriber,
		Topic:           push.CollapseID(m.ID, 32),
		TTL:             int(ttl / time.Second),
		Urgency:         urgency,
		VAPIDPublicKey:  c.public,
		VAPIDPrivateKey: c.private,
	}
	var tally push.Tally
	for _, d := range devs {
		id, err := c.send(ctx, payload, d, &opts)
		if err != nil {
			tally.Fail(d.ID, delivery.IsPermanent(err), push.Redact(err, d.Token, d.P256DH, d.Auth))
			continue
		}
		tally.OK(id)
	}
	return tally.Result(Name)
}

func (c *Channel) send(ctx context.Context, payload []byte, d *trial.Device, opts *webpushgo.Options) (string, error) {
	if err := c.checkEndpoint(d.Token); err != nil {
		return "", delivery.Permanent(err)
	}
	if d.P256DH == "" || d.Auth == "" {
		return "", delivery.Permanent(errors.New("the subscription has no keys"))
	}
	ctx, cancel := push.WithTimeout(ctx, c.timeout)
	defer cancel()
	sub := &webpushgo.Subscription{Endpoint: d.Token, Keys: webpushgo.Keys{P256dh: d.P256DH, Auth: d.Auth}}
	// webpush-go appends to the message's buffer: give it its own copy.
	resp, err := webpushgo.SendNotificationWithContext(ctx, append([]byte(nil), payload...), sub, opts)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) || ctx.Err() != nil {
			return "", err // the network: retry
		}
		// Encryption failed: the subscription's keys are not valid.
		return "", delivery.Permanent(fmt.Errorf("encrypt: %w", err))
	}
	answer := push.ReadBody(resp, 4<<10)
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return resp.Header.Get("Location"), nil
	case s == http.StatusNotFound || s == http.StatusGone:
		// The subscription has expired or was unsubscribed.
		return "", delivery.Permanent(fmt.Errorf("the push service answered %s", resp.Status))
	case s == http.StatusBadRequest || s == http.StatusRequestEntityTooLarge:
		return "", delivery.Permanent(fmt.Errorf("the push service answered %s: %s", resp.Status, push.Snippet(answer)))
	default:
		return "", fmt.Errorf("the push service answered %s", resp.Status)
	}
}

// checkEndpoint: an endpoint is an https URL of an allowed host.
func (c *Channel) checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return errors.New("the subscription endpoint is not an https URL")
	}
	if len(c.allowed) == 0 {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	for _, a := range c.allowed {
		if host == a || strings.HasSuffix(host, "."+a) {
			return nil
		}
	}
	return errors.New("the subscription endpoint's host is not an allowed push service")
}
