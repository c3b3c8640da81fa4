package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
)

var _ trial.Eraser = (*Store)(nil)

// Withdraw marks the participant withdrawn in their own hash and in the
// study's register, bumps their state version so that a decision in
// flight fails its version check, re-reads and sees the withdrawal, and
// removes their schedule entry, so that the clock fires no more points for
// them.
func (s *Store) Withdraw(ctx context.Context, study, participant string) (*trial.Participant, error) {
	what := "withdrawing participant in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	pk := s.k.participant(study, participant)
	doc, err := s.rdb.HGet(ctx, pk.doc(), "p").Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%s: %w", what, trial.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(what, err)
	}
	p, err := decodeParticipant(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p.Status = trial.StatusWithdrawn
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HSet(ctx, pk.doc(), "p", string(b))
		pipe.HIncrBy(ctx, pk.doc(), "v", 1)
		return nil
	}); err != nil {
		return nil, s.fail(what, err)
	}
	// Unless an erasure removed them from the register meanwhile.
	if err := s.reregister(ctx, study, participant, b); err != nil {
		return nil, s.fail(what, err)
	}
	if err := s.unschedule(ctx, study, participant); err != nil {
		return nil, s.fail(what, err)
	}
	s.up()
	return p, nil
}

// Erase deletes the participant's keys (with their devices and delivery
// logs), their entries in the study's register, their schedule entry and
// outbox and dead-letter entries, and removes or anonymises their decision
// records together with their entries in the study-wide index and the
// decision log. Anonymised
// records move to the keys of a random surrogate participant and are
// indexed and logged afresh under it (a log consumer sees them again under
// the surrogate; consumers dedupe by decision id).
//
// Erase is not one transaction (the keys live in several slots); it is
// safe to repeat after a failure until it succeeds, except that a record
// already moved to a surrogate is not found again.
func (s *Store) Erase(ctx context.Context, study, participant string, anonymise bool) (*trial.Erasure, error) {
	what := "erasing participant in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	pk := s.k.participant(study, participant)
	sk := s.k.study(study)
	shard := s.k.shard(study, shardOf(participant, s.opts.LogShards))
	var (
		exists  *redis.IntCmd
		inReg   *redis.BoolCmd
		recs    *redis.MapStringStringCmd
		byTime  *redis.StringSliceCmd
		nEvents *redis.IntCmd
		dls     *redis.StringSliceCmd
	)
	if _, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		exists = pipe.Exists(ctx, pk.doc())
		inReg = pipe.HExists(ctx, sk.participants(), participant)
		recs = pipe.HGetAll(ctx, pk.records())
		byTime = pipe.ZRange(ctx, pk.recordsByTime(), 0, -1)
		nEvents = pipe.ZCard(ctx, pk.events())
		dls = pipe.HKeys(ctx, pk.deliveries())
		return nil
	}); err != nil {
		return nil, s.fail(what, err)
	}
	if exists.Val() == 0 && !inReg.Val() {
		return nil, fmt.Errorf("%s: %w", what, trial.ErrNotFound)
	}
	res := &trial.Erasure{Anonymised: anonymise, Records: len(recs.Val()), Events: int(nEvents.Val())}
	tk := map[string]string{} // decision id -> time key
	for _, m := range byTime.Val() {
		if len(m) > timeKeyLen {
			tk[m[timeKeyLen:]] = m[:timeKeyLen]
		}
	}
	ids := make([]string, 0, len(recs.Val()))
	for id := range recs.Val() {
		ids = append(ids, id)
	}
	// Where each record sits in the study-wide index and the log.
	owners := map[string]string{}
	if len(ids) > 0 {
		vals, err := s.rdb.HMGet(ctx, shard.recordOwners(), ids...).Result()
		if err != nil {
			return nil, s.fail(what, err)
		}
		for i, v := range vals {
			if sv, ok := v.(string); ok {
				_, entry, _ := strings.Cut(sv, "\x00")
				owners[ids[i]] = entry
			}
		}
	}
	surrogate := ""
	if anonymise && len(ids) > 0 {
		surrogate = trial.NewSurrogate()
	}
	if len(ids) > 0 {
		// The notice first: an exporter rewrites its files for these ids
		// even if the erasure stops half way (it is repeated until done).
		sorted := slices.Sorted(slices.Values(ids))
		if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: sk.erasures(), Values: map[string]any{
			"ids": strings.Join(sorted, ","), "surrogate": surrogate}}).Err(); err != nil {
			return nil, s.fail(what+": writing the erasure notice", err)
		}
	}
	if surrogate != "" {
		spk := s.k.participant(study, surrogate)
		if _, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			for id, doc := range recs.Val() {
				rec, err := decodeRecord(doc)
				if err != nil {
					return fmt.Errorf("decision record %s: %w", id, err)
				}
				trial.AnonymiseRecord(rec, surrogate)
				b, err := json.Marshal(rec)
				if err != nil {
					return fmt.Errorf("decision record %s: %w", id, err)
				}
				t, ok := tk[id]
				if !ok {
					t = timeKey(rec.Time)
					tk[id] = t
				}
				pipe.HSet(ctx, spk.records(), id, string(b))
				pipe.ZAdd(ctx, spk.recordsByTime(), redis.Z{Member: t + id})
			}
			return nil
		}); err != nil {
			return nil, s.fail(what, err)
		}
	}
	// Take the records out of the study-wide index and the log.
	if len(ids) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			members := make([]any, 0, len(ids))
			var entries []string
			for _, id := range ids {
				members = append(members, tk[id]+id+"\x00"+participant)
				if e := owners[id]; e != "" {
					entries = append(entries, e)
				}
			}
			pipe.ZRem(ctx, shard.recordsByTime(), members...)
			pipe.HDel(ctx, shard.recordOwners(), ids...)
			if len(entries) > 0 {
				pipe.XDel(ctx, shard.log(), entries...)
			}
			return nil
		}); err != nil {
			return nil, s.fail(what, err)
		}
	}
	if surrogate != "" {
		calls := make([]call, 0, len(ids))
		for _, id := range ids {
			calls = append(calls, s.indexCall(study, surrogate, id, tk[id]))
		}
		for _, c := range s.eval(ctx, calls...) {
			if err := c.Err(); err != nil {
				return nil, s.fail(what+": indexing anonymised records", err)
			}
		}
	}
	if err := s.eraseClock(ctx, study, participant, dls.Val()); err != nil {
		return nil, s.fail(what, err)
	}
	idem, err := s.scanKeys(ctx, globEsc(pk.base)+":i:*")
	if err != nil {
		return nil, s.fail(what, err)
	}
	del := append([]string{pk.doc(), pk.eventIDs(), pk.events(), pk.records(), pk.recordsByTime(), pk.abandoned(), pk.deliveries(), pk.devices()}, idem...)
	if _, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, k := range del { // one DEL per key: they may sit in one slot, but need not on Cluster
			pipe.Del(ctx, k)
		}
		pipe.HDel(ctx, sk.participants(), participant)
		pipe.ZRem(ctx, sk.order(), participant)
		pipe.HDel(ctx, sk.reservations(), participant)
		return nil
	}); err != nil {
		return nil, s.fail(what, err)
	}
	s.up()
	res.Copies = s.scrub(ctx)
	return res, nil
}

// eraseClock removes the participant's schedule entry and the outbox and
// dead-letter entries of their deliveries (of the decisions ids) from their
// shard. Their delivery logs go with their keys.
func (s *Store) eraseClock(ctx context.Context, study, participant string, ids []string) error {
	sk := s.clockShard(study, participant)
	_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HDel(ctx, sk.dueEntries(), participant)
		pipe.ZRem(ctx, sk.due(), participant)
		if len(ids) > 0 {
			members := make([]any, len(ids))
			for i, id := range ids {
				members[i] = outboxMember(participant, id)
			}
			pipe.ZRem(ctx, sk.outbox(), members...)
			pipe.ZRem(ctx, sk.dead(), members...)
		}
		return nil
	})
	return err
}

// scanKeys lists the keys matching pattern (with glob characters in ids
// escaped by globEsc by the caller), on every master of a cluster.
func (s *Store) scanKeys(ctx context.Context, pattern string) ([]string, error) {
	var out []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			out = append(out, it.Val())
		}
		return it.Err()
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			var keys []string
			it := c.Scan(ctx, 0, pattern, 1000).Iterator()
			for it.Next(ctx) {
				keys = append(keys, it.Val())
			}
			mu.Lock()
			out = append(out, keys...)
			mu.Unlock()
			return it.Err()
		})
		return out, err
	}
	err := scan(ctx, s.rdb)
	return out, err
}

// globEsc escapes the characters SCAN MATCH treats specially.
func globEsc(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ErasureNotice is one erasure's notice to exporters: the decision ids it
// removed, or anonymised under Surrogate.
type ErasureNotice struct {
	// ID is the notice's stream id: read the notices after it next time.
	ID          string
	DecisionIDs []string
	// Surrogate is the participant id the records were anonymised under
	// ("" when they were removed).
	Surrogate string
}

// Erasures lists the study's erasure notices after the stream id after
// ("" for all), oldest first.
func (s *Store) Erasures(ctx context.Context, study, after string) ([]ErasureNotice, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := s.rdb.XRange(ctx, s.k.study(study).erasures(), start, "+").Result()
	if err != nil {
		return nil, s.fail("reading erasure notices of study "+study, err)
	}
	out := make([]ErasureNotice, 0, len(msgs))
	for _, m := range msgs {
		n := ErasureNotice{ID: m.ID}
		if ids, _ := m.Values["ids"].(string); ids != "" {
			n.DecisionIDs = strings.Split(ids, ",")
		}
		n.Surrogate, _ = m.Values["surrogate"].(string)
		out = append(out, n)
	}
	return out, nil
}
