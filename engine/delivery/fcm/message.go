package fcm

import (
	"fmt"
	"strconv"
	"time"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/internal/push"
)

// The HTTP v1 request body (projects.messages.send): only the fields this
// channel sets.
type request struct {
	Message fcmMessage `json:"message"`
}

type fcmMessage struct {
	Token        string            `json:"token"`
	Notification *notification     `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      *android          `json:"android,omitempty"`
	APNS         *apns             `json:"apns,omitempty"`
}

type notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

type android struct {
	CollapseKey string `json:"collapse_key,omitempty"`
	Priority    string `json:"priority,omitempty"`
	// TTL is a google.protobuf.Duration in JSON: seconds with an "s".
	TTL string `json:"ttl,omitempty"`
}

type apns struct {
	Headers map[string]string `json:"headers,omitempty"`
}

// Data keys of every message (FCM data values are strings).
const (
	KeyDeliveryID    = "delivery_id"
	KeyDecisionID    = "decision_id"
	KeyStudy         = "study"
	KeyDecisionPoint = "decision_point"
	KeyAction        = "action"
	KeyTrigger       = "trigger"
)

// Data is the data map a push message carries: the ids the app needs to
// fetch or acknowledge the decision. The participant id is not sent to the
// push provider.
func Data(m *delivery.Message) map[string]string {
	data := map[string]string{
		KeyDeliveryID: m.ID,
		KeyDecisionID: m.DecisionID,
		KeyStudy:      m.Study,
	}
	for k, v := range map[string]string{KeyDecisionPoint: m.DecisionPoint, KeyAction: m.Action, KeyTrigger: m.Trigger} {
		if v != "" {
			data[k] = v
		}
	}
	return data
}

// message is the FCM message of m for one registration token. A message
// whose decision has an expiry lives until then on Android (ttl) and iOS
// (apns-expiration); a newer push of the same delivery replaces a pending
// one (collapse_key, apns-collapse-id).
func message(m *delivery.Message, token string, ttl time.Duration) fcmMessage {
	collapse := push.CollapseID(m.ID, 64)
	msg := fcmMessage{
		Token:        token,
		Notification: &notification{Title: m.Title, Body: m.Body},
		Data:         Data(m),
		Android: &android{
			CollapseKey: collapse,
			Priority:    "high",
			TTL:         fmt.Sprintf("%ds", int64(ttl/time.Second)),
		},
		APNS: &apns{Headers: map[string]string{
			"apns-priority":    "10",
			"apns-collapse-id": collapse,
		}},
	}
	if !m.ExpiresAt.IsZero() {
		msg.APNS.Headers["apns-expiration"] = strconv.FormatInt(m.ExpiresAt.Unix(), 10)
	}
	if m.Title == "" && m.Body == "" {
		msg.Notification = nil
	}
	return msg
}
