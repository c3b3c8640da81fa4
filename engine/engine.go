package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/policies"
)

// Engine errors that callers map to answers.
var (
	// ErrUnknownStudy: no study with that id is loaded.
	ErrUnknownStudy = errors.New("unknown study")
	// ErrUnknownParticipant: the participant is not enrolled in the study.
	ErrUnknownParticipant = errors.New("unknown participant")
	// ErrIdempotencyMismatch: an idempotency key was reused for a different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrWithdrawn: the participant has withdrawn; no more decisions.
	ErrWithdrawn = errors.New("participant has withdrawn")
)

// Components are what an Engine is built from.
type Components struct {
	Store   trial.Store
	Studies []*policies.Study
	Logger  *zap.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// PolicyTimeout bounds one policy evaluation (default 2s).
	PolicyTimeout time.Duration
	// MaxClockSkew rejects decision times further than this from Now:
	// zero means DefaultMaxClockSkew, a negative value turns the check off
	// (for callers that decide at times other than now).
	MaxClockSkew time.Duration
	// NoDerivedKeys: a decision request without an idempotency key has
	// none. By default its decision point and time are its key, so that
	// asking twice at the same point and time answers one decision; a
	// caller that asks at each point and time once and should keep no
	// idempotency entries (the simulator) sets this.
	NoDerivedKeys bool
	// Rand is the randomness behind decision ids (crypto/rand when nil).
	// Draws are keyed by decision id, so a simulation that seeds Rand is
	// reproducible end to end.
	Rand io.Reader
	// Observer, if set, receives decision, policy and store measurements.
	Observer Observer
	// Loader loads a study folder on reload (policies.LoadStudy with the
	// built-in catalogue when nil); see reload.go.
	Loader StudyLoader
	// Plugins starts the plugins of each loaded study version
	// (plugins/host.Factory). Without it, a study's plugin calls all fall
	// back, and the records say so.
	Plugins PluginFactory
	// Clock tunes the trial clock (RunClock, FireDue, DeliverDue).
	Clock ClockOptions
	// Channels builds the delivery channels of each loaded study version
	// that has a delivery section (cmd/jitai wires the providers). Without
	// it, queued deliveries wait and then expire.
	Channels ChannelFactory
}

// Engine makes decisions. It is safe for concurrent use.
type Engine struct {
	store         trial.Store
	log           *zap.Logger
	now           func() time.Time
	policyTimeout time.Duration
	maxSkew       time.Duration
	noDerivedKeys bool
	studies       atomic.Pointer[map[string]*StudyRuntime]
	locks         [512]sync.Mutex
	seed          maphash.Seed
	ids           *idSource
	zones         zoneCache
	obs           Observer
	reload        *reloader        // see reload.go
	shadows       shadows          // see shadow.go
	health        healthAggregates // see health.go
	pluginFactory PluginFactory
	outcomes      outcomeWorkers
	// clock is the store's trial clock (nil if the store has none).
	clock          trial.Clock
	clockOpts      ClockOptions
	channelFactory ChannelFactory
	// regionWarned: study and region pairs already logged as lacking
	// regional crisis resources.
	regionWarned sync.Map
}

// zoneCache keeps loaded time zones: time.LoadLocation reads the zone
// database from disk on every call.
type zoneCache struct{ m sync.Map }

func (z *zoneCache) load(name string) (*time.Location, error) {
	if l, ok := z.m.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	z.m.Store(name, l)
	return l, nil
}

// New builds an engine.
func New(c Components) (*Engine, error) {
	if c.Store == nil {
		return nil, errors.New("engine needs a store")
	}
	e := &Engine{
		store:          c.Store,
		log:            c.Logger,
		now:            c.Now,
		policyTimeout:  c.PolicyTimeout,
		maxSkew:        c.MaxClockSkew,
		noDerivedKeys:  c.NoDerivedKeys,
		seed:           maphash.MakeSeed(),
		ids:            newIDSource(c.Rand),
		obs:            c.Observer,
		pluginFactory:  c.Plugins,
		clockOpts:      c.Clock,
		channelFactory: c.Channels,
	}
	e.clockOpts.setDefaults()
	if cl, ok := c.Store.(trial.Clock); ok {
		e.clock = cl
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.policyTimeout <= 0 {
		e.policyTimeout = 2 * time.Second
	}
	if e.maxSkew == 0 {
		e.maxSkew = DefaultMaxClockSkew
	}
	m := map[string]*StudyRuntime{}
	for _, s := range c.Studies {
		rt, err := e.newRuntime(s)
		if err != nil {
			for _, started := range m {
				_ = started.Close()
			}
			return nil, err
		}
		m[s.Config.ID] = rt
	}
	e.studies.Store(&m)
	e.initReload(c.Loader, m)
	return e, nil
}

// Study returns a loaded study.
func (e *Engine) Study(id string) (*StudyRuntime, bool) {
	rt, ok := (*e.studies.Load())[id]
	return rt, ok
}

// Studies lists the loaded studies by id.
func (e *Engine) Studies() []*StudyRuntime {
	m := *e.studies.Load()
	out := make([]*StudyRuntime, 0, len(m))
	for _, rt := range m {
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Config.ID < out[j].Config.ID })
	return out
}

func (e *Engine) lock(study, participant string) func() {
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.WriteString(study)
	h.WriteByte(0)
	h.WriteString(participant)
	mu := &e.locks[h.Sum64()%uint64(len(e.locks))]
	mu.Lock()
	return mu.Unlock
}

// EnrollRequest enrols a participant.
type EnrollRequest struct {
	ParticipantID string            `json:"participant_id"`
	Timezone      string            `json:"timezone"`
	Strata        map[string]string `json:"strata"`
	// Region (ISO 3166-1 alpha-2) chooses the crisis resources; Locale
	// (BCP 47) the language.
	Region string `json:"region"`
	Locale string `json:"locale"`
}

// Enroll enrols a participant, assigning between-person factor levels by
// permuted blocks within their stratum. Enrolling again returns the stored
// enrolment (created is false).
func (e *Engine) Enroll(ctx context.Context, study string, req EnrollRequest) (*trial.Participant, bool, error) {
	rt, ok := e.Study(study)
	if !ok {
		return nil, false, ErrUnknownStudy
	}
	if !trial.ValidID(req.ParticipantID) {
		return nil, false, trial.InputErrorf("participant_id", "participant_id is required: a pseudonymous id of 1-128 letters, digits or . _ : - (never a name, e-mail or phone number)")
	}
	if err := trial.CheckName("timezone", req.Timezone); err != nil {
		return nil, false, err
	}
	if err := trial.CheckStrata(req.Strata); err != nil {
		return nil, false, err
	}
	tz := req.Timezone
	if tz == "" {
		tz = rt.Config.Timezone
	}
	if _, err := e.zones.load(tz); err != nil || tz == "Local" {
		return nil, false, trial.InputErrorf("timezone", "%q is not an IANA time zone such as Europe/London", req.Timezone)
	}
	if err := rt.ValidateStrata(req.Strata); err != nil {
		return nil, false, err
	}
	if req.Region != "" && !regionRe.MatchString(req.Region) {
		return nil, false, trial.InputErrorf("region", "%q is not an ISO 3166-1 alpha-2 country code such as GB or US", req.Region)
	}
	if req.Locale != "" && !localeRe.MatchString(req.Locale) {
		return nil, false, trial.InputErrorf("locale", "%q is not a BCP 47 language tag such as en-GB", req.Locale)
	}
	p := &trial.Participant{
		Study:      study,
		ID:         req.ParticipantID,
		Timezone:   tz,
		Strata:     req.Strata,
		Stratum:    rt.StratumKey(req.Strata),
		EnrolledAt: e.now().UTC().Truncate(time.Microsecond),
		Status:     trial.StatusActive,
		Region:     req.Region,
		Locale:     req.Locale,
	}
	if err := e.pinDesign(ctx, rt); err != nil {
		return nil, false, err
	}
	got, created, err := e.store.Enroll(ctx, p, func(seq int64) error {
		rt.Assign(p, seq)
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("enrolling participant: %w", err)
	}
	if created {
		if err := e.scheduleParticipant(ctx, rt, got, time.Time{}); err != nil {
			return nil, false, err
		}
	}
	return got, created, nil
}

// Ingest validates and stores events for a participant and updates their
// state. Either every event is valid and the new ones are stored, or nothing
// is written. An event whose id is stored already with the same content is
// a duplicate; with other content the call fails with a
// *trial.EventConflictError naming it. A withdrawn participant's events
// are refused with ErrWithdrawn.
func (e *Engine) Ingest(ctx context.Context, study, participant string, events []trial.Event) (accepted, duplicates int, err error) {
	rt, ok := e.Study(study)
	if !ok {
		return 0, 0, ErrUnknownStudy
	}
	if len(events) == 0 {
		return 0, 0, trial.InputErrorf("events", "at least one event is required")
	}
	if len(events) > trial.MaxEventsPerRequest {
		return 0, 0, trial.InputErrorf("events", "at most %d events per request", trial.MaxEventsPerRequest)
	}
	p, err := e.store.Participant(ctx, study, participant)
	if err != nil {
		if errors.Is(err, trial.ErrNotFound) {
			return 0, 0, ErrUnknownParticipant
		}
		return 0, 0, fmt.Errorf("reading participant: %w", err)
	}
	if p.Status == trial.StatusWithdrawn {
		return 0, 0, ErrWithdrawn
	}
	now := e.now()
	seen := map[string]bool{}
	for i := range events {
		ev := &events[i]
		field := fmt.Sprintf("events[%d]", i)
		if err := trial.ValidateEvent(field, ev, now); err != nil {
			return 0, 0, err
		}
		if err := rt.Config.CheckEvent(field, ev); err != nil {
			return 0, 0, err
		}
		if seen[ev.ID] {
			return 0, 0, trial.InputErrorf(field+".id", "event id %q appears twice in this request", ev.ID)
		}
		seen[ev.ID] = true
		ev.Time = ev.Time.UTC().Truncate(time.Microsecond)
		ev.ReceivedAt = now.UTC().Truncate(time.Microsecond)
		if ev.Type == trial.EventEngagement {
			if err := e.checkEngagement(ctx, study, participant, field, ev); err != nil {
				return 0, 0, err
			}
		}
	}
	// Apply in time order so that "latest" means latest by event time.
	sorted := append([]trial.Event(nil), events...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	var stored []trial.Event
	n, err := e.store.AppendEvents(ctx, study, participant, sorted, func(st *trial.State, fresh []trial.Event) error {
		stored = fresh
		for i := range fresh {
			trial.ApplyEvent(st, &fresh[i])
		}
		return nil
	})
	var ce *trial.EventConflictError
	if errors.As(err, &ce) {
		// Name the event as the caller sent it.
		for i := range events {
			if events[i].ID == ce.ID {
				return 0, 0, &trial.EventConflictError{ID: ce.ID, Field: fmt.Sprintf("events[%d].id", i)}
			}
		}
		return 0, 0, &trial.EventConflictError{ID: ce.ID, Field: "events"}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("storing events: %w", err)
	}
	e.reportOutcomes(study, participant, stored)
	e.openPoints(ctx, study, participant, sorted)
	return n, len(events) - n, nil
}

func (e *Engine) checkEngagement(ctx context.Context, study, participant, field string, ev *trial.Event) error {
	var d trial.EngagementData
	_ = json.Unmarshal(ev.Data, &d)
	rec, err := e.store.Decision(ctx, study, d.DecisionID)
	if errors.Is(err, trial.ErrNotFound) || (err == nil && rec.Participant != participant) {
		return trial.InputErrorf(field+".data.decision_id", "no decision %q for this participant", d.DecisionID)
	}
	if err != nil {
		return fmt.Errorf("reading decision: %w", err)
	}
	if rec.Action != trial.ActionDeliver {
		return trial.InputErrorf(field+".data.decision_id", "decision %q delivered nothing (action %s)", d.DecisionID, rec.Action)
	}
	return nil
}

// DecideRequest asks for a decision.
type DecideRequest struct {
	DecisionPoint  string         `json:"decision_point"`
	Time           time.Time      `json:"time"`
	Context        map[string]any `json:"context"`
	IdempotencyKey string         `json:"-"`
	// Set by the trial clock: what opened the point, the event that did,
	// and the instant it was due.
	trigger     string
	eventID     string
	scheduledAt time.Time
	event       *trial.Event
}

// Answer is a decision as returned to the app. Body is the exact JSON sent
// (and replayed for a retried idempotency key).
type Answer struct {
	Body     []byte
	Record   *trial.Record
	Replayed bool
	// decisionID is the answer's decision (also for a replayed answer).
	decisionID string
}

// Response is the app-facing decision document.
type Response struct {
	DecisionID    string            `json:"decision_id"`
	Study         string            `json:"study"`
	ParticipantID string            `json:"participant_id"`
	DecisionPoint string            `json:"decision_point"`
	Time          time.Time         `json:"time"`
	Action        string            `json:"action"`
	Intervention  any               `json:"intervention,omitempty"`
	Signposting   *policies.Crisis  `json:"signposting,omitempty"`
	Components    map[string]string `json:"components,omitempty"`
	Reasons       []string          `json:"reasons"`
	ExpiresAt     time.Time         `json:"expires_at"`
	Revision      string            `json:"policy_revision"`
}

const maxAttempts = 5

// DefaultMaxClockSkew is how far a decision time may be from the engine's
// clock when Components.MaxClockSkew is zero.
const DefaultMaxClockSkew = 5 * time.Minute

// Decide runs the decision pipeline (docs/policy.md, docs/architecture.md)
// and returns the answer only after its record is durable.
func (e *Engine) Decide(ctx context.Context, study, participant string, req DecideRequest) (ans *Answer, err error) {
	start := time.Now()
	defer func() { e.observeDecision(study, ans, err, start) }()
	// The decision uses this version to the end, even if a reload swaps in
	// a newer one meanwhile (reload.go).
	rt, release, ok := e.acquire(study)
	defer release()
	if !ok {
		return nil, ErrUnknownStudy
	}
	if err := trial.CheckName("decision_point", req.DecisionPoint); err != nil {
		return nil, err
	}
	dp, ok := rt.Config.DecisionPoint(req.DecisionPoint)
	if req.DecisionPoint == "" {
		return nil, trial.InputErrorf("decision_point", "decision_point is required")
	}
	if !ok {
		return nil, trial.InputErrorf("decision_point", "study %s has no decision point %q", study, req.DecisionPoint)
	}
	if req.Time.IsZero() {
		return nil, trial.InputErrorf("time", "time is required (RFC 3339, e.g. 2026-11-21T14:00:00Z)")
	}
	if err := trial.CheckTime("time", req.Time); err != nil {
		return nil, err
	}
	if e.maxSkew > 0 {
		if now := e.now(); req.Time.Sub(now) > e.maxSkew || now.Sub(req.Time) > e.maxSkew {
			return nil, trial.InputErrorf("time", "time %s is more than %s from the server's clock (%s)", req.Time.Format(time.RFC3339Nano), e.maxSkew, now.UTC().Format(time.RFC3339))
		}
	}
	if err := checkContext(req.Context); err != nil {
		return nil, err
	}
	if req.IdempotencyKey != "" && !trial.ValidID(req.IdempotencyKey) {
		return nil, trial.InputErrorf("Idempotency-Key", "the Idempotency-Key header must be 1-128 letters, digits or . _ : -")
	}
	req.Time = req.Time.UTC().Truncate(time.Microsecond)
	reqHash, err := requestHash(&req)
	if err != nil {
		return nil, err
	}
	switch dp.Kind {
	case "scheduled":
		return e.decideScheduled(ctx, rt, dp, participant, &req)
	case "event":
		return nil, trial.InputErrorf("decision_point", "%s is an event point: it opens when the study's open rule names it on an arriving event, not on request", dp.ID)
	}
	if req.IdempotencyKey == "" && !e.noDerivedKeys {
		// The same point at the same time is the same request: asked again,
		// it answers the first decision rather than randomising twice. (A
		// scheduled point's one decision is keyed by the point itself.)
		req.IdempotencyKey = derivedIdempotencyKey(req.DecisionPoint, req.Time)
	}
	decisionID := e.ids.next(req.Time)
	return e.commitKeyed(ctx, rt, participant, req.IdempotencyKey, reqHash, func(snap *trial.Snapshot) error {
		return checkEnrolled(snap.Participant, req.Time)
	}, func(snap *trial.Snapshot) (*trial.Commit, []byte, error) {
		rec, st, body, err := e.decide(ctx, rt, dp, snap, &req, decisionID, start)
		if err != nil {
			return nil, nil, err
		}
		return &trial.Commit{Record: rec, State: st}, body, nil
	})
}

// decideScheduled answers an app's request for a scheduled point with that
// point's one decision: the recorded one, or one made now (at the point's
// instant) while its window is open, or the missed record after it.
func (e *Engine) decideScheduled(ctx context.Context, rt *StudyRuntime, dp *policies.DecisionPoint, participant string, req *DecideRequest) (*Answer, error) {
	p, err := e.store.Participant(ctx, rt.Config.ID, participant)
	if errors.Is(err, trial.ErrNotFound) {
		return nil, ErrUnknownParticipant
	}
	if err != nil {
		return nil, fmt.Errorf("reading participant: %w", err)
	}
	if err := checkEnrolled(p, req.Time); err != nil {
		return nil, err
	}
	if p.Status == trial.StatusWithdrawn {
		return nil, ErrWithdrawn
	}
	pt, loc, err := e.scheduledPoint(rt, p, dp, req.Time)
	if err != nil {
		return nil, err
	}
	return e.firePoint(ctx, rt, p, loc, pt, req.Time, req)
}

// checkEnrolled refuses a decision time before the participant's
// enrolment.
func checkEnrolled(p *trial.Participant, t time.Time) error {
	if enrolled := p.EnrolledAt; t.Before(enrolled) {
		return trial.InputErrorf("time", "time %s is before the participant's enrolment at %s", t.Format(time.RFC3339Nano), enrolled.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

func checkContext(c map[string]any) error {
	if len(c) > trial.MaxVariables {
		return trial.InputErrorf("context", "at most %d context variables", trial.MaxVariables)
	}
	for k, v := range c {
		if !trial.ValidVariable(k) {
			return trial.InputErrorf("context."+k, "context names are lower-case identifiers")
		}
		switch x := v.(type) {
		case bool:
		case float64:
			if err := trial.CheckNumber("context."+k, x); err != nil {
				return err
			}
		case json.Number:
			if err := trial.CheckContextNumber("context."+k, x); err != nil {
				return err
			}
		case string:
			if len(x) > trial.MaxStringValue {
				return trial.InputErrorf("context."+k, "context strings are at most %d characters (no free text)", trial.MaxStringValue)
			}
		default:
			return trial.InputErrorf("context."+k, "context values are numbers, booleans or short strings")
		}
	}
	return nil
}

func requestHash(req *DecideRequest) (string, error) {
	b, err := json.Marshal(struct {
		DP  string         `json:"dp"`
		T   time.Time      `json:"t"`
		Ctx map[string]any `json:"c"`
	}{req.DecisionPoint, req.Time, req.Context})
	if err != nil {
		return "", trial.InputErrorf("context", "cannot be encoded: %v", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// derivedIdempotencyKey is the idempotency key of a request that brings
// none: "t:" and the first 32 hex digits of the SHA-256 of the decision
// point and the time (a trial.ValidID).
func derivedIdempotencyKey(point string, t time.Time) string {
	sum := sha256.Sum256([]byte(point + "\x00" + t.UTC().Format(time.RFC3339Nano)))
	return "t:" + hex.EncodeToString(sum[:16])
}
