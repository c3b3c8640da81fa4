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
	"go.uber.org/zap"
)

// LogEntry is one committed decision read from a study's decision log.
type LogEntry struct {
	Study string
	// Group is the consumer group it was read through (Ack needs it).
	Group string
	// Shard is the log shard of the participant.
	Shard int
	// ID is the entry's id in its shard's stream (milliseconds-sequence).
	ID          string
	DecisionID  string
	Participant string
	// Record is the decision record as committed: one line of JSON.
	Record json.RawMessage
}

// Decode decodes the record.
func (e *LogEntry) Decode() (*trial.Record, error) { return decodeRecord(string(e.Record)) }

// ReadLog reads up to max committed decisions of study from its decision
// log through consumer group group as consumer, creating the group (from
// the start of the log) on every shard if it does not exist. Per shard, it
// first re-delivers the consumer's own pending entries (delivered before,
// not acknowledged), and reads new entries only from shards where it has
// none. Entries come back per shard in log order, and across shards by
// entry id (roughly commit order). Every entry returned stays pending until
// Ack; the caller acknowledges it once it has been stored for good.
//
// Before an entry is returned, its decision's committed record is read. An
// entry whose record is not there yet (its commit may be in flight) is
// held, together with the entries after it in its shard, until the record
// appears or Options.LogGrace has passed since the entry was written; then
// the decision is given up for good (its commit is refused from then on)
// and the entry is dropped. Dropped entries (given up, left by a failed
// commit, or a stale copy of one that was logged again) are acknowledged
// here and never returned. So ReadLog returns exactly the committed
// decisions, each once per group unless it is re-delivered because it was
// not acknowledged (see "Decision log" in the package documentation).
//
// An empty result means nothing is ready now, not that nothing will be.
func (s *Store) ReadLog(ctx context.Context, study, group, consumer string, max int) ([]LogEntry, error) {
	what := "reading the decision log of study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	if study == "" || group == "" || consumer == "" {
		return nil, fmt.Errorf("%s: the study, consumer group and consumer names are required", what)
	}
	if max <= 0 {
		return nil, fmt.Errorf("%s: max %d: ask for at least one entry", what, max)
	}
	for attempt := 0; ; attempt++ {
		out, err := s.readLog(ctx, study, group, consumer, max)
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOGROUP") {
			// The stream or group went away (deleted by hand): make it again.
			s.groups.Delete(study + "\x00" + group)
			continue
		}
		if err != nil {
			return nil, s.fail(what, err)
		}
		s.up()
		return out, nil
	}
}

// logCandidate is one entry read from a shard, on its way to being
// returned, held or dropped.
type logCandidate struct {
	shard                  int
	msg                    redis.XMessage
	decision, participant  string
	timeKey                string
	record                 string
	found, current, fenced bool
}

func (s *Store) readLog(ctx context.Context, study, group, consumer string, max int) ([]LogEntry, error) {
	if err := s.ensureGroups(ctx, study, group); err != nil {
		return nil, err
	}
	shards := s.opts.LogShards
	batches := make([][]redis.XMessage, shards)

	// The consumer's own pending entries first.
	pend := make([]*redis.XStreamSliceCmd, shards)
	_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for n := range pend {
			pend[n] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{s.k.shard(study, n).log(), "0"}, Count: int64(max), Block: -1})
		}
		return nil
	})
	budget := max
	exhausted := make([]bool, shards)
	for n, c := range pend {
		res, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		if len(res) > 0 && len(res[0].Messages) > 0 {
			batches[n] = res[0].Messages
			budget -= len(batches[n])
			exhausted[n] = true // no new entries behind pending ones
		}
	}

	start := int(s.rotate.Add(1))
	if budget < 0 {
		// More pending than asked for (each shard read up to max): return
		// max of them; the rest stay pending and come first next time.
		left := max
		for i := range shards {
			n := (start + i) % shards
			batches[n] = batches[n][:min(len(batches[n]), left)]
			left -= len(batches[n])
		}
	}

	// New entries from the other shards, the budget spread over them.
	for budget > 0 {
		var open []int
		for i := range shards {
			if n := (start + i) % shards; !exhausted[n] {
				open = append(open, n)
			}
		}
		if len(open) == 0 {
			break
		}
		counts := make([]int, len(open))
		for i := range open {
			counts[i] = budget / len(open)
			if i < budget%len(open) {
				counts[i]++
			}
		}
		cmds := make([]*redis.XStreamSliceCmd, len(open))
		_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, n := range open {
				if counts[i] > 0 {
					cmds[i] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{s.k.shard(study, n).log(), ">"}, Count: int64(counts[i]), Block: -1})
				}
			}
			return nil
		})
		for i, n := range open {
			if cmds[i] == nil {
				continue
			}
			res, err := cmds[i].Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return nil, err
			}
			var msgs []redis.XMessage
			if len(res) > 0 {
				msgs = res[0].Messages
			}
			batches[n] = append(batches[n], msgs...)
			budget -= len(msgs)
			if len(msgs) < counts[i] {
				exhausted[n] = true
			}
		}
	}
	return s.settle(ctx, study, group, batches)
}

// ensureGroups creates the consumer group on every shard of the study's
// log, from its start, unless this store has done so before.
func (s *Store) ensureGroups(ctx context.Context, study, group string) error {
	key := study + "\x00" + group
	if _, ok := s.groups.Load(key); ok {
		return nil
	}
	cmds := make([]*redis.StatusCmd, s.opts.LogShards)
	_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for n := range cmds {
			cmds[n] = pipe.XGroupCreateMkStream(ctx, s.k.shard(study, n).log(), group, "0")
		}
		return nil
	})
	for _, c := range cmds {
		if err := c.Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
			return fmt.Errorf("creating consumer group %q: %w", group, err)
		}
	}
	s.groups.Store(key, struct{}{})
	return nil
}

// settle decides the fate of the entries read (per shard, in log order):
// returned if their decision is committed and the entry is the one the
// index names for it, dropped (and acknowledged) if they are deleted,
// stale or given up, held (left pending, with everything after them in the
// shard) if their commit may still come.
func (s *Store) settle(ctx context.Context, study, group string, batches [][]redis.XMessage) ([]LogEntry, error) {
	var cands []*logCandidate
	for n, msgs := range batches {
		for _, m := range msgs {
			c := &logCandidate{shard: n, msg: m}
			c.decision, _ = m.Values["d"].(string)
			c.participant, _ = m.Values["p"].(string)
			c.timeKey, _ = m.Values["t"].(string)
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	valid := func(c *logCandidate) bool { return c.decision != "" && c.participant != "" }

	// The records, one HMGET per participant.
	if err := s.readRecords(ctx, study, cands, valid); err != nil {
		return nil, err
	}

	// Entries without a record older than the grace period: settle their
	// decision for good.
	var old []*logCandidate
	var now time.Time
	for _, c := range cands {
		if !valid(c) || c.found {
			continue
		}
		if now.IsZero() && s.opts.Now != nil {
			now = s.opts.Now()
		} else if now.IsZero() {
			t, err := s.rdb.Time(ctx).Result()
			if err != nil {
				return nil, err
			}
			now = t
		}
		if ms, _, ok := parseEntryID(c.msg.ID); ok && now.Sub(time.UnixMilli(int64(ms))) >= s.opts.LogGrace {
			old = append(old, c)
		}
	}
	if len(old) > 0 {
		calls := make([]call, len(old))
		for i, c := range old {
			pk := s.k.participant(study, c.participant)
			calls[i] = call{s.sc.fence, []string{pk.records(), pk.abandoned()}, []any{c.decision}}
		}
		for i, cmd := range s.eval(ctx, calls...) {
			rec, err := cmd.Text()
			switch {
			case err == nil:
				old[i].record, old[i].found = rec, true
			case errors.Is(err, redis.Nil):
				old[i].fenced = true
			default:
				return nil, err
			}
		}
	}

	// Is each found entry the one the index names for its decision?
	if err := s.checkCurrent(ctx, study, cands); err != nil {
		return nil, err
	}

	var out []LogEntry
	var drop []*logCandidate
	var unindex []call
	held := make([]bool, len(batches))
	for _, c := range cands {
		switch {
		case held[c.shard]:
		case !valid(c):
			drop = append(drop, c) // deleted (its commit failed) or malformed
		case c.found && c.current:
			out = append(out, LogEntry{Study: study, Group: group, Shard: c.shard, ID: c.msg.ID, DecisionID: c.decision, Participant: c.participant, Record: json.RawMessage(c.record)})
		case c.found:
			drop = append(drop, c) // a stale copy: the decision was logged again
		case c.fenced:
			drop = append(drop, c)
			sk := s.k.shard(study, c.shard)
			unindex = append(unindex, call{s.sc.unindex, []string{sk.recordsByTime(), sk.recordOwners(), sk.log()}, []any{c.timeKey, c.decision, c.participant, c.msg.ID}})
			s.log.Warn("decision log entry given up: its decision was not committed within log_grace",
				zap.String("study", study), zap.String("decision_id", c.decision), zap.String("participant", c.participant), zap.Duration("log_grace", s.opts.LogGrace))
		default:
			held[c.shard] = true // its commit may still come
		}
	}
	if len(unindex) > 0 {
		for _, cmd := range s.eval(ctx, unindex...) {
			if err := cmd.Err(); err != nil {
				return nil, err
			}
		}
	}
	if len(drop) > 0 {
		entries := make([]LogEntry, len(drop))
		for i, c := range drop {
			entries[i] = LogEntry{Study: study, Group: group, Shard: c.shard, ID: c.msg.ID}
		}
		if err := s.ack(ctx, entries); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b LogEntry) int {
		am, as, _ := parseEntryID(a.ID)
		bm, bs, _ := parseEntryID(b.ID)
		return cmp.Or(cmp.Compare(am, bm), cmp.Compare(as, bs), cmp.Compare(a.Shard, b.Shard))
	})
	return out, nil
}

// readRecords reads the committed record of each valid candidate.
func (s *Store) readRecords(ctx context.Context, study string, cands []*logCandidate, valid func(*logCandidate) bool) error {
	byParticipant := map[string][]*logCandidate{}
	for _, c := range cands {
		if valid(c) {
			byParticipant[c.participant] = append(byParticipant[c.participant], c)
		}
	}
	if len(byParticipant) == 0 {
		return nil
	}
	type get struct {
		cands []*logCandidate
		cmd   *redis.SliceCmd
	}
	gets := make([]get, 0, len(byParticipant))
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p, cs := range byParticipant {
			fields := make([]string, len(cs))
			for i, c := range cs {
				fields[i] = c.decision
			}
			gets = append(gets, get{cs, pipe.HMGet(ctx, s.k.participant(study, p).records(), fields...)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, g := range gets {
		for i, v := range g.cmd.Val() {
			if doc, ok := v.(string); ok {
				g.cands[i].record, g.cands[i].found = doc, true
			}
		}
	}
	return nil
}

// checkCurrent sets current on each found candidate whose decision the
// index names with this very entry. It is read after the record: once a
// decision is committed, the index entry naming its log entry is never
// removed, so a found record and a matching index entry mean the entry is
// the decision's one log entry.
func (s *Store) checkCurrent(ctx context.Context, study string, cands []*logCandidate) error {
	byShard := map[int][]*logCandidate{}
	for _, c := range cands {
		if c.found {
			byShard[c.shard] = append(byShard[c.shard], c)
		}
	}
	if len(byShard) == 0 {
		return nil
	}
	type get struct {
		cands []*logCandidate
		cmd   *redis.SliceCmd
	}
	gets := make([]get, 0, len(byShard))
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for n, cs := range byShard {
			fields := make([]string, len(cs))
			for i, c := range cs {
				fields[i] = c.decision
			}
			gets = append(gets, get{cs, pipe.HMGet(ctx, s.k.shard(study, n).recordOwners(), fields...)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, g := range gets {
		for i, v := range g.cmd.Val() {
			c := g.cands[i]
			owner, _ := v.(string)
			c.current = owner == c.participant+"\x00"+c.msg.ID
		}
	}
	return nil
}

// parseEntryID splits a stream entry id into its milliseconds and
// sequence number.
func parseEntryID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// Ack acknowledges entries that ReadLog returned, once the caller has
// stored them for good: they are not delivered to their group again, and
// Trim may remove them once every group has acknowledged them.
func (s *Store) Ack(ctx context.Context, entries []LogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	what := "acknowledging decision log entries of study " + entries[0].Study
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	if err := s.ack(ctx, entries); err != nil {
		return s.fail(what, err)
	}
	s.up()
	return nil
}

func (s *Store) ack(ctx context.Context, entries []LogEntry) error {
	type target struct {
		study, group string
		shard        int
	}
	ids := map[target][]string{}
	var order []target
	for _, e := range entries {
		if e.Study == "" || e.Group == "" || e.ID == "" {
			return errors.New("a log entry without study, group or id: acknowledge the entries ReadLog returned")
		}
		t := target{e.Study, e.Group, e.Shard}
		if _, ok := ids[t]; !ok {
			order = append(order, t)
		}
		ids[t] = append(ids[t], e.ID)
	}
	cmds := make([]*redis.IntCmd, len(order))
	_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, t := range order {
			cmds[i] = pipe.XAck(ctx, s.k.shard(t.study, t.shard).log(), t.group, ids[t]...)
		}
		return nil
	})
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Trim removes from each shard of study's decision log the entries that
// every consumer group on it has acknowledged: those older than the oldest
// entry pending in any group and no newer than any group's last delivered
// entry (XTRIM MINID, computed and applied in one script per shard, so a
// concurrent read or acknowledgement cannot slip in between). A shard
// where group does not exist, or that has no groups, is not trimmed;
// nothing is trimmed that no group has acknowledged. It returns how many
// entries it removed; it is an error if group exists on none of the
// study's shards.
func (s *Store) Trim(ctx context.Context, study, group string) (int64, error) {
	what := "trimming the decision log of study " + study
	if s.closed.Load() {
		return 0, fmt.Errorf("%s: %w", what, errClosed)
	}
	if study == "" || group == "" {
		return 0, fmt.Errorf("%s: the study and consumer group names are required", what)
	}
	calls := make([]call, s.opts.LogShards)
	for n := range calls {
		calls[n] = call{s.sc.trim, []string{s.k.shard(study, n).log()}, []any{group}}
	}
	var trimmed int64
	streams, withGroup := 0, 0
	for _, cmd := range s.eval(ctx, calls...) {
		res, err := cmd.Slice()
		if err != nil {
			return trimmed, s.fail(what, err)
		}
		n, _ := res[0].(int64)
		bound, _ := res[1].(string)
		switch {
		case n < 0:
			streams++
		case bound != "":
			streams++
			withGroup++
			trimmed += n
		}
	}
	s.up()
	if streams > 0 && withGroup == 0 {
		return 0, fmt.Errorf("%s: no consumer group %q on its log: nothing trimmed (a group is made by its first read)", what, group)
	}
	return trimmed, nil
}

// LogPending returns how many entries of study's decision log have been
// delivered to consumer in group and not acknowledged yet.
func (s *Store) LogPending(ctx context.Context, study, group, consumer string) (int64, error) {
	what := "reading the pending decision log entries of study " + study
	if s.closed.Load() {
		return 0, fmt.Errorf("%s: %w", what, errClosed)
	}
	cmds := make([]*redis.XPendingCmd, s.opts.LogShards)
	_, _ = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for n := range cmds {
			cmds[n] = pipe.XPending(ctx, s.k.shard(study, n).log(), group)
		}
		return nil
	})
	var total int64
	for _, c := range cmds {
		p, err := c.Result()
		if err != nil {
			if redis.HasErrorPrefix(err, "NOGROUP") || errors.Is(err, redis.Nil) {
				continue
			}
			return 0, s.fail(what, err)
		}
		total += p.Consumers[consumer]
	}
	s.up()
	return total, nil
}

// LogLen returns how many entries study's decision log holds (over all
// shards): what has not been trimmed yet.
func (s *Store) LogLen(ctx context.Context, study string) (int64, error) {
	what := "reading the length of the decision log of study " + study
	if s.closed.Load() {
		return 0, fmt.Errorf("%s: %w", what, errClosed)
	}
	cmds := make([]*redis.IntCmd, s.opts.LogShards)
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for n := range cmds {
			cmds[n] = pipe.XLen(ctx, s.k.shard(study, n).log())
		}
		return nil
	})
	if err != nil {
		return 0, s.fail(what, err)
	}
	var total int64
	for _, c := range cmds {
		total += c.Val()
	}
	s.up()
	return total, nil
}

// LogShards returns the number of shards of each study's decision log.
func (s *Store) LogShards() int { return s.opts.LogShards }

// StudyExists reports whether study has enrolments in this store.
func (s *Store) StudyExists(ctx context.Context, study string) (bool, error) {
	what := "looking up study " + study
	if s.closed.Load() {
		return false, fmt.Errorf("%s: %w", what, errClosed)
	}
	n, err := s.rdb.Exists(ctx, s.k.study(study).order()).Result()
	if err != nil {
		return false, s.fail(what, err)
	}
	s.up()
	return n > 0, nil
}
