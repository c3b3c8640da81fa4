package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
)

// CommitDecision stores the record, the new state and the idempotency entry
// with one script on the participant's slot, and the study-wide index entry
// with a second script in the same pipeline (see "Round trips and
// atomicity" in the package documentation). The script checks, in this
// order, that the participant exists (engine.ErrNotFound), that the
// idempotency key is unused (engine.ErrIdempotencyReplay) and that the state
// version is still c.State.Version-1 (engine.ErrConflict).
func (s *Store) CommitDecision(ctx context.Context, c *engine.Commit) error {
	if err := validateCommit(c); err != nil {
		return err
	}
	rec := c.Record
	what := "committing decision in study " + rec.Study
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("%s: encoding decision record: %w", what, err)
	}
	var stateJSON, idemJSON []byte
	var expected, next int64
	if c.State != nil {
		if stateJSON, err = json.Marshal(c.State); err != nil {
			return fmt.Errorf("%s: encoding state: %w", what, err)
		}
		next = c.State.Version
		expected = next - 1
	}
	pk := s.k.participant(rec.Study, rec.Participant)
	keys := []string{pk.doc(), pk.records(), pk.recordsByTime()}
	if c.Idempotency != nil {
		if idemJSON, err = json.Marshal(c.Idempotency); err != nil {
			return fmt.Errorf("%s: encoding idempotency entry: %w", what, err)
		}
		keys = append(keys, pk.idem(c.Idempotency.Key))
	}
	tk := timeKey(rec.Time)
	commit := call{s.sc.commit, keys, []any{rec.ID, recJSON, tk + rec.ID, stateJSON, expected, next, idemJSON, s.idemTTL}}
	index := s.indexCall(rec.Study, tk+rec.ID+"\x00"+rec.Participant, rec.ID, rec.Participant)

	repaired := false
	for {
		cmds := s.eval(ctx, index, commit)
		res, err := cmds[1].Text()
		if err != nil {
			// The commit's outcome is unknown; if it did not happen, the
			// index entry is skipped by readers.
			return s.fail(what, err)
		}
		s.up()
		switch res {
		case "ok":
			if c.State != nil {
				s.cache.put(pk.base, "", nil, string(stateJSON), c.State)
			}
			if cmds[0].Err() != nil {
				s.retryIndex(ctx, index, rec)
			}
			return nil
		case "notfound":
			if !repaired {
				repaired = true
				found, err := s.repair(ctx, rec.Study, rec.Participant)
				if err != nil {
					return s.fail(what, err)
				}
				if found != "" {
					continue
				}
			}
			s.unindex(ctx, index)
			return fmt.Errorf("%s: %w", what, engine.ErrNotFound)
		case "replay":
			s.unindex(ctx, index)
			return fmt.Errorf("%s: %w", what, engine.ErrIdempotencyReplay)
		case "conflict":
			s.unindex(ctx, index)
			return fmt.Errorf("%s: %w", what, engine.ErrConflict)
		case "exists":
			return fmt.Errorf("%s: decision %s is already stored with other contents", what, rec.ID)
		default:
			return fmt.Errorf("%s: unexpected reply %q", what, res)
		}
	}
}

// indexCall is the script call that adds a record to the study-wide index.
func (s *Store) indexCall(study, member, id, participant string) call {
	sk := s.k.study(study)
	return call{s.sc.index, []string{sk.recordsByTime(), sk.recordOwners()}, []any{member, id, participant}}
}

// unindex removes the index entry of a commit that failed. Failing to is
// harmless (readers skip entries without a record), so errors are dropped.
func (s *Store) unindex(ctx context.Context, index call) {
	c := index
	c.script = s.sc.unindex
	_ = s.eval(ctx, c)
}

// retryIndex retries the study-wide index write of a committed decision
// once (without making the caller wait long: the decision is durable), then
// logs that Reindex is needed.
func (s *Store) retryIndex(ctx context.Context, index call, rec *engine.Record) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 250*time.Millisecond)
	defer cancel()
	err := s.eval(rctx, index)[0].Err()
	if err == nil {
		return
	}
	s.log.Error("decision committed, but the study-wide index could not be updated: Decision and study-wide listings miss it until Reindex runs",
		zap.String("study", rec.Study), zap.String("decision_id", rec.ID), zap.Error(err))
}

// validateCommit rejects commits that cannot be stored meaningfully.
func validateCommit(c *engine.Commit) error {
	switch {
	case c == nil || c.Record == nil:
		return errors.New("committing decision: no record")
	case c.Record.ID == "" || c.Record.Study == "" || c.Record.Participant == "":
		return errors.New("committing decision: the record needs a decision id, study and participant id")
	case strings.ContainsRune(c.Record.ID, 0) || strings.ContainsRune(c.Record.Participant, 0):
		return fmt.Errorf("committing decision in study %s: the decision or participant id contains a NUL character", c.Record.Study)
	case c.Record.Time.IsZero():
		return fmt.Errorf("committing decision in study %s: the record has no time", c.Record.Study)
	case c.Idempotency != nil && c.Idempotency.Key == "":
		return fmt.Errorf("committing decision in study %s: the idempotency entry has no key", c.Record.Study)
	case c.State != nil && c.State.Version < 1:
		return fmt.Errorf("committing decision in study %s: new state version %d, want the version read plus one", c.Record.Study, c.State.Version)
	}
	return nil
}

// Decision returns one record or engine.ErrNotFound: the study-wide index
// names the participant, whose hash has the record.
func (s *Store) Decision(ctx context.Context, study, id string) (*engine.Record, error) {
	what := "reading decision in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	notFound := fmt.Errorf("decision %s in study %s: %w", id, study, engine.ErrNotFound)
	participant, err := s.rdb.HGet(ctx, s.k.study(study).recordOwners(), id).Result()
	if errors.Is(err, redis.Nil) {
		s.up()
		return nil, notFound
	}
	if err != nil {
		return nil, s.fail(what, err)
	}
	doc, err := s.rdb.HGet(ctx, s.k.participant(study, participant).records(), id).Result()
	if errors.Is(err, redis.Nil) {
		s.up()
		return nil, notFound // indexed ahead of a commit that has not happened
	}
	if err != nil {
		return nil, s.fail(what, err)
	}
	s.up()
	return decodeRecord(doc)
}

// listPage is how many index entries a listing reads per round trip.
const listPage = 500

// ListDecisions lists records in (time, id) order: one participant's from
// their own index, a study's from the study-wide index.
func (s *Store) ListDecisions(ctx context.Context, q engine.DecisionQuery) ([]*engine.Record, error) {
	what := "listing decisions of study " + q.Study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	var (
		out []*engine.Record
		err error
	)
	if q.Participant != "" {
		out, err = s.listParticipant(ctx, q)
	} else {
		out, err = s.listStudy(ctx, q)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// lowerBound is the ZRANGEBYLEX minimum for q. Participant index members
// are timekey+id; study index members are timekey+id+NUL+participant, so
// "after id" there means from timekey+id+"\x01" on.
func lowerBound(q engine.DecisionQuery, studyWide bool) string {
	lo, inclusive := "", true
	if !q.Since.IsZero() {
		lo = timeKey(q.Since)
	}
	if !q.AfterTime.IsZero() || q.AfterID != "" {
		a, incl := timeKey(q.AfterTime)+q.AfterID, false
		if studyWide {
			a, incl = a+"\x01", true
		}
		if a > lo || a == lo && !incl {
			lo, inclusive = a, incl
		}
	}
	switch {
	case lo == "":
		return "-"
	case inclusive:
		return "[" + lo
	default:
		return "(" + lo
	}
}

// pageSize is how many entries to read next.
func pageSize(q engine.DecisionQuery, have int) int {
	if q.Limit > 0 {
		return min(listPage, q.Limit-have)
	}
	return listPage
}

func (s *Store) listParticipant(ctx context.Context, q engine.DecisionQuery) ([]*engine.Record, error) {
	pk := s.k.participant(q.Study, q.Participant)
	var out []*engine.Record
	lo := lowerBound(q, false)
	for {
		n := pageSize(q, len(out))
		res, err := s.eval(ctx, call{s.sc.list, []string{pk.recordsByTime(), pk.records()}, []any{lo, n}})[0].Slice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.fail("reading records", err)
		}
		s.up()
		if len(res) == 0 {
			return out, nil
		}
		for _, r := range res[1:] {
			if doc, ok := r.(string); ok {
				rec, err := decodeRecord(doc)
				if err != nil {
					return nil, err
				}
				out = append(out, rec)
			}
		}
		if len(res)-1 < n || q.Limit > 0 && len(out) >= q.Limit {
			return out, nil
		}
		lo = "(" + res[0].(string)
	}
}

func (s *Store) listStudy(ctx context.Context, q engine.DecisionQuery) ([]*engine.Record, error) {
	sk := s.k.study(q.Study)
	var out []*engine.Record
	lo := lowerBound(q, true)
	for {
		n := pageSize(q, len(out))
		members, err := s.rdb.ZRangeByLex(ctx, sk.recordsByTime(), &redis.ZRangeBy{Min: lo, Max: "+", Count: int64(n)}).Result()
		if err != nil {
			return nil, s.fail("reading the study's decision index", err)
		}
		if len(members) == 0 {
			s.up()
			return out, nil
		}
		// One HMGET per participant, pipelined (on Cluster, one round trip
		// per node, in parallel).
		type entry struct {
			id   string
			cmd  *redis.SliceCmd
			slot int
		}
		entries := make([]entry, len(members))
		byParticipant := map[string][]int{}
		var order []string
		for i, m := range members {
			idp := m[min(timeKeyLen, len(m)):]
			id, participant, ok := strings.Cut(idp, "\x00")
			if !ok {
				return nil, fmt.Errorf("malformed decision index entry")
			}
			entries[i].id = id
			if _, seen := byParticipant[participant]; !seen {
				order = append(order, participant)
			}
			byParticipant[participant] = append(byParticipant[participant], i)
		}
		_, err = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, participant := range order {
				idx := byParticipant[participant]
				fields := make([]string, len(idx))
				for j, i := range idx {
					fields[j] = entries[i].id
				}
				cmd := pipe.HMGet(ctx, s.k.participant(q.Study, participant).records(), fields...)
				for j, i := range idx {
					entries[i].cmd, entries[i].slot = cmd, j
				}
			}
			return nil
		})
		if err != nil {
			return nil, s.fail("reading records", err)
		}
		s.up()
		for _, e := range entries {
			if doc, ok := e.cmd.Val()[e.slot].(string); ok {
				rec, err := decodeRecord(doc)
				if err != nil {
					return nil, err
				}
				out = append(out, rec)
				if q.Limit > 0 && len(out) >= q.Limit {
					return out, nil
				}
			}
		}
		if len(members) < n {
			return out, nil
		}
		lo = "(" + members[len(members)-1]
	}
}

// Reindex rebuilds the study-wide decision index of study from the
// participants' own indexes, for after a commit whose index write failed
// (logged as such). It is idempotent and safe to run while the study is in
// use. It returns how many records it indexed.
func (s *Store) Reindex(ctx context.Context, study string) (int, error) {
	what := "reindexing decisions of study " + study
	participants, err := s.Participants(ctx, study)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	n := 0
	for _, p := range participants {
		members, err := s.rdb.ZRange(ctx, s.k.participant(study, p.ID).recordsByTime(), 0, -1).Result()
		if err != nil {
			return n, s.fail(what, err)
		}
		calls := make([]call, 0, len(members))
		for _, m := range members {
			calls = append(calls, s.indexCall(study, m+"\x00"+p.ID, m[min(timeKeyLen, len(m)):], p.ID))
		}
		for len(calls) > 0 {
			batch := calls[:min(len(calls), listPage)]
			calls = calls[len(batch):]
			for _, cmd := range s.eval(ctx, batch...) {
				if err := cmd.Err(); err != nil {
					return n, s.fail(what, err)
				}
				n++
			}
		}
	}
	s.up()
	return n, nil
}

func decodeRecord(doc string) (*engine.Record, error) {
	rec := &engine.Record{}
	if err := json.Unmarshal([]byte(doc), rec); err != nil {
		return nil, fmt.Errorf("decoding decision record: %w", err)
	}
	return rec, nil
}
