// Package delivery is the narrow interface between the engine's outbox and
// the channels that take a decision to a participant's phone: a signed
// webhook (Standard Webhooks + CloudEvents), Firebase Cloud Messaging,
// Apple Push Notification service and Web Push. Each channel is a package
// under engine/delivery/ that implements Channel; the engine service owns
// the outbox, retries and the delivery log (docs/architecture.md).
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// Message is one decision to deliver.
type Message struct {
	// ID is the delivery's stable id: the same on every attempt, so that a
	// receiver can deduplicate (webhook-id, CloudEvents id, collapse ids).
	ID            string
	Study         string
	Participant   string
	DecisionID    string
	DecisionPoint string
	// Trigger is scheduled or event.
	Trigger string
	// Time is the decision's time, ExpiresAt when it stops being relevant
	// (push channels set their time-to-live from it).
	Time      time.Time
	ExpiresAt time.Time
	// Action is deliver or safety (a none decision is not pushed).
	Action string
	// Title and Body are the notification text (the rendered intervention,
	// or the study's signposting for a safety decision).
	Title string
	Body  string
	// Answer is the app-facing decision document, exactly what the app
	// would have received had it asked (the webhook's CloudEvents data).
	Answer json.RawMessage
	// Devices are the participant's registered devices (push channels send
	// to those of their platform). Tokens are secrets: never log them.
	Devices []*trial.Device
	// Attempt counts attempts, from 1.
	Attempt int
}

// Result is what a channel reports for an accepted message.
type Result struct {
	// MessageID is the provider's id for the message (FCM message name,
	// apns-id, the receiver's answer), or empty.
	MessageID string
	// Devices counts the devices the message went to (push channels).
	Devices int
}

// Channel sends messages. Send returns an error wrapped by Permanent when
// retrying cannot help (a malformed request, every device token unknown);
// any other error is retried with backoff until the decision expires.
type Channel interface {
	// Name is the channel's name as in study.yaml (webhook, fcm, apns,
	// webpush, or a notifier plugin's name).
	Name() string
	Send(ctx context.Context, m *Message) (Result, error)
}

// Deviceless is implemented by a channel that does not send to the
// participant's devices (the webhook): when every channel of a study is
// deviceless, the engine does not read the participant's devices for a
// message, and Message.Devices is nil.
type Deviceless interface {
	Deviceless() bool
}

// NeedsDevices reports whether any of chs sends to devices (is not
// Deviceless).
func NeedsDevices(chs []Channel) bool {
	for _, ch := range chs {
		if d, ok := ch.(Deviceless); !ok || !d.Deviceless() {
			return true
		}
	}
	return false
}

// ErrNoDevice: the participant has no device of the channel's platform; the
// channel had nothing to do (not a failure of the other channels).
var ErrNoDevice = errors.New("no registered device for this channel")

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying will not fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
