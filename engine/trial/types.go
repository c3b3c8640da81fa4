// Package engine is the decision pipeline: it assembles a participant's
// state, evaluates the study's policy, randomises within-person factors,
// renders the chosen intervention and records the decision durably before
// answering. Storage is behind the narrow interfaces in store.go.
package trial

import (
	"encoding/json"
	"time"

	"github.com/jitai/jitai/interventions"
)

// Participant statuses.
const (
	StatusActive    = "active"
	StatusWithdrawn = "withdrawn"
)

// Participant is an enrolment in a study. IDs are pseudonymous.
type Participant struct {
	Study      string            `json:"study"`
	ID         string            `json:"participant_id"`
	Timezone   string            `json:"timezone"`
	Strata     map[string]string `json:"strata,omitempty"`
	Stratum    string            `json:"stratum"`
	Seq        int64             `json:"seq"`
	Row        int               `json:"design_row"`
	Assignment map[string]string `json:"assignment"`
	EnrolledAt time.Time         `json:"enrolled_at"`
	Status     string            `json:"status"`
	// Region (ISO 3166-1 alpha-2, e.g. GB, US) chooses the crisis
	// signposting; Locale (BCP 47, e.g. en-GB) the language of messages.
	Region string `json:"region,omitempty"`
	Locale string `json:"locale,omitempty"`
}

// Event types.
const (
	EventEMA        = "ema"
	EventContext    = "context"
	EventEngagement = "engagement"
	EventPreference = "preference"
	EventAssessment = "assessment"
)

// Event is something the app reports about a participant. Events are
// idempotent by ID within a participant.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Time       time.Time       `json:"time"`
	Data       json.RawMessage `json:"data"`
	ReceivedAt time.Time       `json:"received_at"`
}

// Observation is the latest value of one variable.
type Observation struct {
	Value any       `json:"v"`
	Time  time.Time `json:"t"`
}

// Assessment is a scored questionnaire.
type Assessment struct {
	Instrument string    `json:"instrument"`
	Items      []int     `json:"items"`
	Total      int       `json:"total"`
	Severity   string    `json:"severity"`
	Time       time.Time `json:"time"`
}

// Preferences are the participant's own settings.
type Preferences struct {
	SnoozedUntil time.Time   `json:"snoozed_until,omitzero"`
	QuietHours   *QuietHours `json:"quiet_hours,omitempty"`
	OptedOut     bool        `json:"opted_out,omitempty"`
	// Times of the latest change of each preference, so that an older event
	// arriving late does not overwrite a newer one.
	SnoozeSetAt time.Time `json:"snooze_set_at,omitzero"`
	QuietSetAt  time.Time `json:"quiet_set_at,omitzero"`
	OptSetAt    time.Time `json:"opt_set_at,omitzero"`
}

// Prompt is one past delivery, kept in the state's history.
type Prompt struct {
	DecisionID   string    `json:"d"`
	Time         time.Time `json:"t"`
	Intervention string    `json:"i"`
}

// Engagement is one engagement report on a delivered decision.
type Engagement struct {
	DecisionID string    `json:"d"`
	Status     string    `json:"s"`
	Time       time.Time `json:"t"`
	Rating     *float64  `json:"r,omitempty"`
}

// State is everything known about a participant now. It is stored as one
// document so that a decision reads it in one round trip, and versioned for
// optimistic concurrency.
type State struct {
	Version     int64                  `json:"version"`
	EMA         map[string]Observation `json:"ema,omitempty"`
	Context     map[string]Observation `json:"context,omitempty"`
	Assessments map[string]Assessment  `json:"assessments,omitempty"`
	Preferences Preferences            `json:"preferences"`
	// Prompts holds recent deliveries, oldest first (bounded).
	Prompts []Prompt `json:"prompts,omitempty"`
	// Decisions holds the times of recent decisions, oldest first (bounded).
	Decisions []time.Time `json:"decisions,omitempty"`
	// Engagement holds recent engagement reports, oldest first (bounded).
	Engagement []Engagement `json:"engagement,omitempty"`
	// Budget holds today's randomised points of budgeted factors.
	Budget []BudgetEntry `json:"budget,omitempty"`
}

// BudgetEntry is one available, randomised decision time of a budgeted
// factor: what budgeted randomisation needs of the day so far.
type BudgetEntry struct {
	Factor  string  `json:"f"`
	Date    string  `json:"d"` // participant-local date
	Stratum string  `json:"s,omitempty"`
	T       int     `json:"t"`
	Rho     float64 `json:"p"`
	Treated bool    `json:"a,omitempty"`
}

// Actions.
const (
	ActionDeliver = "deliver"
	ActionNone    = "none"
	ActionSafety  = "safety"
)

// FactorDraw is one factor's level in a decision. For a within-person factor
// it records the probability used and the draw; for a between-person factor
// the level assigned at enrolment.
type FactorDraw struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Level int    `json:"level"`
	Label string `json:"label"`
	// Probability is the clipped P(level 1) used for the draw.
	Probability *float64 `json:"probability,omitempty"`
	// Proposed is the unclipped probability from the policy, when it gave one.
	Proposed *float64 `json:"proposed,omitempty"`
	Source   string   `json:"source,omitempty"`
	Draw     *float64 `json:"draw,omitempty"`
	// Budget explains a budgeted probability.
	Budget *BudgetDraw `json:"budget,omitempty"`
	// Plugin records the probability provider's answer (probability_source:
	// plugin): its unclipped value, version, and the fallback if one applied.
	Plugin *PluginCall `json:"plugin,omitempty"`
}

// BudgetDraw records how a budgeted probability was computed: the decision
// time index t, the stratum, the treatments already used (smoothed) and the
// forecast of remaining available times.
type BudgetDraw struct {
	Stratum   string  `json:"stratum,omitempty"`
	T         int     `json:"t"`
	Used      float64 `json:"used"`
	Remaining float64 `json:"remaining"`
}

// OptionDraw records how the intervention was chosen among the candidates.
type OptionDraw struct {
	ID          string  `json:"id"`
	Probability float64 `json:"probability"`
	Draw        float64 `json:"draw"`
}

// Record is the durable record of one decision.
type Record struct {
	ID            string `json:"decision_id"`
	Study         string `json:"study"`
	Participant   string `json:"participant_id"`
	DecisionPoint string `json:"decision_point"`
	// Trigger is what opened the point: app, scheduled or event (empty in
	// records written before the trial clock: app).
	Trigger string `json:"trigger,omitempty"`
	// EventID is the event that opened an event-triggered point.
	EventID string `json:"event_id,omitempty"`
	// ScheduledAt is the instant a scheduled or triggered point was due.
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
	// Phase and StudyDay are the participant's phase and study day (day 1
	// is the local day of enrolment) at the decision.
	Phase              string                  `json:"phase,omitempty"`
	StudyDay           int                     `json:"study_day,omitempty"`
	Time               time.Time               `json:"time"`
	LocalTime          string                  `json:"local_time"`
	RecordedAt         time.Time               `json:"recorded_at"`
	ExpiresAt          time.Time               `json:"expires_at"`
	PolicyRevision     string                  `json:"policy_revision"`
	CatalogueRevision  string                  `json:"catalogue_revision"`
	Action             string                  `json:"action"`
	Reasons            []string                `json:"reasons"`
	SafetyReasons      []string                `json:"safety_reasons,omitempty"`
	Available          bool                    `json:"available"`
	UnavailableReasons []string                `json:"unavailable_reasons,omitempty"`
	Randomised         bool                    `json:"randomised"`
	Factors            []FactorDraw            `json:"factors"`
	Candidates         []Candidate             `json:"candidates,omitempty"`
	Contraindicated    []string                `json:"contraindicated,omitempty"`
	Conditions         []string                `json:"conditions,omitempty"`
	Option             *OptionDraw             `json:"option,omitempty"`
	Intervention       *interventions.Rendered `json:"intervention,omitempty"`
	Tailoring          map[string]any          `json:"tailoring,omitempty"`
	Input              json.RawMessage         `json:"input"`
	InputHash          string                  `json:"input_hash"`
	IdempotencyKey     string                  `json:"idempotency_key,omitempty"`
	LatencyMicros      int64                   `json:"latency_us"`
	// Plugins records what each enricher contributed (input.derived).
	Plugins []PluginCall `json:"plugins,omitempty"`
	// PolicyError, on a fail-safe decision, is why the policy could not
	// decide (for designers; the app sees only the fail-safe answer).
	PolicyError *PolicyProblem `json:"policy_error,omitempty"`
}

// PolicyProblem is what went wrong evaluating a policy.
type PolicyProblem struct {
	// Kind is timeout, conflict (a rule produced conflicting values), or
	// error (any other evaluation or output error).
	Kind string `json:"kind"`
	// Rule is the rule's location, file:line, when the evaluator gave it.
	Location string `json:"location,omitempty"`
	Message  string `json:"message"`
	// Safety says how the safety rule fared alone: evaluated (its reasons
	// decided), or unknown (it failed too, or there is none).
	Safety string `json:"safety"`
}

// Reasons of fail-safe decisions.
const (
	// ReasonPolicyError: the policy failed; the study's fail-safe answered.
	ReasonPolicyError = "policy_error"
	// ReasonSafetyUnknown: the safety rule could not be evaluated either;
	// the study's signposting was shown to be safe.
	ReasonSafetyUnknown = "safety_unknown"
)

// PluginCall records one plugin's contribution to a decision.
type PluginCall struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Version string `json:"version,omitempty"`
	// Value is a probability provider's unclipped value (absent when it
	// gave none).
	Value *float64 `json:"value,omitempty"`
	// Fallback is the fallback that applied (default_probability, omit,
	// defaults); empty when the plugin's answer was used.
	Fallback string `json:"fallback,omitempty"`
	// Reason says why the fallback applied: timeout, unavailable, error or
	// invalid (an answer out of range or not a JSON object).
	Reason        string `json:"reason,omitempty"`
	LatencyMicros int64  `json:"latency_us"`
}

// Plugin call outcomes (PluginObserver, and PluginCall.Reason of a fallback).
const (
	PluginOK          = "ok"
	PluginTimeout     = "timeout"
	PluginUnavailable = "unavailable"
	PluginError       = "error"
	PluginInvalid     = "invalid"
)
