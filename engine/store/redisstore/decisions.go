package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// CommitDecision stores the record, the new state, the idempotency entry
// and the delivery log with one script on the participant's slot, and the
// study-wide index entry and the decision log entry with a second script,
// on the participant's log shard, sent ahead of it in the same pipeline
// (see "Round trips and atomicity" and "Decision log" in the package
// documentation). The script
// checks, in this order, that the participant exists (trial.ErrNotFound),
// that the decision has not been given up by the log reader
// (trial.ErrUnavailable), that the idempotency key is unused
// (trial.ErrIdempotencyReplay) and that the state version is still
// c.State.Version-1 (trial.ErrConflict). A queued delivery enters its
// shard's outbox right after the commit (see "Trial clock").
func (s *Store) CommitDecision(ctx context.Context, c *trial.Commit) error {
	if err := c.Validate(); err != nil {
		return err
	}
	rec := c.Record
	what := "committing decision in study " + rec.Study
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	recJSON, err := rec.AppendJSON(make([]byte, 0, 4096))
	if err != nil {
		return fmt.Errorf("%s: encoding decision record: %w", what, err)
	}
	var stateJSON, idemJSON []byte
	var expected, next int64
	if c.State != nil {
		if stateJSON, err = c.State.AppendJSON(make([]byte, 0, 4096)); err != nil {
			return fmt.Errorf("%s: encoding state: %w", what, err)
		}
		next = c.State.Version
		expected = next - 1
	}
	pk := s.k.participant(rec.Study, rec.Participant)
	keys := []string{pk.doc(), pk.records(), pk.recordsByTime(), pk.abandoned(), pk.deliveries()}
	if c.Idempotency != nil {
		if idemJSON, err = json.Marshal(c.Idempotency); err != nil {
			return fmt.Errorf("%s: encoding idempotency entry: %w", what, err)
		}
		keys = append(keys, pk.idem(c.Idempotency.Key))
	}
	var deliveryJSON []byte
	if c.Delivery != nil {
		if deliveryJSON, err = json.Marshal(c.Delivery); err != nil {
			return fmt.Errorf("%s: encoding delivery: %w", what, err)
		}
	}
	tk := timeKey(rec.Time)
	commit := call{s.sc.commit, keys, []any{rec.ID, recJSON, tk + rec.ID, stateJSON, expected, next, idemJSON, s.idemTTL, deliveryJSON}}
	index := s.indexCall(rec.Study, rec.Participant, rec.ID, tk)

	skipIndex := s.testSkipIndex != nil && s.testSkipIndex(rec)
	repaired := false
	for {
		var cmds []*redis.Cmd
		if skipIndex {
			// As if the process died after the commit reached Redis and
			// before the index and log entry did (possible on Cluster).
			cmds = []*redis.Cmd{redis.NewCmd(ctx), s.eval(ctx, commit)[0]}
		} else {
			cmds = s.eval(ctx, index, commit)
		}
		res, err := cmds[1].Text()
		if err != nil {
			// The commit's outcome is unknown; if it did not happen, the
			// index entry is skipped by readers and the log entry is
			// settled by the log reader.
			return s.fail(what, err)
		}
		s.up()
		switch res {
		case "ok":
			if c.State != nil {
				s.cache.put(pk.base, "", nil, string(stateJSON), c.State)
			}
			if err := cmds[0].Err(); err != nil || skipIndex {
				if skipIndex {
					err = errors.New("skipped by a test")
				} else {
					err = s.retryIndex(ctx, index)
				}
				if err != nil {
					s.log.Error("decision committed, but its study-wide index and decision log entry could not be written: Decision, study-wide listings and the decision log miss it until Reindex runs",
						zap.String("study", rec.Study), zap.String("decision_id", rec.ID), zap.Error(err))
				}
			}
			if c.Delivery != nil {
				if err := s.indexDelivery(ctx, c.Delivery, true); err != nil {
					// The caller (the trial clock) retries the point: the
					// retry finds the committed decision and calls Requeue.
					return fmt.Errorf("%s: the decision is committed but its delivery is not in the outbox yet (Requeue repairs it): %w", what, s.fail(what, err))
				}
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
			return fmt.Errorf("%s: %w", what, trial.ErrNotFound)
		case "replay":
			s.unindex(ctx, index)
			return fmt.Errorf("%s: %w", what, trial.ErrIdempotencyReplay)
		case "conflict":
			s.unindex(ctx, index)
			return fmt.Errorf("%s: %w", what, trial.ErrConflict)
		case "abandoned":
			s.unindex(ctx, index)
			return fmt.Errorf("%s: decision %s was given up by the decision log reader (its commit came more than log_grace %s after its log entry) and is not stored: %w",
				what, rec.ID, s.opts.LogGrace, trial.ErrUnavailable)
		case "exists":
			return fmt.Errorf("%s: decision %s is already stored with other contents", what, rec.ID)
		default:
			return fmt.Errorf("%s: unexpected reply %q", what, res)
		}
	}
}

// indexCall is the script call that adds a decision to its shard of the
// study-wide index and to the decision log.
func (s *Store) indexCall(study, participant, id, tk string) call {
	sk := s.k.shard(study, shardOf(participant, s.opts.LogShards))
	return call{s.sc.index, []string{sk.recordsByTime(), sk.recordOwners(), sk.log()}, []any{tk, id, participant}}
}

// unindex removes the index and log entry of a commit that failed. Failing
// to is harmless (readers skip index entries without a record; the log
// reader settles log entries without one), so errors are dropped.
func (s *Store) unindex(ctx context.Context, index call) {
	c := index
	c.script = s.sc.unindex
	c.args = append(slices.Clip(c.args), "")
	_ = s.eval(ctx, c)
}

// retryIndex retries the index and log write of a committed decision once,
// without making the caller wait long (the decision is durable).
func (s *Store) retryIndex(ctx context.Context, index call) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 250*time.Millisecond)
	defer cancel()
	return s.eval(rctx, index)[0].Err()
}

// Decision returns one record or trial.ErrNotFound: the study-wide index
// (one HGET per shard, pipelined) names the participant, whose hash has the
// record.
func (s *Store) Decision(ctx context.Context, study, id string) (*trial.Record, error) {
	what := "reading decision in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	notFound := fmt.Errorf("decision %s in study %s: %w", id, study, trial.ErrNotFound)
	cmds := make([]*redis.StringCmd, s.opts.LogShards)
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for n := range cmds {
			cmds[n] = pipe.HGet(ctx, s.k.shard(study, n).recordOwners(), id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail(what, err)
	}
	participant := ""
	for _, c := range cmds {
		if v, err := c.Result(); err == nil {
			participant, _, _ = strings.Cut(v, "\x00")
			break
		}
	}
	if participant == "" {
		s.up()
		return nil, notFound
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
func (s *Store) ListDecisions(ctx context.Context, q trial.DecisionQuery) ([]*trial.Record, error) {
	what := "listing decisions of study " + q.Study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	var (
		out []*trial.Record
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
func lowerBound(q trial.DecisionQuery, studyWide bool) string {
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
func pageSize(q trial.DecisionQuery, have int) int {
	if q.Limit > 0 {
		return min(listPage, q.Limit-have)
	}
	return listPage
}

func (s *Store) listParticipant(ctx context.Context, q trial.DecisionQuery) ([]*trial.Record, error) {
	pk := s.k.participant(q.Study, q.Participant)
	var out []*trial.Record
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

// listStudy merges the shards of the study-wide index: it reads a page of
// each shard (pipelined), emits members in order while every shard that
// may have more still has some buffered, and reads each emitted record from
// its participant's hash.
func (s *Store) listStudy(ctx context.Context, q trial.DecisionQuery) ([]*trial.Record, error) {
	type cursor struct {
		key, lo string
		buf     []string
		done    bool
	}
	lo := lowerBound(q, true)
	cur := make([]cursor, s.opts.LogShards)
	for n := range cur {
		cur[n] = cursor{key: s.k.shard(q.Study, n).recordsByTime(), lo: lo}
	}
	var out []*trial.Record
	for {
		n := pageSize(q, len(out))
		var refill []int
		for i := range cur {
			if len(cur[i].buf) == 0 && !cur[i].done {
				refill = append(refill, i)
			}
		}
		if len(refill) > 0 {
			cmds := make([]*redis.StringSliceCmd, len(refill))
			_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
				for j, i := range refill {
					cmds[j] = pipe.ZRangeByLex(ctx, cur[i].key, &redis.ZRangeBy{Min: cur[i].lo, Max: "+", Count: int64(n)})
				}
				return nil
			})
			if err != nil {
				return nil, s.fail("reading the study's decision index", err)
			}
			for j, i := range refill {
				m := cmds[j].Val()
				cur[i].buf = m
				if len(m) < n {
					cur[i].done = true
				}
				if len(m) > 0 {
					cur[i].lo = "(" + m[len(m)-1]
				}
			}
		}
		// Merge up to n members.
		var members []string
		for len(members) < n {
			best, blocked := -1, false
			for i := range cur {
				if len(cur[i].buf) == 0 {
					if !cur[i].done {
						blocked = true
						break
					}
					continue
				}
				if best < 0 || cur[i].buf[0] < cur[best].buf[0] {
					best = i
				}
			}
			if blocked || best < 0 {
				break
			}
			members = append(members, cur[best].buf[0])
			cur[best].buf = cur[best].buf[1:]
		}
		if len(members) == 0 {
			finished := true
			for i := range cur {
				if len(cur[i].buf) > 0 || !cur[i].done {
					finished = false
				}
			}
			if finished {
				s.up()
				return out, nil
			}
			continue
		}
		recs, err := s.fetchIndexed(ctx, q.Study, members)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			out = append(out, rec)
			if q.Limit > 0 && len(out) >= q.Limit {
				return out, nil
			}
		}
	}
}

// fetchIndexed reads the records that study-wide index members name, in
// their order, skipping members whose record is not there: one HMGET per
// participant, pipelined (on Cluster, one round trip per node, in
// parallel).
func (s *Store) fetchIndexed(ctx context.Context, study string, members []string) ([]*trial.Record, error) {
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
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, participant := range order {
			idx := byParticipant[participant]
			fields := make([]string, len(idx))
			for j, i := range idx {
				fields[j] = entries[i].id
			}
			cmd := pipe.HMGet(ctx, s.k.participant(study, participant).records(), fields...)
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
	out := make([]*trial.Record, 0, len(entries))
	for _, e := range entries {
		if doc, ok := e.cmd.Val()[e.slot].(string); ok {
			rec, err := decodeRecord(doc)
			if err != nil {
				return nil, err
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// Reindex rebuilds the study-wide decision index of study from the
// participants' own indexes and appends to the decision log every
// committed decision the index does not name yet, for after a commit whose
// index and log write failed (logged as such) or, on Cluster, an engine
// process that died between the two. Decisions the index names are not
// appended again, so it is idempotent, and it is safe to run while the
// study is in use. It returns how many records it indexed (all of them);
// how many it appended to the log is logged.
func (s *Store) Reindex(ctx context.Context, study string) (int, error) {
	what := "reindexing decisions of study " + study
	participants, err := s.Participants(ctx, study)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	n, appended := 0, 0
	defer func() {
		if appended > 0 {
			s.log.Warn("Reindex appended decisions missing from the decision log", zap.String("study", study), zap.Int("appended", appended))
		}
	}()
	for _, p := range participants {
		members, err := s.rdb.ZRange(ctx, s.k.participant(study, p.ID).recordsByTime(), 0, -1).Result()
		if err != nil {
			return n, s.fail(what, err)
		}
		calls := make([]call, 0, len(members))
		for _, m := range members {
			if len(m) < timeKeyLen {
				continue
			}
			calls = append(calls, s.indexCall(study, p.ID, m[timeKeyLen:], m[:timeKeyLen]))
		}
		for len(calls) > 0 {
			batch := calls[:min(len(calls), listPage)]
			calls = calls[len(batch):]
			for _, cmd := range s.eval(ctx, batch...) {
				added, err := cmd.Int()
				if err != nil {
					return n, s.fail(what, err)
				}
				n++
				appended += added
			}
		}
	}
	s.up()
	return n, nil
}

func decodeRecord(doc string) (*trial.Record, error) {
	rec := &trial.Record{}
	if err := json.Unmarshal([]byte(doc), rec); err != nil {
		return nil, fmt.Errorf("decoding decision record: %w", err)
	}
	return rec, nil
}
