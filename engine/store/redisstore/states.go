package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
)

// Snapshot reads the participant, their state and the answer stored for
// idemKey in one pipelined round trip.
func (s *Store) Snapshot(ctx context.Context, study, participant, idemKey string) (*trial.Snapshot, error) {
	what := "reading snapshot in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	pk := s.k.participant(study, participant)
	for attempt := 0; ; attempt++ {
		var (
			doc  *redis.SliceCmd
			idem *redis.StringCmd
		)
		_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			doc = pipe.HMGet(ctx, pk.doc(), "p", "s", "v")
			if idemKey != "" {
				idem = pipe.Get(ctx, pk.idem(idemKey))
			}
			return nil
		}) // errors are in the commands; a missing key is redis.Nil
		err := doc.Err()
		if err == nil && idem != nil && !errors.Is(idem.Err(), redis.Nil) {
			err = idem.Err()
		}
		if err != nil {
			return nil, s.fail(what, err)
		}
		s.up()
		vals := doc.Val()
		pdoc, _ := vals[0].(string)
		if pdoc == "" {
			if attempt == 0 {
				found, err := s.repair(ctx, study, participant)
				if err != nil {
					return nil, s.fail(what, err)
				}
				if found != "" {
					continue
				}
			}
			return nil, fmt.Errorf("snapshot in study %s: %w", study, trial.ErrNotFound)
		}
		sdoc, _ := vals[1].(string)
		version, err := parseVersion(vals[2])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		snap := &trial.Snapshot{}
		snap.Participant, snap.State = s.cache.get(pk.base, pdoc, sdoc, version)
		if snap.Participant == nil || snap.State == nil {
			var p *trial.Participant
			if snap.Participant == nil {
				if p, err = decodeParticipant(pdoc); err != nil {
					return nil, fmt.Errorf("%s: %w", what, err)
				}
				snap.Participant = p
			}
			var st *trial.State
			if snap.State == nil {
				if st, err = decodeState(sdoc, version); err != nil {
					return nil, fmt.Errorf("%s: %w", what, err)
				}
				snap.State = st
			}
			s.cache.put(pk.base, pdoc, p, sdoc, st)
		}
		if idem != nil {
			if raw, err := idem.Bytes(); err == nil {
				e := &trial.IdempotencyEntry{}
				if err := json.Unmarshal(raw, e); err != nil {
					return nil, fmt.Errorf("%s: decoding idempotency entry: %w", what, err)
				}
				snap.Replay = e
			}
		}
		return snap, nil
	}
}

// parseVersion decodes the v field of a participant's hash; a participant
// without a state is at version 0.
func parseVersion(v any) (int64, error) {
	str, ok := v.(string)
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decoding state version %q: %w", str, err)
	}
	return n, nil
}

// decodeState decodes a state document ("" is the empty state) at version.
func decodeState(doc string, version int64) (*trial.State, error) {
	st := &trial.State{}
	if doc != "" {
		if err := json.Unmarshal([]byte(doc), st); err != nil {
			return nil, fmt.Errorf("decoding state: %w", err)
		}
	}
	st.Version = version
	return st, nil
}

// AppendEvents stores the events whose ids are new for the participant and
// the state apply makes of them: it reads the state and which ids are known
// in one round trip, calls apply, and stores events, ids and state with a
// script that checks the state version is still the one read, starting over
// (and calling apply again, on the newer state) if it is not. apply is not
// called, and the version does not change, when no event is new. A known id
// sent with other content fails with *trial.EventConflictError before
// anything is written (checkKnownEvents).
func (s *Store) AppendEvents(ctx context.Context, study, participant string, events []trial.Event, apply func(st *trial.State, fresh []trial.Event) error) (int, error) {
	what := "appending events in study " + study
	if s.closed.Load() {
		return 0, fmt.Errorf("%s: %w", what, errClosed)
	}
	ids := make([]string, len(events))
	for i := range events {
		if events[i].ID == "" {
			return 0, fmt.Errorf("%s: event %d has no id", what, i)
		}
		if strings.ContainsRune(events[i].ID, 0) {
			return 0, fmt.Errorf("%s: event %d's id contains a NUL character", what, i)
		}
		ids[i] = events[i].ID
	}
	// Encode once; members sort by (time, id).
	members := make([]string, len(events))
	for i := range events {
		ev := events[i]
		doc, err := json.Marshal(&ev)
		if err != nil {
			return 0, fmt.Errorf("%s: encoding event %s: %w", what, ev.ID, err)
		}
		members[i] = timeKey(ev.Time) + ev.ID + "\x00" + string(doc)
	}
	pk := s.k.participant(study, participant)
	tok := token()
	repaired := false
	for attempt := 0; attempt < s.opts.AppendAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return 0, fmt.Errorf("%s: %w", what, err)
			}
		}
		var (
			doc   *redis.SliceCmd
			known *redis.BoolSliceCmd
		)
		_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			doc = pipe.HMGet(ctx, pk.doc(), "p", "s", "v")
			if len(ids) > 0 {
				args := make([]any, len(ids))
				for i, id := range ids {
					args[i] = id
				}
				known = pipe.SMIsMember(ctx, pk.eventIDs(), args...)
			}
			return nil
		})
		if err != nil {
			return 0, s.fail(what, err)
		}
		s.up()
		vals := doc.Val()
		if p, _ := vals[0].(string); p == "" {
			if !repaired {
				repaired = true
				found, err := s.repair(ctx, study, participant)
				if err != nil {
					return 0, s.fail(what, err)
				}
				if found != "" {
					attempt--
					continue
				}
			}
			return 0, fmt.Errorf("%s: %w", what, trial.ErrNotFound)
		}
		var isKnown []bool
		if known != nil {
			isKnown = known.Val()
		}
		if err := s.checkKnownEvents(ctx, pk.events(), events, isKnown); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		var (
			fresh []trial.Event
			args  []any
			seen  = map[string]int{} // id -> index in events
		)
		for i, ev := range events {
			if first, dup := seen[ev.ID]; dup {
				if !trial.SameEventContent(&events[first], &ev) {
					return 0, fmt.Errorf("%s: %w", what, &trial.EventConflictError{ID: ev.ID})
				}
				continue
			}
			seen[ev.ID] = i
			if isKnown[i] {
				continue
			}
			fresh = append(fresh, ev)
			args = append(args, ev.ID, members[i])
		}
		if len(fresh) == 0 {
			return 0, nil
		}
		sdoc, _ := vals[1].(string)
		version, err := parseVersion(vals[2])
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		st, err := decodeState(sdoc, version)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		read := st.Version
		if apply != nil {
			if err := apply(st, fresh); err != nil {
				return 0, fmt.Errorf("%s: applying events to state: %w", what, err)
			}
		}
		st.Version = read + 1
		stDoc, err := st.AppendJSON(make([]byte, 0, 4096))
		if err != nil {
			return 0, fmt.Errorf("%s: encoding state: %w", what, err)
		}
		args = append([]any{read, stDoc, st.Version, tok}, args...)
		res, err := s.eval(ctx, call{s.sc.append, []string{pk.doc(), pk.eventIDs(), pk.events()}, args})[0].Text()
		if err != nil {
			return 0, s.fail(what, err)
		}
		switch res {
		case "ok":
			s.cache.put(pk.base, "", nil, string(stDoc), st)
			return len(fresh), nil
		case "conflict":
			continue
		case "notfound":
			return 0, fmt.Errorf("%s: %w", what, trial.ErrNotFound)
		default:
			return 0, fmt.Errorf("%s: unexpected reply %q", what, res)
		}
	}
	return 0, fmt.Errorf("%s: %w after %d attempts", what, trial.ErrConflict, s.opts.AppendAttempts)
}

// checkKnownEvents checks that each event whose id is known (stored
// already) says what the stored one says, reading the stored ones in one
// round trip: an event's member starts with the key of its time, so the
// stored one is among the members of that microsecond unless its time
// differs. It returns a *trial.EventConflictError for the first that does
// not. Stored events never change (erasure removes them all), and a
// concurrent append of a new id is caught by the append script's version
// check, so the answer holds when the script runs.
func (s *Store) checkKnownEvents(ctx context.Context, key string, events []trial.Event, known []bool) error {
	var idx []int
	for i, k := range known {
		if k {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	cmds := make([]*redis.StringSliceCmd, len(idx))
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for j, i := range idx {
			t := events[i].Time.Truncate(time.Microsecond)
			cmds[j] = pipe.ZRangeByLex(ctx, key, &redis.ZRangeBy{Min: "[" + timeKey(t), Max: "(" + timeKey(t.Add(time.Microsecond))})
		}
		return nil
	})
	if err != nil {
		return s.fail("reading stored events", err)
	}
	for j, i := range idx {
		old, err := findEvent(cmds[j].Val(), events[i].ID)
		if err != nil {
			return err
		}
		if old == nil || !trial.SameEventContent(old, &events[i]) {
			return &trial.EventConflictError{ID: events[i].ID}
		}
	}
	return nil
}

// findEvent decodes the event with this id among events members (nil if
// none has it).
func findEvent(members []string, id string) (*trial.Event, error) {
	for _, m := range members {
		mid, doc, ok := strings.Cut(m[min(timeKeyLen, len(m)):], "\x00")
		if !ok || mid != id {
			continue
		}
		ev := &trial.Event{}
		if err := json.Unmarshal([]byte(doc), ev); err != nil {
			return nil, fmt.Errorf("decoding stored event %s: %w", id, err)
		}
		return ev, nil
	}
	return nil, nil
}

// backoff sleeps a little longer with every attempt, with jitter, so that
// writers contending for one participant spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(attempt, 10))*int64(200*time.Microsecond) + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// eventsPage is how many events Events reads per round trip.
const eventsPage = 1000

// Events lists a participant's events in (time, id) order, times in UTC, a
// page per round trip. An unknown participant has none.
func (s *Store) Events(ctx context.Context, study, participant string) ([]trial.Event, error) {
	what := "listing events in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	key := s.k.participant(study, participant).events()
	var out []trial.Event
	for lo := "-"; ; {
		members, err := s.rdb.ZRangeByLex(ctx, key, &redis.ZRangeBy{Min: lo, Max: "+", Count: eventsPage}).Result()
		if err != nil {
			return nil, s.fail(what, err)
		}
		s.up()
		for _, m := range members {
			_, doc, ok := strings.Cut(m[min(timeKeyLen, len(m)):], "\x00")
			if !ok {
				return nil, fmt.Errorf("%s: malformed event entry", what)
			}
			var ev trial.Event
			if err := json.Unmarshal([]byte(doc), &ev); err != nil {
				return nil, fmt.Errorf("%s: decoding event: %w", what, err)
			}
			ev.Time, ev.ReceivedAt = utc(ev.Time), utc(ev.ReceivedAt)
			out = append(out, ev)
		}
		if len(members) < eventsPage {
			return out, nil
		}
		lo = "(" + members[len(members)-1]
	}
}

// utc returns t in UTC, keeping the zero time as it is.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
