package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
)

// claimOutboxSrc claims up to ARGV[3] due deliveries of one shard: their
// score becomes the lease's end. It returns member, score as it was, for
// each.
//
// KEYS: outbox. ARGV: now score, lease end score, limit.
const claimOutboxSrc = `
local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #m, 2 do redis.call('ZADD', KEYS[1], ARGV[2], m[i]) end
return m
`

// saveDeliverySrc replaces a stored delivery log; it returns 0 if there is
// none.
//
// KEYS: delivery logs. ARGV: decision id, delivery JSON.
const saveDeliverySrc = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`

// outboxMember is a delivery's member in its shard's outbox and dead
// letters.
func outboxMember(participant, decisionID string) string {
	return participant + "\x00" + decisionID
}

func isDead(d *trial.Delivery) bool {
	return d.Status == trial.DeliveryFailed || d.Status == trial.DeliveryExpired
}

// indexDelivery puts a stored delivery log where its status says, in its
// shard: a queued one in the outbox (with nx, only if it is not there: a
// claim's lease is kept), a failed or expired one in the dead letters, and
// takes it out of the others. The delivery log itself is written first, so
// that a crash in between leaves a log that Requeue repairs, never an
// outbox entry without its log.
func (s *Store) indexDelivery(ctx context.Context, d *trial.Delivery, nx bool) error {
	if !d.Terminal() {
		if err := s.register(ctx, d.Study); err != nil {
			return err
		}
	}
	sk := s.clockShard(d.Study, d.Participant)
	m := outboxMember(d.Participant, d.DecisionID)
	_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		switch {
		case !d.Terminal() && nx:
			pipe.ZAddNX(ctx, sk.outbox(), redis.Z{Score: scoreFloat(d.NextAttempt), Member: m})
		case !d.Terminal():
			pipe.ZAdd(ctx, sk.outbox(), redis.Z{Score: scoreFloat(d.NextAttempt), Member: m})
		default:
			pipe.ZRem(ctx, sk.outbox(), m)
		}
		if isDead(d) {
			pipe.ZAdd(ctx, sk.dead(), redis.Z{Score: scoreFloat(d.FailedAt), Member: m})
		} else {
			pipe.ZRem(ctx, sk.dead(), m)
		}
		return nil
	})
	return err
}

// scoreFloat is score as a float64 (exact: microseconds).
func scoreFloat(t time.Time) float64 {
	f, _ := strconv.ParseFloat(score(t), 64)
	return f
}

// ClaimDeliveries claims up to limit due queued deliveries of every study
// (trial.Outbox): it counts the due deliveries of every shard, claims from
// the shards that have some with one script each (pipelined), and reads
// the claimed delivery logs from their participants' slots. An outbox
// entry whose log is gone (erased) or terminal is dropped. The NextAttempt
// of a claimed delivery is its outbox score (to the microsecond): the log
// keeps the NextAttempt it was saved with.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*trial.Delivery, error) {
	what := "claiming deliveries"
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	if limit <= 0 {
		return nil, nil
	}
	shards, err := s.clockShards(ctx)
	if err != nil {
		return nil, s.fail(what, err)
	}
	nowScore := score(now)
	pick, counts, err := s.allot(ctx, shards, shardKeys.outbox, nowScore, limit)
	if err != nil {
		return nil, s.fail(what, err)
	}
	calls := make([]call, len(pick))
	for i, sh := range pick {
		calls[i] = call{s.sc.claimOutbox, []string{sh.keys.outbox()}, []any{nowScore, score(now.Add(lease)), counts[i]}}
	}
	var claimed []outboxEntry
	for i, cmd := range s.eval(ctx, calls...) {
		res, err := cmd.StringSlice()
		if err != nil {
			return nil, s.fail(what, err)
		}
		for j := 0; j+1 < len(res); j += 2 {
			p, id, ok := strings.Cut(res[j], "\x00")
			at, err := scoreTime(res[j+1])
			if !ok || err != nil {
				return nil, fmt.Errorf("%s: malformed outbox entry %q", what, res[j])
			}
			claimed = append(claimed, outboxEntry{shard: pick[i], participant: p, decision: id, score: at})
		}
	}
	out, err := s.claimedLogs(ctx, claimed)
	if err != nil {
		return nil, s.fail(what, err)
	}
	s.up()
	return out, nil
}

// outboxEntry is a claimed outbox entry.
type outboxEntry struct {
	shard                 shardRef
	participant, decision string
	score                 time.Time
}

// claimedLogs reads the delivery logs of claimed outbox entries (one HGET
// each, pipelined) and drops the entries whose log is gone or terminal.
func (s *Store) claimedLogs(ctx context.Context, claimed []outboxEntry) ([]*trial.Delivery, error) {
	if len(claimed) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(claimed))
	if _, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, c := range claimed {
			cmds[i] = pipe.HGet(ctx, s.k.participant(c.shard.study, c.participant).deliveries(), c.decision)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var (
		out   []*trial.Delivery
		stale []outboxEntry
	)
	for i, c := range claimed {
		doc, err := cmds[i].Result()
		if errors.Is(err, redis.Nil) {
			stale = append(stale, c)
			continue
		}
		if err != nil {
			return nil, err
		}
		d := &trial.Delivery{}
		if err := json.Unmarshal([]byte(doc), d); err != nil {
			return nil, fmt.Errorf("decoding delivery of decision %s: %w", c.decision, err)
		}
		if d.Terminal() {
			stale = append(stale, c)
			continue
		}
		withScore(d, c.score)
		out = append(out, d)
	}
	if len(stale) > 0 {
		_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, c := range stale {
				pipe.ZRem(ctx, c.shard.keys.outbox(), outboxMember(c.participant, c.decision))
			}
			return nil
		})
	}
	return out, nil
}

// withScore sets a queued delivery's NextAttempt to its outbox score
// unless the stored one is that to the microsecond (then it is kept
// exactly).
func withScore(d *trial.Delivery, at time.Time) {
	if !at.IsZero() && d.NextAttempt.UnixMicro() != at.UnixMicro() {
		d.NextAttempt = at
	}
}

// SaveDelivery stores an attempt's outcome (trial.Outbox): the log in the
// participant's slot, then its outbox and dead-letter entries.
// ErrNotFound if the decision has no delivery log (e.g. the participant
// was erased).
func (s *Store) SaveDelivery(ctx context.Context, d *trial.Delivery) error {
	what := fmt.Sprintf("saving delivery of decision %s in study %s", d.DecisionID, d.Study)
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	doc, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	pk := s.k.participant(d.Study, d.Participant)
	n, err := s.eval(ctx, call{s.sc.saveDelivery, []string{pk.deliveries()}, []any{d.DecisionID, doc}})[0].Int()
	if err != nil {
		return s.fail(what, err)
	}
	if n == 0 {
		s.up()
		return fmt.Errorf("%s: %w", what, trial.ErrNotFound)
	}
	return s.check(what, s.indexDelivery(ctx, d, false))
}

// Delivery returns a decision's delivery log (trial.Outbox); a claimed
// one's NextAttempt is its lease's end.
func (s *Store) Delivery(ctx context.Context, study, participant, decisionID string) (*trial.Delivery, error) {
	what := "reading a delivery in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	var (
		doc *redis.StringCmd
		sc  *redis.FloatCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		doc = pipe.HGet(ctx, s.k.participant(study, participant).deliveries(), decisionID)
		sc = pipe.ZScore(ctx, s.clockShard(study, participant).outbox(), outboxMember(participant, decisionID))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail(what, err)
	}
	s.up()
	if errors.Is(doc.Err(), redis.Nil) {
		return nil, fmt.Errorf("delivery of decision %s in study %s: %w", decisionID, study, trial.ErrNotFound)
	}
	d := &trial.Delivery{}
	if err := json.Unmarshal([]byte(doc.Val()), d); err != nil {
		return nil, fmt.Errorf("%s: decoding delivery of decision %s: %w", what, decisionID, err)
	}
	if !d.Terminal() && sc.Err() == nil {
		withScore(d, floatTime(sc.Val()))
	}
	return d, nil
}

// Requeue puts a stored, queued delivery in the outbox if it is not there
// (after a crash between a commit and its outbox entry); a claimed one
// keeps its lease (trial.Outbox).
//
// First it puts the committed decision in the study-wide index and the
// decision log if it is not there: on Cluster an engine that dies between
// its commit and its index write leaves the decision out of both, and then
// the delivery could not find its decision (it would fail as erased) and
// the study-wide listing would miss it. The trial clock's retry of the
// point, which replays the decision, calls Requeue and so repairs it.
func (s *Store) Requeue(ctx context.Context, study, participant, decisionID string) error {
	what := "requeueing a delivery in study " + study
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	if err := s.reindexDecision(ctx, study, participant, decisionID); err != nil {
		return s.fail(what, err)
	}
	doc, err := s.rdb.HGet(ctx, s.k.participant(study, participant).deliveries(), decisionID).Result()
	if errors.Is(err, redis.Nil) {
		s.up()
		return fmt.Errorf("delivery of decision %s in study %s: %w", decisionID, study, trial.ErrNotFound)
	}
	if err != nil {
		return s.fail(what, err)
	}
	d := &trial.Delivery{}
	if err := json.Unmarshal([]byte(doc), d); err != nil {
		return fmt.Errorf("%s: decoding delivery of decision %s: %w", what, decisionID, err)
	}
	return s.check(what, s.indexDelivery(ctx, d, true))
}

// reindexDecision writes the study-wide index and log entry of a committed
// decision (the index script is idempotent and appends to the log only
// once); nothing if the decision is not committed.
func (s *Store) reindexDecision(ctx context.Context, study, participant, id string) error {
	doc, err := s.rdb.HGet(ctx, s.k.participant(study, participant).records(), id).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	rec, err := decodeRecord(doc)
	if err != nil {
		return err
	}
	return s.eval(ctx, s.indexCall(study, participant, id, timeKey(rec.Time)))[0].Err()
}

// DeadLetters lists a study's failed and expired deliveries by (FailedAt,
// id) (trial.Outbox): the first limit entries of each shard by score and
// those tied with the last of them, read from their participants' slots,
// sorted, cut to limit.
func (s *Store) DeadLetters(ctx context.Context, study string, limit int) ([]*trial.Delivery, error) {
	what := "listing dead letters of study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	members, err := s.deadMembers(ctx, study, limit)
	if err != nil {
		return nil, s.fail(what, err)
	}
	cmds := make([]*redis.StringCmd, len(members))
	if _, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, m := range members {
			p, id, _ := strings.Cut(m, "\x00")
			cmds[i] = pipe.HGet(ctx, s.k.participant(study, p).deliveries(), id)
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail(what, err)
	}
	s.up()
	var out []*trial.Delivery
	for _, c := range cmds {
		if c.Err() != nil {
			continue // erased meanwhile
		}
		d := &trial.Delivery{}
		if err := json.Unmarshal([]byte(c.Val()), d); err != nil {
			return nil, fmt.Errorf("%s: decoding a delivery: %w", what, err)
		}
		if isDead(d) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *trial.Delivery) int {
		if c := a.FailedAt.Compare(b.FailedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// deadMembers reads, from every shard of study, the first limit dead
// letters by score and any tied with the last of them (all with limit <=
// 0): a superset of the study's first limit by (FailedAt, id).
func (s *Store) deadMembers(ctx context.Context, study string, limit int) ([]string, error) {
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit) - 1
	}
	cmds := make([]*redis.ZSliceCmd, s.opts.LogShards)
	if _, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for n := range cmds {
			cmds[n] = pipe.ZRangeWithScores(ctx, s.k.shard(study, n).dead(), 0, stop)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var (
		out  []string
		ties []*redis.StringSliceCmd
	)
	if _, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for n, c := range cmds {
			zs := c.Val()
			for _, z := range zs {
				out = append(out, z.Member.(string))
			}
			if limit > 0 && len(zs) == limit {
				last := strconv.FormatFloat(zs[len(zs)-1].Score, 'f', -1, 64)
				ties = append(ties, pipe.ZRangeByScore(ctx, s.k.shard(study, n).dead(), &redis.ZRangeBy{Min: last, Max: last}))
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, c := range ties {
		out = append(out, c.Val()...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
