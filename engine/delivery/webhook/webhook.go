// Package webhook is the signed webhook delivery channel: each decision is
// POSTed to one URL as a CloudEvents 1.0 event in structured JSON mode,
// signed by the Standard Webhooks scheme (webhook-id, webhook-timestamp,
// webhook-signature: v1,base64(HMAC-SHA256(secret, "id.timestamp.body"))).
//
// The webhook-id and the event id are the delivery's id, the same on every
// attempt, so that a receiver can deduplicate; the timestamp and signature
// are made anew for each attempt.
package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/internal/push"
)

// Name is the channel's name in study.yaml.
const Name = "webhook"

// Defaults.
const (
	// EventType is the CloudEvents type of a decision.
	EventType = "org.jitai.decision.v1"
	// ContentType is the structured-mode CloudEvents JSON media type.
	ContentType = "application/cloudevents+json"
	// DefaultTimeout bounds one attempt.
	DefaultTimeout = 10 * time.Second
	// DefaultTolerance is the clock skew Verify accepts by default (the
	// Standard Webhooks reference libraries use five minutes).
	DefaultTolerance = 5 * time.Minute
	// MaxIdleConnsPerHost is how many idle keep-alive connections to the
	// receiver the channel keeps when Config.HTTPClient is nil.
	MaxIdleConnsPerHost = 64
	// MinSecretBytes is the shortest secret New accepts (the Standard
	// Webhooks specification recommends 24 to 64 bytes).
	MinSecretBytes = 24
	secretPrefix   = "whsec_"
)

// Config configures the webhook channel.
type Config struct {
	// URL receives the POSTs (https in production; any scheme is accepted
	// so that tests can use a local receiver).
	URL string
	// Secret is the signing key: "whsec_" followed by the base64 of at
	// least MinSecretBytes random bytes. The engine reads it from the
	// environment variable study.yaml names; it is never logged.
	Secret string
	// Source overrides the CloudEvents source; the default is
	// /jitai/studies/{study}.
	Source string
	// Timeout bounds one attempt (DefaultTimeout when zero).
	Timeout time.Duration
	// HTTPClient sends the requests (when nil: http.DefaultTransport's
	// settings, keeping MaxIdleConnsPerHost idle connections). Redirects are never followed: a 3xx is a retryable failure.
	HTTPClient *http.Client
	// Now is the clock of the webhook-timestamp header (time.Now when nil).
	Now func() time.Time
}

// Channel is the webhook channel. It is safe for concurrent use.
type Channel struct {
	url     string
	wh      *standardwebhooks.Webhook
	source  string
	timeout time.Duration
	client  *http.Client
	now     func() time.Time
}

var _ delivery.Channel = (*Channel)(nil)

// New validates cfg and returns the channel.
func New(cfg Config) (*Channel, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("webhook: url must be an absolute http(s) URL")
	}
	wh, err := parseSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	c := &Channel{
		url:     cfg.URL,
		wh:      wh,
		source:  cfg.Source,
		timeout: cfg.Timeout,
		now:     cfg.Now,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	client := http.Client{Transport: defaultTransport}
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.client = &client
	return c, nil
}

// defaultTransport is http.DefaultTransport keeping up to
// MaxIdleConnsPerHost idle connections to the receiver instead of its 2:
// the trial clock's delivery workers (ClockOptions.Workers, 32 by default)
// post to one host concurrently, and with 2 idle connections kept nearly
// every request opened (and then closed) a connection of its own, leaving
// the machine's ephemeral ports in TIME_WAIT when a point fires for many
// participants at once.
var defaultTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	return t
}()

func parseSecret(secret string) (*standardwebhooks.Webhook, error) {
	if !strings.HasPrefix(secret, secretPrefix) {
		return nil, errors.New(`webhook: the secret must start with "whsec_"`)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		// The library's message does not contain the secret, but say
		// only what is wrong.
		return nil, errors.New("webhook: the secret after whsec_ is not valid base64")
	}
	// NewWebhook decoded the same text; it keeps the key to itself.
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if n := len(key); n < MinSecretBytes {
		return nil, fmt.Errorf("webhook: the secret is %d bytes; at least %d are needed", n, MinSecretBytes)
	}
	return wh, nil
}

// Name implements delivery.Channel.
func (c *Channel) Name() string { return Name }

// Deviceless implements delivery.Deviceless: the webhook posts to its URL,
// not to the participant's devices.
func (c *Channel) Deviceless() bool { return true }

// Send POSTs m as a signed CloudEvent.
func (c *Channel) Send(ctx context.Context, m *delivery.Message) (delivery.Result, error) {
	body, err := c.Event(m)
	if err != nil {
		return delivery.Result{}, delivery.Permanent(err)
	}
	ts := c.now()
	sig, err := c.wh.Sign(m.ID, ts, body)
	if err != nil {
		return delivery.Result{}, delivery.Permanent(fmt.Errorf("webhook: sign: %w", err))
	}
	ctx, cancel := push.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return delivery.Result{}, delivery.Permanent(push.Redact(err, c.url))
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set(standardwebhooks.HeaderWebhookID, m.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := c.client.Do(req)
	if err != nil {
		return delivery.Result{}, fmt.Errorf("webhook: %w", push.Redact(err, c.url))
	}
	answer := push.ReadBody(resp, 64<<10)
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return delivery.Result{MessageID: messageID(resp.Header, answer, m.ID)}, nil
	case permanentStatus(s):
		return delivery.Result{}, delivery.Permanent(fmt.Errorf("webhook: the receiver answered %s", resp.Status))
	default:
		return delivery.Result{}, fmt.Errorf("webhook: the receiver answered %s", resp.Status)
	}
}

// permanentStatus: the receiver will refuse the same request again.
func permanentStatus(s int) bool {
	switch s {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusGone,
		http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// messageID is the receiver's id for the message: a Message-Id-like header,
// an "id" or "message_id" string in a JSON answer, or else the webhook id.
func messageID(h http.Header, body []byte, fallback string) string {
	for _, k := range []string{"X-Message-Id", "Message-Id"} {
		if v := strings.TrimSpace(h.Get(k)); v != "" && len(v) <= 256 {
			return v
		}
	}
	var answer struct {
		ID        any `json:"id"`
		MessageID any `json:"message_id"`
	}
	if json.Unmarshal(body, &answer) == nil {
		for _, v := range []any{answer.MessageID, answer.ID} {
			if s, ok := v.(string); ok && s != "" && len(s) <= 256 {
				return s
			}
		}
	}
	return fallback
}

// Event is m's body: a CloudEvents 1.0 event in structured JSON mode whose
// data is the decision's app-facing answer.
func (c *Channel) Event(m *delivery.Message) ([]byte, error) {
	if m.ID == "" || strings.ContainsFunc(m.ID, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, errors.New("webhook: the message has no id, or one that cannot be a header")
	}
	e := ce.New(ce.CloudEventsVersionV1)
	e.SetID(m.ID)
	source := c.source
	if source == "" {
		source = "/jitai/studies/" + url.PathEscape(m.Study)
	}
	e.SetSource(source)
	e.SetType(EventType)
	if m.Participant != "" {
		e.SetSubject(m.Participant)
	}
	if !m.Time.IsZero() {
		e.SetTime(m.Time.UTC())
	}
	data := m.Answer
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	if !json.Valid(data) {
		return nil, errors.New("webhook: the message's answer is not valid JSON")
	}
	// A json.RawMessage goes through the SDK's JSON codec into "data" as
	// JSON (a []byte would be sent as data_base64).
	if err := e.SetData(ce.ApplicationJSON, data); err != nil {
		return nil, fmt.Errorf("webhook: event data: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("webhook: event: %w", err)
	}
	return json.Marshal(e)
}
