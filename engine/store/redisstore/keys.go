package redisstore

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"
)

// keys names the Redis keys of one store (see the package documentation for
// the layout). All names start with the store's key prefix.
type keys struct {
	prefix string
}

// esc escapes the characters that would break a hash tag or the separator
// between study and participant: '%', ':', '{' and '}'. Most ids contain
// none of them and are returned unchanged.
func esc(s string) string {
	if !strings.ContainsAny(s, "%:{}") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			b.WriteString("%25")
		case ':':
			b.WriteString("%3A")
		case '{':
			b.WriteString("%7B")
		case '}':
			b.WriteString("%7D")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// participantKeys are the keys of one participant; they share the hash tag
// {study:participant} and so one cluster slot.
type participantKeys struct {
	base string // prefix{study:participant}
}

func (k keys) participant(study, participant string) participantKeys {
	return participantKeys{base: k.prefix + "{" + esc(study) + ":" + esc(participant) + "}"}
}

// doc is a hash: p (participant JSON), s (state JSON), v (state version),
// a (token of the latest event append).
func (k participantKeys) doc() string { return k.base + ":p" }

// idem is the string holding the idempotency entry for key.
func (k participantKeys) idem(key string) string { return k.base + ":i:" + key }

// eventIDs is the set of the participant's event ids.
func (k participantKeys) eventIDs() string { return k.base + ":eid" }

// events is a sorted set (all scores 0, ordered by member) of
// timeKey(time) + id + "\x00" + event JSON.
func (k participantKeys) events() string { return k.base + ":ev" }

// records is a hash: decision id -> record JSON.
func (k participantKeys) records() string { return k.base + ":d" }

// recordsByTime is a sorted set (scores 0) of timeKey(time) + decision id.
func (k participantKeys) recordsByTime() string { return k.base + ":dt" }

// abandoned is a set of decision ids that the decision log gave up on (see
// fenceSrc): their commit is refused.
func (k participantKeys) abandoned() string { return k.base + ":dx" }

// deliveries is a hash: decision id -> delivery log JSON (trial.Delivery).
func (k participantKeys) deliveries() string { return k.base + ":o" }

// devices is a hash: device id -> device JSON (trial.Device).
func (k participantKeys) devices() string { return k.base + ":dv" }

// studyKeys are a study's keys; they share the hash tag {study}.
type studyKeys struct {
	base string // prefix{study}
}

func (k keys) study(study string) studyKeys {
	return studyKeys{base: k.prefix + "{" + esc(study) + "}"}
}

// erasures is a stream of erasure notices: the decision ids an erasure
// removed or anonymised (and the surrogate of anonymised ones), never the
// participant's id. Exporters that append the decision log to files read it
// to rewrite those files (cmd/jitai exportlog.go).
func (k studyKeys) erasures() string { return k.base + ":erasures" }

// pins is a hash: name -> value pinned for the study (trial.Pins).
func (k studyKeys) pins() string { return k.base + ":pins" }

// seq is a hash: stratum -> next sequence number.
func (k studyKeys) seq() string { return k.base + ":seq" }

// reservations is a hash: participant -> JSON {t: token, s: stratum, q: seq,
// d: deadline in Unix ms} of an enrolment in progress.
func (k studyKeys) reservations() string { return k.base + ":res" }

// freeSeqs is a sorted set (scores 0) of stratum + "\x00" + %020d seq:
// sequence numbers handed out but given back.
func (k studyKeys) freeSeqs() string { return k.base + ":free" }

// participants is a hash: participant -> participant JSON (the register of
// enrolments; the participant's own doc hash holds a copy).
func (k studyKeys) participants() string { return k.base + ":pdoc" }

// order is a sorted set of participants scored by enrolment order.
func (k studyKeys) order() string { return k.base + ":pord" }

// enrolled counts enrolments (the scores of order).
func (k studyKeys) enrolled() string { return k.base + ":ord" }

// shardKeys are the keys of one shard of a study's decision log and
// study-wide decision index; they share the hash tag {study#N}.
type shardKeys struct {
	base string // prefix{study#N}
}

// shard names shard n of study. The study id is escaped as in other keys
// and '#' as %23 as well, so {S#N} names exactly one (study, shard).
func (k keys) shard(study string, n int) shardKeys {
	return shardKeys{base: k.prefix + "{" + strings.ReplaceAll(esc(study), "#", "%23") + "#" + strconv.Itoa(n) + "}"}
}

// recordsByTime is a sorted set (scores 0) of timeKey(time) + decision id +
// "\x00" + participant: the shard's part of the study-wide decision index.
func (k shardKeys) recordsByTime() string { return k.base + ":dt" }

// recordOwners is a hash: decision id -> participant + "\x00" + id of the
// decision's entry in log. It says which decisions have been logged.
func (k shardKeys) recordOwners() string { return k.base + ":di" }

// log is the stream of the shard's decisions: fields d (decision id), p
// (participant) and t (timeKey of the decision time).
func (k shardKeys) log() string { return k.base + ":log" }

// due is a sorted set of the shard's participants with a schedule entry,
// scored by its At in Unix microseconds (the trial clock's queue).
func (k shardKeys) due() string { return k.base + ":due" }

// dueEntries is a hash: participant -> the schedule entry's exact times,
// "AT FROM LEASE" as clockKeys (FROM and LEASE empty for the zero time).
func (k shardKeys) dueEntries() string { return k.base + ":duec" }

// outbox is a sorted set of the shard's queued deliveries, participant +
// NUL + decision id, scored by NextAttempt in Unix microseconds.
func (k shardKeys) outbox() string { return k.base + ":outq" }

// dead is a sorted set of the shard's failed and expired deliveries,
// participant + NUL + decision id, scored by FailedAt in Unix
// microseconds (the dead-letter list).
func (k shardKeys) dead() string { return k.base + ":dead" }

// studies is a set of the studies with trial clock data (schedule entries
// or deliveries), whose shards ClaimDue and ClaimDeliveries visit.
func (k keys) studies() string { return k.prefix + "studies" }

// meta is a hash of settings that every store on this key prefix must
// share: log_shards.
func (k keys) meta() string { return k.prefix + "meta" }

// shardOf is the log shard of a participant: FNV-1a (32 bit) of the
// participant id modulo the number of shards. It must never change, or
// participants would move between shards.
func shardOf(participant string, shards int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(participant))
	return int(h.Sum32() % uint32(shards))
}

// timeKeyLen is the length of a timeKey.
const timeKeyLen = 16

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// timeKey encodes t as 16 hex digits that sort as the times do: Unix
// nanoseconds with the sign bit flipped. Times outside the int64 range
// (including the zero time) clamp to its ends.
func timeKey(t time.Time) string {
	var n int64
	switch {
	case t.Before(minNanoTime):
		n = math.MinInt64
	case t.After(maxNanoTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n)^(1<<63))
	return hex.EncodeToString(b[:])
}

// clockKeyLen is the length of a clockKey.
const clockKeyLen = 20

// clockKey encodes t as 20 decimal digits that sort as the times do (Unix
// nanoseconds with the sign bit flipped, clamped as in timeKey): the trial
// clock's scripts compare them as strings, which is exact where Lua's
// numbers are not. The zero time encodes as "" when zero means "none"
// (cursor, lease), else clamps to the smallest key.
func clockKey(t time.Time, zeroEmpty bool) string {
	if t.IsZero() && zeroEmpty {
		return ""
	}
	var n int64
	switch {
	case t.IsZero() || t.Before(minNanoTime):
		n = math.MinInt64
	case t.After(maxNanoTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return fmt.Sprintf("%020d", uint64(n)^(1<<63))
}

// fromClockKey decodes a clockKey; "" and the smallest key are the zero
// time.
func fromClockKey(k string) (time.Time, error) {
	if k == "" {
		return time.Time{}, nil
	}
	u, err := strconv.ParseUint(k, 10, 64)
	if err != nil || len(k) != clockKeyLen {
		return time.Time{}, fmt.Errorf("malformed clock key %q", k)
	}
	n := int64(u ^ (1 << 63))
	if n == math.MinInt64 {
		return time.Time{}, nil
	}
	return time.Unix(0, n).UTC(), nil
}

// score is t as a sorted-set score: Unix microseconds, which a float64
// holds exactly for the years the engine accepts (and for the zero time,
// which sorts first: due at once).
func score(t time.Time) string {
	return strconv.FormatInt(t.UnixMicro(), 10)
}
