// Package apns is the Apple Push Notification service delivery channel:
// token-based (JWT, ES256) authentication with a .p8 key, one HTTP/2 POST
// /3/device/{token} per device, through github.com/sideshow/apns2.
package apns

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/internal/push"
)

// Name is the channel's name in study.yaml, and the device platform it
// sends to.
const Name = "apns"

// Environments.
const (
	Production  = "production"
	Development = "development"
)

// Defaults.
const (
	DefaultTimeout = 10 * time.Second
	// DefaultTTL is the lifetime of a message without ExpiresAt.
	DefaultTTL = 24 * time.Hour
)

// Payload keys besides "aps" (the app reads them from userInfo).
const (
	KeyDeliveryID    = "delivery_id"
	KeyDecisionID    = "decision_id"
	KeyStudy         = "study"
	KeyDecisionPoint = "decision_point"
	KeyAction        = "action"
	KeyTrigger       = "trigger"
)

// Config configures the APNs channel.
type Config struct {
	// Topic is the app's bundle id (apns-topic).
	Topic string
	// KeyFile is the path of the .p8 signing key (PKCS #8, P-256); the
	// engine reads the path from the environment variable study.yaml names.
	KeyFile string
	// KeyPEM is the key itself, instead of KeyFile.
	KeyPEM []byte
	// KeyID is the key's 10-character id, TeamID the developer team's.
	KeyID  string
	TeamID string
	// Environment is production (default) or development (the sandbox).
	Environment string
	// Host overrides the environment's host (tests: a local HTTP/2 server).
	Host string
	// Timeout bounds one request (DefaultTimeout when zero).
	Timeout time.Duration
	// HTTPClient sends the requests; it must speak HTTP/2 (apns2's own
	// HTTP/2 client when nil).
	HTTPClient *http.Client
	// Now is the clock of apns-expiration for messages without ExpiresAt
	// (time.Now when nil). The provider token's iat is apns2's (time.Now).
	Now func() time.Time
}

// Channel is the APNs channel. It is safe for concurrent use.
type Channel struct {
	client  *apns2.Client
	topic   string
	timeout time.Duration
	now     func() time.Time
}

var _ delivery.Channel = (*Channel)(nil)

// New reads the signing key, checks cfg and returns the channel.
func New(cfg Config) (*Channel, error) {
	if cfg.Topic == "" {
		return nil, errors.New("apns: no topic (the app's bundle id)")
	}
	if cfg.KeyID == "" || cfg.TeamID == "" {
		return nil, errors.New("apns: key id and team id are required")
	}
	key, err := authKey(cfg)
	if err != nil {
		return nil, err
	}
	client := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID})
	switch cfg.Environment {
	case "", Production:
		client.Host = apns2.HostProduction
	case Development:
		client.Host = apns2.HostDevelopment
	default:
		return nil, fmt.Errorf("apns: environment %q is neither production nor development", cfg.Environment)
	}
	if cfg.Host != "" {
		u, err := url.Parse(cfg.Host)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, errors.New("apns: host must be an https URL")
		}
		client.Host = strings.TrimRight(cfg.Host, "/")
	}
	if cfg.HTTPClient != nil {
		client.HTTPClient = cfg.HTTPClient
	}
	c := &Channel{client: client, topic: cfg.Topic, timeout: cfg.Timeout, now: cfg.Now}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

func authKey(cfg Config) (*ecdsa.PrivateKey, error) {
	pem := cfg.KeyPEM
	if len(pem) == 0 {
		if cfg.KeyFile == "" {
			return nil, errors.New("apns: no signing key (key file)")
		}
		b, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("apns: read the key file: %w", err)
		}
		pem = b
	}
	key, err := token.AuthKeyFromBytes(pem)
	if err != nil {
		return nil, fmt.Errorf("apns: the key is not a .p8 (PKCS #8 EC) key: %w", err)
	}
	return key, nil
}

// Name implements delivery.Channel.
func (c *Channel) Name() string { return Name }

// Send pushes m to each of the participant's APNs devices.
func (c *Channel) Send(ctx context.Context, m *delivery.Message) (delivery.Result, error) {
	devs := push.Devices(m.Devices, Name)
	if len(devs) == 0 {
		return delivery.Result{}, delivery.ErrNoDevice
	}
	now := c.now()
	expires := m.ExpiresAt
	if _, ok := push.TTL(now, expires, DefaultTTL); !ok {
		return delivery.Result{}, delivery.Permanent(fmt.Errorf("apns: %w", push.ErrExpired))
	}
	if expires.IsZero() {
		expires = now.Add(DefaultTTL)
	}
	n := &apns2.Notification{
		Topic:      c.topic,
		ApnsID:     ApnsID(m.ID),
		CollapseID: push.CollapseID(m.ID, 64),
		Expiration: expires,
		Priority:   apns2.PriorityHigh,
		PushType:   apns2.PushTypeAlert,
		Payload:    Payload(m),
	}
	var tally push.Tally
	for _, d := range devs {
		id, err := c.push(ctx, n, d.Token)
		if err != nil {
			tally.Fail(d.ID, delivery.IsPermanent(err), push.Redact(err, d.Token))
			continue
		}
		tally.OK(id)
	}
	return tally.Result(Name)
}

func (c *Channel) push(ctx context.Context, n *apns2.Notification, deviceToken string) (string, error) {
	if !validToken(deviceToken) {
		return "", delivery.Permanent(errors.New("the device token is not hexadecimal"))
	}
	ctx, cancel := push.WithTimeout(ctx, c.timeout)
	defer cancel()
	one := *n
	one.DeviceToken = deviceToken
	resp, err := c.client.PushWithContext(ctx, &one)
	if err != nil {
		return "", err
	}
	if resp.Sent() {
		return resp.ApnsID, nil
	}
	err = fmt.Errorf("APNs answered %d %s", resp.StatusCode, resp.Reason)
	switch {
	case resp.StatusCode == http.StatusGone,
		resp.Reason == apns2.ReasonBadDeviceToken,
		resp.Reason == apns2.ReasonDeviceTokenNotForTopic,
		resp.Reason == apns2.ReasonUnregistered:
		// This device will never take it.
		return "", delivery.Permanent(err)
	case resp.StatusCode == http.StatusBadRequest, resp.StatusCode == http.StatusRequestEntityTooLarge,
		resp.StatusCode == http.StatusNotFound, resp.StatusCode == http.StatusMethodNotAllowed:
		// The request is malformed (topic, payload, headers): no device
		// will take it either.
		return "", delivery.Permanent(err)
	}
	// 403 (provider token), 429, 5xx: retry.
	return "", err
}

// validToken: an APNs device token is hexadecimal (it goes into the
// request path).
func validToken(t string) bool {
	if t == "" || len(t) > 200 {
		return false
	}
	for _, r := range t {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// ApnsID is the apns-id of a delivery: the id itself when it is a UUID,
// else a name-based (SHA-1) UUID of it, so that it is the same on every
// attempt.
func ApnsID(id string) string {
	if u, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return u.String()
	}
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("jitai:delivery:"+id)).String()
}

// Payload is the notification's JSON payload: the alert and the ids the
// app needs to fetch or acknowledge the decision (not the participant id).
func Payload(m *delivery.Message) *payload.Payload {
	p := payload.NewPayload().AlertTitle(m.Title).AlertBody(m.Body).Sound("default").
		Custom(KeyDeliveryID, m.ID).Custom(KeyDecisionID, m.DecisionID).Custom(KeyStudy, m.Study)
	for k, v := range map[string]string{KeyDecisionPoint: m.DecisionPoint, KeyAction: m.Action, KeyTrigger: m.Trigger} {
		if v != "" {
			p.Custom(k, v)
		}
	}
	if m.Action == "safety" {
		p.InterruptionLevel(payload.InterruptionLevelTimeSensitive)
	}
	return p
}
