package trial

import (
	"context"
	"encoding/json"
	"time"
)

// Triggers: what opened a decision point (Record.Trigger).
const (
	// TriggerApp: the app asked for a decision at an app-requested point.
	TriggerApp = "app"
	// TriggerScheduled: a scheduled point of the study's schedule (fired by
	// the engine's clock, or asked for by the app; both resolve to one record).
	TriggerScheduled = "scheduled"
	// TriggerEvent: an event opened the point (Record.EventID names it).
	TriggerEvent = "event"
)

// ReasonEngineUnavailable is the unavailable reason of a scheduled point
// whose window closed before the engine could decide it.
const ReasonEngineUnavailable = "engine_unavailable"

// Due is one participant's entry in the trial clock's schedule: the instant
// their next scheduled work is due, and how far their points are handled.
type Due struct {
	Study       string
	Participant string
	// At is when the entry is due (its score). A claim moves it to the end
	// of the claim's lease, so an engine that dies holding a claim loses
	// nothing: the entry is due again when the lease ends.
	At time.Time
	// From is the cursor: every scheduled point of the participant before
	// From has been handled (decided or recorded as missed).
	From time.Time
	// Lease is the At the claim set (zero for an unclaimed entry); Complete
	// uses it to tell whether the entry changed while it was claimed.
	Lease time.Time
}

// Schedule is the durable schedule of the trial clock: one entry per
// participant of a study with scheduled points, shared by every engine on
// the store. Claims are atomic: an entry is claimed by one caller at a time
// (until its lease ends).
type Schedule interface {
	// Touch makes (study, participant) due at at or earlier: it inserts the
	// entry (with From = from) if there is none, and otherwise lowers its At
	// to at if at is earlier (From is kept). Enrolment, a time-zone change
	// and an event that opens a point call it.
	Touch(ctx context.Context, study, participant string, at, from time.Time) error
	// ClaimDue claims up to limit entries with At <= now, in At order as far
	// as the store can, setting each one's At to now+lease. It returns them
	// with At as it was and Lease as set.
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Due, error)
	// Complete ends a claim: From becomes from, and At becomes next if the
	// entry is still as the claim left it (At == d.Lease), or the earlier of
	// its At and next if it was touched meanwhile. A zero next removes the
	// entry (the participant has no more points) unless it was touched.
	Complete(ctx context.Context, d Due, from, next time.Time) error
	// Unschedule removes the participant's entry (withdrawal, erasure).
	Unschedule(ctx context.Context, study, participant string) error
	// ScheduleEntry returns one entry, or ErrNotFound.
	ScheduleEntry(ctx context.Context, study, participant string) (*Due, error)
}

// Delivery statuses (Delivery.Status).
const (
	// DeliveryQueued: waiting in the outbox for a (next) attempt.
	DeliveryQueued = "queued"
	// DeliverySent: a channel accepted it (its provider's message id is kept).
	DeliverySent = "sent"
	// DeliveryFailed: a channel refused it for good (e.g. an unknown device
	// token); it is on the dead-letter list.
	DeliveryFailed = "failed"
	// DeliveryExpired: the decision expired before any channel accepted it;
	// it is on the dead-letter list.
	DeliveryExpired = "expired"
	// DeliveryAnswered: the app asked for the decision and received it in
	// the answer; nothing is pushed.
	DeliveryAnswered = "answered"
)

// Delivery is the delivery log of one decision and, while it is queued, its
// entry in the outbox. Its ID is stable across attempts so that receivers
// can deduplicate.
type Delivery struct {
	ID            string `json:"id"`
	Study         string `json:"study"`
	Participant   string `json:"participant_id"`
	DecisionID    string `json:"decision_id"`
	DecisionPoint string `json:"decision_point"`
	Status        string `json:"status"`
	Attempts      int    `json:"attempts"`
	// NextAttempt is when a queued delivery is due (the outbox's order).
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	DecidedAt   time.Time `json:"decided_at"`
	QueuedAt    time.Time `json:"queued_at,omitzero"`
	SentAt      time.Time `json:"sent_at,omitzero"`
	FailedAt    time.Time `json:"failed_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Channel is the channel that accepted it, MessageID its provider's id.
	Channel   string `json:"channel,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// Error is the last failure's reason.
	Error string `json:"error,omitempty"`
	// The message, fixed when the decision is made, so that an attempt
	// reads nothing of the decision again: what opened it, its time, its
	// action, the notification text and the app-facing answer.
	Trigger string          `json:"trigger,omitempty"`
	Time    time.Time       `json:"time,omitzero"`
	Action  string          `json:"action,omitempty"`
	Title   string          `json:"title,omitempty"`
	Body    string          `json:"body,omitempty"`
	Answer  json.RawMessage `json:"answer,omitempty"`
}

// Terminal reports whether the delivery has left the outbox for good.
func (d *Delivery) Terminal() bool { return d.Status != DeliveryQueued }

// Outbox holds the deliveries of decisions: written in the decision's commit
// (Commit.Delivery) and claimed by delivery workers of any engine.
type Outbox interface {
	// ClaimDeliveries claims up to limit queued deliveries with
	// NextAttempt <= now, setting NextAttempt to now+lease, and returns them
	// as stored before the claim.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Delivery, error)
	// SaveDelivery stores d (an attempt's outcome). A queued d is due again
	// at d.NextAttempt; a terminal d leaves the outbox and stays as the
	// decision's delivery log (failed and expired ones are the dead-letter
	// list).
	SaveDelivery(ctx context.Context, d *Delivery) error
	// Delivery returns a decision's delivery log, or ErrNotFound.
	Delivery(ctx context.Context, study, participant, decisionID string) (*Delivery, error)
	// Requeue makes a stored, still queued delivery claimable if it is not
	// (a store whose commit and outbox index are not one write repairs a
	// crash between them here); it does nothing for a terminal one.
	Requeue(ctx context.Context, study, participant, decisionID string) error
	// DeadLetters lists a study's failed and expired deliveries, oldest first.
	DeadLetters(ctx context.Context, study string, limit int) ([]*Delivery, error)
}

// Device is a participant's registered push target. Token (and the Web
// Push keys) are secrets: never logged or exported, erased with the
// participant.
type Device struct {
	ID       string `json:"device_id"`
	Platform string `json:"platform"` // fcm, apns or webpush
	// Token is the FCM registration token, the APNs device token, or the
	// Web Push subscription endpoint.
	Token string `json:"token"`
	// P256DH and Auth are the Web Push subscription keys.
	P256DH    string    `json:"p256dh,omitempty"`
	Auth      string    `json:"auth,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Devices stores participants' devices.
type Devices interface {
	// PutDevice creates or replaces one device of the participant.
	PutDevice(ctx context.Context, study, participant string, d *Device) error
	// DeleteDevice removes one device (ErrNotFound if there is none).
	DeleteDevice(ctx context.Context, study, participant, id string) error
	// Devices lists the participant's devices by id.
	Devices(ctx context.Context, study, participant string) ([]*Device, error)
}

// ParticipantUpdate changes a participant's settings (nil fields keep theirs).
type ParticipantUpdate struct {
	Timezone *string
	Region   *string
	Locale   *string
}

// Clock is what the trial clock needs of a store, besides the Store itself.
// Every store of the engine implements it.
type Clock interface {
	Schedule
	Outbox
	Devices
	// UpdateParticipant applies u to the stored participant (in the
	// register and the participant's own copy) and returns it.
	UpdateParticipant(ctx context.Context, study, participant string, u ParticipantUpdate) (*Participant, error)
}
