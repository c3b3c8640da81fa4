// Package push holds what the delivery channels share: picking a
// participant's devices of one platform, adding up per-device outcomes into
// one Send result, keeping secrets (device tokens, endpoints, URLs) out of
// error messages, and time-to-live arithmetic.
package push

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/trial"
)

// ErrExpired: the message's ExpiresAt has passed; pushing it cannot help.
var ErrExpired = errors.New("the decision has expired")

// Devices returns the devices of platform, in order.
func Devices(devs []*trial.Device, platform string) []*trial.Device {
	var out []*trial.Device
	for _, d := range devs {
		if d != nil && d.Platform == platform && d.Token != "" {
			out = append(out, d)
		}
	}
	return out
}

// TTL is the time from now to expires, in whole seconds rounded down. ok is
// false when expires is set and not after now; a zero expires gives def.
func TTL(now, expires time.Time, def time.Duration) (ttl time.Duration, ok bool) {
	if expires.IsZero() {
		return def, true
	}
	ttl = expires.Sub(now).Truncate(time.Second)
	return ttl, ttl > 0
}

// CollapseID is a stable id of at most n characters of the base64url
// alphabet derived from id: id itself when it already fits, else a hash.
func CollapseID(id string, n int) string {
	if len(id) <= n && isBase64URL(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	s := base64.RawURLEncoding.EncodeToString(sum[:])
	if len(s) > n {
		s = s[:n]
	}
	return s
}

func isBase64URL(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// redacted is an error whose message has had secrets removed; it still
// unwraps to the cause so that errors.Is(err, context.DeadlineExceeded)
// holds.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// Redact returns err with every secret removed from its message. A
// *url.Error (which names the request URL, e.g. an APNs device token or a
// Web Push endpoint) is replaced by its cause.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return &redacted{msg: msg, err: err}
}

// Tally adds up the outcomes of one message's per-device sends.
type Tally struct {
	sent      int
	messageID string
	permanent []string
	retryable []string
	lastRetry error
}

// OK counts a device the provider accepted the message for.
func (t *Tally) OK(messageID string) {
	t.sent++
	if t.messageID == "" {
		t.messageID = messageID
	}
}

// Fail counts a device whose send failed; a permanent failure is one that
// retrying will not fix for that device (an unknown token). err must
// already be free of secrets.
func (t *Tally) Fail(deviceID string, permanent bool, err error) {
	line := fmt.Sprintf("device %q: %v", deviceID, err)
	if permanent {
		t.permanent = append(t.permanent, line)
		return
	}
	t.retryable = append(t.retryable, line)
	t.lastRetry = err
}

// Result is Send's answer: sent when any device accepted the message; a
// Permanent error when every device failed for good; a retryable error
// otherwise.
func (t *Tally) Result(channel string) (delivery.Result, error) {
	if t.sent > 0 {
		return delivery.Result{MessageID: t.messageID, Devices: t.sent}, nil
	}
	if len(t.retryable) == 0 {
		return delivery.Result{}, delivery.Permanent(fmt.Errorf("%s: every device refused the message: %s",
			channel, strings.Join(t.permanent, "; ")))
	}
	all := append(append([]string(nil), t.retryable...), t.permanent...)
	return delivery.Result{}, &redacted{
		msg: fmt.Sprintf("%s: %s", channel, strings.Join(all, "; ")),
		err: t.lastRetry,
	}
}

// ReadBody reads at most limit bytes of a response body and closes it.
func ReadBody(resp *http.Response, limit int64) []byte {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	// Drain a little more so that the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	return b
}

// Snippet is a short, single-line excerpt of a provider's error body for an
// error message.
func Snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// WithTimeout bounds ctx by d when d is positive.
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// Retryable reports whether an HTTP status is worth retrying: 408, 425,
// 429 and every 5xx.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooEarly ||
		status == http.StatusTooManyRequests || status >= 500
}
