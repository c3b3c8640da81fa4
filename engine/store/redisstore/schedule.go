package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
)

var _ trial.Clock = (*Store)(nil)

// touchSrc inserts a schedule entry, or lowers its At (the cursor and the
// lease are kept).
//
// KEYS: due, due entries. ARGV: participant, at key, from key, at score.
const touchSrc = `
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ')
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  return 1
end
local at, from, lease = string.match(v, '^(%d*) (%d*) (%d*)$')
if ARGV[2] < at then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. from .. ' ' .. lease)
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
end
return 1
`

// claimDueSrc claims up to ARGV[4] due entries of one shard: their At (and
// lease) become the lease's end. It returns participant, entry as it was,
// for each.
//
// KEYS: due, due entries. ARGV: now score, lease end score, lease end
// key, limit.
const claimDueSrc = `
local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, p in ipairs(m) do
  local v = redis.call('HGET', KEYS[2], p)
  if v then
    local at, from = string.match(v, '^(%d*) (%d*)')
    redis.call('HSET', KEYS[2], p, ARGV[3] .. ' ' .. from .. ' ' .. ARGV[3])
    redis.call('ZADD', KEYS[1], ARGV[2], p)
    out[#out + 1] = p
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[1], p)
  end
end
return out
`

// completeSrc ends a claim: the cursor becomes from; At becomes next if the
// entry is as the claim left it (At = the claim's lease), else the earlier
// of At and next; an empty next removes an entry the claim left as it was.
// An entry removed meanwhile stays removed.
//
// KEYS: due, due entries. ARGV: participant, from key, lease key, next key
// ("" for none), next score.
const completeSrc = `
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return 0 end
local at, from, lease = string.match(v, '^(%d*) (%d*) (%d*)$')
if at == ARGV[3] then
  if ARGV[4] == '' then
    redis.call('HDEL', KEYS[2], ARGV[1])
    redis.call('ZREM', KEYS[1], ARGV[1])
    return 1
  end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4] .. ' ' .. ARGV[2] .. ' ')
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
  return 1
end
if ARGV[4] ~= '' and ARGV[4] < at then
  at = ARGV[4]
  redis.call('ZADD', KEYS[1], ARGV[5], ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[1], at .. ' ' .. ARGV[2] .. ' ' .. lease)
return 1
`

// clockShard is the log shard of a participant, whose keys hold their
// schedule entry and outbox entries.
func (s *Store) clockShard(study, participant string) shardKeys {
	return s.k.shard(study, shardOf(participant, s.opts.LogShards))
}

// register adds study to the studies the claims visit, once per store.
func (s *Store) register(ctx context.Context, study string) error {
	if _, ok := s.clockStudies.Load(study); ok {
		return nil
	}
	if err := s.rdb.SAdd(ctx, s.k.studies(), study).Err(); err != nil {
		return err
	}
	s.clockStudies.Store(study, struct{}{})
	return nil
}

// Touch inserts the participant's schedule entry or lowers its At
// (trial.Schedule).
func (s *Store) Touch(ctx context.Context, study, participant string, at, from time.Time) error {
	what := "scheduling participant in study " + study
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	if err := s.register(ctx, study); err != nil {
		return s.fail(what, err)
	}
	sk := s.clockShard(study, participant)
	err := s.eval(ctx, call{s.sc.touch, []string{sk.due(), sk.dueEntries()}, []any{participant, clockKey(at, false), clockKey(from, true), score(at)}})[0].Err()
	return s.check(what, err)
}

// shardRef is one shard of one study.
type shardRef struct {
	study string
	keys  shardKeys
}

// clockShards lists the shards of every study with trial clock data,
// shard by shard (so that consecutive shards are of different studies),
// starting at a rotating offset so that claimers spread over them.
func (s *Store) clockShards(ctx context.Context) ([]shardRef, error) {
	studies, err := s.rdb.SMembers(ctx, s.k.studies()).Result()
	if err != nil {
		return nil, err
	}
	all := make([]shardRef, 0, len(studies)*s.opts.LogShards)
	for n := range s.opts.LogShards {
		for _, st := range studies {
			all = append(all, shardRef{st, s.k.shard(st, n)})
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	start := int(s.clockRotate.Add(1) % uint32(len(all)))
	return append(all[start:], all[:start]...), nil
}

// allot counts the entries of key scored up to max in every shard (one
// pipelined round trip) and shares limit among the shards that have some,
// in order: it returns the shards to claim from and how many from each.
func (s *Store) allot(ctx context.Context, shards []shardRef, key func(shardKeys) string, max string, limit int) ([]shardRef, []int, error) {
	cmds := make([]*redis.IntCmd, len(shards))
	if _, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, sh := range shards {
			cmds[i] = pipe.ZCount(ctx, key(sh.keys), "-inf", max)
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	var (
		pick []shardRef
		n    []int
	)
	for i, c := range cmds {
		if limit == 0 {
			break
		}
		if k := int(min(c.Val(), int64(limit))); k > 0 {
			pick, n = append(pick, shards[i]), append(n, k)
			limit -= k
		}
	}
	return pick, n, nil
}

// ClaimDue claims up to limit due entries of every study (trial.Schedule):
// it counts the due entries of every shard, then claims from the shards
// that have some with one script each (pipelined). Entries are in At order
// within a shard, not across shards. Claiming compares times to the
// microsecond.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]trial.Due, error) {
	what := "claiming due schedule entries"
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
	pick, counts, err := s.allot(ctx, shards, shardKeys.due, nowScore, limit)
	if err != nil {
		return nil, s.fail(what, err)
	}
	until := now.Add(lease)
	untilScore, untilKey := score(until), clockKey(until, false)
	calls := make([]call, len(pick))
	for i, sh := range pick {
		calls[i] = call{s.sc.claimDue, []string{sh.keys.due(), sh.keys.dueEntries()}, []any{nowScore, untilScore, untilKey, counts[i]}}
	}
	var out []trial.Due
	for i, cmd := range s.eval(ctx, calls...) {
		res, err := cmd.StringSlice()
		if err != nil {
			// Entries claimed by the failed call are due again when the
			// lease ends.
			return nil, s.fail(what, err)
		}
		for j := 0; j+1 < len(res); j += 2 {
			at, from, _, err := parseEntry(res[j+1])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			out = append(out, trial.Due{Study: pick[i].study, Participant: res[j], At: at, From: from, Lease: until})
		}
	}
	s.up()
	return out, nil
}

// parseEntry decodes a schedule entry's "AT FROM LEASE".
func parseEntry(v string) (at, from, lease time.Time, err error) {
	f := strings.Split(v, " ")
	if len(f) != 3 {
		return at, from, lease, fmt.Errorf("malformed schedule entry %q", v)
	}
	if at, err = fromClockKey(f[0]); err == nil {
		if from, err = fromClockKey(f[1]); err == nil {
			lease, err = fromClockKey(f[2])
		}
	}
	return at, from, lease, err
}

// Complete ends a claim (trial.Schedule).
func (s *Store) Complete(ctx context.Context, d trial.Due, from, next time.Time) error {
	what := "completing a schedule entry in study " + d.Study
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	sk := s.clockShard(d.Study, d.Participant)
	nextKey := ""
	if !next.IsZero() {
		nextKey = clockKey(next, false)
	}
	err := s.eval(ctx, call{s.sc.complete, []string{sk.due(), sk.dueEntries()}, []any{d.Participant, clockKey(from, true), clockKey(d.Lease, true), nextKey, score(next)}})[0].Err()
	return s.check(what, err)
}

// Unschedule removes the participant's schedule entry (trial.Schedule).
func (s *Store) Unschedule(ctx context.Context, study, participant string) error {
	what := "unscheduling participant in study " + study
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	return s.check(what, s.unschedule(ctx, study, participant))
}

func (s *Store) unschedule(ctx context.Context, study, participant string) error {
	sk := s.clockShard(study, participant)
	_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HDel(ctx, sk.dueEntries(), participant)
		pipe.ZRem(ctx, sk.due(), participant)
		return nil
	})
	return err
}

// ScheduleEntry returns one schedule entry or ErrNotFound (trial.Schedule).
func (s *Store) ScheduleEntry(ctx context.Context, study, participant string) (*trial.Due, error) {
	what := "reading a schedule entry in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	v, err := s.rdb.HGet(ctx, s.clockShard(study, participant).dueEntries(), participant).Result()
	if errors.Is(err, redis.Nil) {
		s.up()
		return nil, fmt.Errorf("schedule entry of a participant in study %s: %w", study, trial.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(what, err)
	}
	s.up()
	at, from, lease, err := parseEntry(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &trial.Due{Study: study, Participant: participant, At: at, From: from, Lease: lease}, nil
}

// scoreTime decodes a score that score wrote.
func scoreTime(v string) (time.Time, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("malformed score %q", v)
	}
	return floatTime(f), nil
}

// floatTime decodes a score; -inf is the zero time.
func floatTime(f float64) time.Time {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return time.Time{}
	}
	return time.UnixMicro(int64(f)).UTC()
}
