package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Errors of Verify (besides the Standard Webhooks library's
// ErrNoMatchingSignature and ErrRequiredHeaders, which it wraps).
var (
	ErrTooOld = standardwebhooks.ErrMessageTooOld
	ErrTooNew = standardwebhooks.ErrMessageTooNew
)

// Verify checks a received webhook as a receiver should: the three
// Standard Webhooks headers are present, the timestamp is within tolerance
// of now (DefaultTolerance when tolerance is zero or less), and one of the
// signatures in webhook-signature is the HMAC-SHA256 of
// "{webhook-id}.{webhook-timestamp}.{body}" under secret (a whsec_ key).
// The signature check is the Standard Webhooks reference library's.
func Verify(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return errors.New("webhook: the secret is not a whsec_ base64 key")
	}
	if header.Get(standardwebhooks.HeaderWebhookID) == "" ||
		header.Get(standardwebhooks.HeaderWebhookTimestamp) == "" ||
		header.Get(standardwebhooks.HeaderWebhookSignature) == "" {
		return fmt.Errorf("webhook: %w", standardwebhooks.ErrRequiredHeaders)
	}
	sec, err := strconv.ParseInt(header.Get(standardwebhooks.HeaderWebhookTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: %w", standardwebhooks.ErrInvalidHeaders)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := time.Unix(sec, 0)
	if now.Sub(ts) > tolerance {
		return fmt.Errorf("webhook: %w", ErrTooOld)
	}
	if ts.Sub(now) > tolerance {
		return fmt.Errorf("webhook: %w", ErrTooNew)
	}
	if err := wh.VerifyIgnoringTimestamp(body, header); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return nil
}
