package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Lua scripts. Each touches only keys of one hash tag, declared in KEYS, so
// it runs on Redis Cluster. Scripts that write are safe to run twice (the
// client retries a command whose reply was lost): a repeated run reports the
// outcome of the first.

// commitSrc is one decision's commit.
//
// KEYS: participant doc, records, records by time, abandoned decisions,
// delivery logs[, idempotency key]. ARGV: record id, record JSON, time
// member, state JSON ("" for none), expected version, new version,
// idempotency entry JSON, its TTL in ms, delivery log JSON ("" for none).
const commitSrc = `
if redis.call('HEXISTS', KEYS[1], 'p') == 0 then return 'notfound' end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
  if old == ARGV[2] then return 'ok' end
  return 'exists'
end
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then return 'abandoned' end
if KEYS[6] and redis.call('EXISTS', KEYS[6]) == 1 then return 'replay' end
if ARGV[4] ~= '' then
  if (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[5] then return 'conflict' end
  redis.call('HSET', KEYS[1], 's', ARGV[4], 'v', ARGV[6])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[9]) end
if KEYS[6] then
  if tonumber(ARGV[8]) > 0 then
    redis.call('SET', KEYS[6], ARGV[7], 'PX', ARGV[8])
  else
    redis.call('SET', KEYS[6], ARGV[7])
  end
end
return 'ok'
`

// indexSrc adds a decision to its shard of the study-wide index and, unless
// the index already names it (a resent script, a retried commit, Reindex),
// appends it to the shard's log. Returns 1 if it appended, else 0.
//
// KEYS: shard records by time, record owners, log. ARGV: time key, record
// id, participant.
const indexSrc = `
redis.call('ZADD', KEYS[1], 0, ARGV[1] .. ARGV[2] .. '\0' .. ARGV[3])
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
local sid = redis.call('XADD', KEYS[3], '*', 'd', ARGV[2], 'p', ARGV[3], 't', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. '\0' .. sid)
return 1
`

// unindexSrc removes what indexSrc added, for a decision that is not and
// will not be committed: its index entry, its owner entry and its log
// entry. With ARGV[4] = "" (a commit that failed) it removes the log entry
// the owner entry names, if the owner is the participant; with a log entry
// id (the log reader dropping an abandoned entry) it removes that entry,
// and the owner entry only if it names that entry.
//
// KEYS: shard records by time, record owners, log. ARGV: time key, record
// id, participant, log entry id or "".
const unindexSrc = `
redis.call('ZREM', KEYS[1], ARGV[1] .. ARGV[2] .. '\0' .. ARGV[3])
local v = redis.call('HGET', KEYS[2], ARGV[2])
if v then
  local sep = string.find(v, '\0', 1, true)
  if sep and string.sub(v, 1, sep - 1) == ARGV[3] then
    local sid = string.sub(v, sep + 1)
    if ARGV[4] == '' or ARGV[4] == sid then
      redis.call('XDEL', KEYS[3], sid)
      redis.call('HDEL', KEYS[2], ARGV[2])
    end
  end
end
if ARGV[4] ~= '' then redis.call('XDEL', KEYS[3], ARGV[4]) end
return 1
`

// fenceSrc settles a logged decision whose record the log reader did not
// find within the grace period: it returns the record if it has been
// committed by now, else marks the decision abandoned (so that commitSrc
// refuses it from now on) and returns false. Either way the answer is
// final.
//
// KEYS: participant records, abandoned decisions. ARGV: record id.
const fenceSrc = `
local r = redis.call('HGET', KEYS[1], ARGV[1])
if r then return r end
redis.call('SADD', KEYS[2], ARGV[1])
return false
`

// trimSrc trims a log shard up to what every consumer group has
// acknowledged: below the oldest entry pending in any group, or, for a
// group with nothing pending, up to its last delivered entry. Nothing is
// trimmed if the named group does not exist on the shard (it returns -1),
// and a shard without groups is not trimmed. Returns {trimmed, bound}.
//
// KEYS: log. ARGV: group.
const trimSrc = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local function split(id)
  local d = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, d - 1)), tonumber(string.sub(id, d + 1)), string.sub(id, 1, d - 1)
end
local function less(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  return am < bm or (am == bm and as < bs)
end
local bound
local found = false
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then found = true end
  local b
  if f['pending'] > 0 then
    b = redis.call('XPENDING', KEYS[1], f['name'])[2]
  else
    local _, seq, ms = split(f['last-delivered-id'])
    b = ms .. '-' .. string.format('%d', seq + 1)
  end
  if not bound or less(b, bound) then bound = b end
end
if not found then return {-1, ''} end
return {redis.call('XTRIM', KEYS[1], 'MINID', bound), bound}
`

// appendSrc stores new events and the state they led to if the state
// version is still the one read.
//
// KEYS: participant doc, event ids, events. ARGV: expected version, new
// state JSON, new version, append token, then (id, member) pairs.
const appendSrc = `
if redis.call('HEXISTS', KEYS[1], 'p') == 0 then return 'notfound' end
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then
  if v == ARGV[3] and redis.call('HGET', KEYS[1], 'a') == ARGV[4] then return 'ok' end
  return 'conflict'
end
for i = 5, #ARGV, 2 do
  redis.call('SADD', KEYS[2], ARGV[i])
  redis.call('ZADD', KEYS[3], 0, ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 's', ARGV[2], 'v', ARGV[3], 'a', ARGV[4])
return 'ok'
`

// reserveSrc reserves the next sequence number of a stratum for one
// participant: the smallest given-back number, else the counter's next.
// Expired reservations of other participants are given back first.
//
// KEYS: seq counters, reservations, free seqs, register. ARGV: participant,
// stratum, token, lease in ms and, optionally, the time in Unix ms (else
// the server's). Returns {'exists', doc}, {'busy'} (another caller holds an
// unexpired reservation for the participant) or {'reserved', seq}.
const reserveSrc = `
local doc = redis.call('HGET', KEYS[4], ARGV[1])
if doc then return {'exists', doc} end
local now
if ARGV[5] then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function giveBack(stratum, seq)
  redis.call('ZADD', KEYS[3], 0, stratum .. '\0' .. string.format('%020d', seq))
end
local mine
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local r = cjson.decode(all[i + 1])
  if all[i] == ARGV[1] then
    mine = r
  elseif r.d < now then
    giveBack(r.s, r.q)
    redis.call('HDEL', KEYS[2], all[i])
  end
end
local seq
if mine then
  if mine.t ~= ARGV[3] and mine.d >= now then return {'busy'} end
  if mine.s == ARGV[2] then seq = mine.q else giveBack(mine.s, mine.q) end
end
if not seq then
  local f = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. ARGV[2] .. '\0', '(' .. ARGV[2] .. '\1', 'LIMIT', 0, 1)
  if #f > 0 then
    redis.call('ZREM', KEYS[3], f[1])
    seq = tonumber(string.sub(f[1], #ARGV[2] + 2))
  else
    seq = redis.call('HINCRBY', KEYS[1], ARGV[2], 1) - 1
  end
end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({t = ARGV[3], s = ARGV[2], q = seq, d = now + tonumber(ARGV[4])}))
return {'reserved', seq}
`

// enrolSrc registers a participant under the caller's reservation.
//
// KEYS: reservations, register, enrolment order, enrolment counter. ARGV:
// participant, token, participant JSON. Returns {'ok'}, {'exists', doc} or
// {'lost'} (the reservation expired and was taken).
const enrolSrc = `
local doc = redis.call('HGET', KEYS[2], ARGV[1])
if doc then
  if doc == ARGV[3] then return {'ok'} end
  return {'exists', doc}
end
local r = redis.call('HGET', KEYS[1], ARGV[1])
if not r or cjson.decode(r).t ~= ARGV[2] then return {'lost'} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return {'ok'}
`

// releaseSrc gives back the caller's reservation.
//
// KEYS: reservations, free seqs. ARGV: participant, token.
const releaseSrc = `
local r = redis.call('HGET', KEYS[1], ARGV[1])
if r then
  local x = cjson.decode(r)
  if x.t == ARGV[2] then
    redis.call('ZADD', KEYS[2], 0, x.s .. '\0' .. string.format('%020d', x.q))
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
return 1
`

// listSrc reads up to ARGV[2] records of one participant from lexical bound
// ARGV[1] on. KEYS: records by time, records. Returns the last member read
// followed by the records (false where a record is missing).
const listSrc = `
local m = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
if #m == 0 then return {} end
local ids = {}
for i, v in ipairs(m) do ids[i] = string.sub(v, 17) end
local recs = redis.call('HMGET', KEYS[2], unpack(ids))
table.insert(recs, 1, m[#m])
return recs
`

// participantsSrc reads the docs of the participants ranked ARGV[1] to
// ARGV[2] in enrolment order. KEYS: enrolment order, register.
const participantsSrc = `
local ids = redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2])
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
`

// scripts are the store's loaded scripts.
type scripts struct {
	commit, index, unindex, fence, trim, append, reserve, enrol, release, list, participants *redis.Script

	// The trial clock's (schedule.go, outbox.go, devices.go).
	touch, claimDue, complete, claimOutbox, saveDelivery *redis.Script
	putDevice, swapParticipant, reregister               *redis.Script
}

func newScripts() scripts {
	return scripts{
		commit:       redis.NewScript(commitSrc),
		index:        redis.NewScript(indexSrc),
		unindex:      redis.NewScript(unindexSrc),
		fence:        redis.NewScript(fenceSrc),
		trim:         redis.NewScript(trimSrc),
		append:       redis.NewScript(appendSrc),
		reserve:      redis.NewScript(reserveSrc),
		enrol:        redis.NewScript(enrolSrc),
		release:      redis.NewScript(releaseSrc),
		list:         redis.NewScript(listSrc),
		participants: redis.NewScript(participantsSrc),

		touch:           redis.NewScript(touchSrc),
		claimDue:        redis.NewScript(claimDueSrc),
		complete:        redis.NewScript(completeSrc),
		claimOutbox:     redis.NewScript(claimOutboxSrc),
		saveDelivery:    redis.NewScript(saveDeliverySrc),
		putDevice:       redis.NewScript(putDeviceSrc),
		swapParticipant: redis.NewScript(swapParticipantSrc),
		reregister:      redis.NewScript(reregisterSrc),
	}
}

// call is one script invocation.
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

// eval runs calls in one pipeline (one round trip per node involved) by
// digest, and reruns with the source any that the server did not know
// (after a restart or failover).
func (s *Store) eval(ctx context.Context, calls ...call) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	if len(calls) == 1 {
		c := calls[0]
		cmds[0] = c.script.Run(ctx, s.rdb, c.keys, c.args...)
		return cmds
	}
	pipe := s.rdb.Pipeline()
	for i, c := range calls {
		cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // errors are in the commands
	for i, c := range calls {
		if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
			cmds[i] = c.script.Eval(ctx, s.rdb, c.keys, c.args...)
		}
	}
	return cmds
}
