// Package fcm is the Firebase Cloud Messaging delivery channel: the HTTP v1
// API (POST {endpoint}/v1/projects/{project}/messages:send, one request per
// registration token) with an OAuth 2.0 access token of a service account
// (golang.org/x/oauth2/google, the token_uri of the key file).
//
// The Firebase Admin SDK (firebase.google.com/go/v4/messaging) would accept
// a custom endpoint, but its client is only reachable through the firebase
// App, which links Firestore, Cloud Storage and gRPC xDS into the binary
// (some 360 packages) for one POST; this package makes the documented REST
// call instead.
package fcm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/internal/push"
)

// Name is the channel's name in study.yaml, and the device platform it
// sends to.
const Name = "fcm"

// Defaults.
const (
	DefaultEndpoint = "https://fcm.googleapis.com"
	// Scope is the OAuth 2.0 scope of the HTTP v1 API.
	Scope          = "https://www.googleapis.com/auth/firebase.messaging"
	DefaultTimeout = 10 * time.Second
	// DefaultTTL is the time-to-live of a message without ExpiresAt
	// (FCM's own default is four weeks).
	DefaultTTL = 24 * time.Hour
)

// Config configures the FCM channel.
type Config struct {
	// ProjectID is the Firebase project; empty means the project_id of the
	// service-account key.
	ProjectID string
	// CredentialsFile is the path of a service-account key (JSON); the
	// engine reads the path from the environment variable study.yaml names.
	CredentialsFile string
	// CredentialsJSON is the key itself, instead of CredentialsFile.
	CredentialsJSON []byte
	// Endpoint is the API's base URL (DefaultEndpoint when empty).
	Endpoint string
	// Timeout bounds one request (DefaultTimeout when zero).
	Timeout time.Duration
	// HTTPClient sends the FCM and token requests (a client with Timeout
	// when nil: token requests are bounded only by the client's timeout).
	HTTPClient *http.Client
	// Now is the clock of time-to-live (time.Now when nil).
	Now func() time.Time
}

// Channel is the FCM channel. It is safe for concurrent use.
type Channel struct {
	url     string
	tokens  oauth2.TokenSource
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
}

var _ delivery.Channel = (*Channel)(nil)

// New reads and checks the service-account key and returns the channel. It
// does not fetch a token: the first Send does.
func New(cfg Config) (*Channel, error) {
	key := cfg.CredentialsJSON
	if len(key) == 0 {
		if cfg.CredentialsFile == "" {
			return nil, errors.New("fcm: no service-account credentials (credentials file)")
		}
		b, err := os.ReadFile(cfg.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("fcm: read the credentials file: %w", err)
		}
		key = b
	}
	var sa struct {
		ProjectID   string `json:"project_id"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(key, &sa); err != nil {
		return nil, errors.New("fcm: the credentials are not JSON")
	}
	if sa.ClientEmail == "" || sa.PrivateKey == "" {
		return nil, errors.New("fcm: the credentials have no client_email or private_key")
	}
	project := cfg.ProjectID
	if project == "" {
		project = sa.ProjectID
	}
	if project == "" || strings.ContainsAny(project, "/?#") {
		return nil, errors.New("fcm: no valid project id")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	// The token source keeps this context for every token request; it
	// carries only the HTTP client.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
	creds, err := google.CredentialsFromJSONWithType(ctx, key, google.ServiceAccount, Scope)
	if err != nil {
		return nil, fmt.Errorf("fcm: credentials: %w", push.Redact(err, sa.PrivateKey))
	}
	endpoint := strings.TrimRight(cfg.Endpoint, "/")
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	c := &Channel{
		url:     endpoint + "/v1/projects/" + project + "/messages:send",
		tokens:  creds.TokenSource,
		client:  client,
		timeout: timeout,
		now:     cfg.Now,
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Name implements delivery.Channel.
func (c *Channel) Name() string { return Name }

// Send sends m to each of the participant's FCM devices.
func (c *Channel) Send(ctx context.Context, m *delivery.Message) (delivery.Result, error) {
	devs := push.Devices(m.Devices, Name)
	if len(devs) == 0 {
		return delivery.Result{}, delivery.ErrNoDevice
	}
	ttl, ok := push.TTL(c.now(), m.ExpiresAt, DefaultTTL)
	if !ok {
		return delivery.Result{}, delivery.Permanent(fmt.Errorf("fcm: %w", push.ErrExpired))
	}
	var tally push.Tally
	for _, d := range devs {
		body, err := json.Marshal(request{Message: message(m, d.Token, ttl)})
		if err != nil {
			return delivery.Result{}, delivery.Permanent(fmt.Errorf("fcm: %w", err))
		}
		name, err := c.post(ctx, body)
		if err != nil {
			tally.Fail(d.ID, delivery.IsPermanent(err), push.Redact(err, d.Token))
			continue
		}
		tally.OK(name)
	}
	return tally.Result(Name)
}

// post sends one request: the message's name, or an error (Permanent when
// the token will not take the message).
func (c *Channel) post(ctx context.Context, body []byte) (string, error) {
	ctx, cancel := push.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.tokens.Token()
	if err != nil {
		return "", fmt.Errorf("access token: %w", tokenError(err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", delivery.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	tok.SetAuthHeader(req)
	resp, err := c.client.Do(req)
	if err != nil {
		return "", err
	}
	answer := push.ReadBody(resp, 64<<10)
	if resp.StatusCode == http.StatusOK {
		var ok struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(answer, &ok)
		return ok.Name, nil
	}
	return "", classify(resp.StatusCode, answer)
}

// tokenError keeps a token endpoint's error short (its body may be long).
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		if re.ErrorCode != "" {
			return fmt.Errorf("the token endpoint answered %s: %s", re.Response.Status, re.ErrorCode)
		}
		return fmt.Errorf("the token endpoint answered %s", re.Response.Status)
	}
	return err
}

// Error is FCM's refusal of one message.
type Error struct {
	Status int
	// Code is the FcmError errorCode (UNREGISTERED, INVALID_ARGUMENT,
	// SENDER_ID_MISMATCH, QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL,
	// THIRD_PARTY_AUTH_ERROR), or the google.rpc status when there is none.
	Code    string
	Message string
	// Permanent: the token will not take this message (unregistered,
	// invalid, or of another sender).
	Permanent bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("FCM answered %d %s: %s", e.Status, e.Code, e.Message)
}

// classify reads an FCM v1 error body (google.rpc.Status with FcmError
// details) into an *Error wrapped by delivery.Permanent when retrying
// cannot help.
func classify(status int, body []byte) error {
	var answer struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Details []struct {
				Type      string `json:"@type"`
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &answer)
	e := &Error{Status: status, Code: answer.Error.Status, Message: push.Snippet([]byte(answer.Error.Message))}
	if e.Message == "" {
		e.Message = push.Snippet(body)
	}
	for _, d := range answer.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" && d.ErrorCode != "" {
			e.Code = d.ErrorCode
		}
	}
	switch e.Code {
	case "UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH":
		e.Permanent = true
	case "":
		e.Permanent = status == http.StatusNotFound || status == http.StatusBadRequest
	}
	if !e.Permanent && !push.Retryable(status) && status != http.StatusUnauthorized && status != http.StatusForbidden {
		// Another 4xx: the request itself is wrong.
		e.Permanent = true
	}
	if e.Permanent {
		return delivery.Permanent(e)
	}
	return e
}
