// Package redisstore is the scale-out trial.Store: state, enrolments,
// idempotency entries, events and decision records in Redis (6.2 or later),
// shared by any number of stateless engine replicas, on a single server,
// behind Sentinel or on Redis Cluster.
//
// # URL forms
//
// Open takes one URL; its scheme picks the client:
//
//	redis://[user:password@]host:port[/db][?option=value...]     one server
//	rediss://...                                                 the same over TLS
//	unix://[user:password@]/path/to/redis.sock[?db=N]            one server on a Unix socket
//	redis+cluster://[user:password@]host1:port1,host2:port2[?...] Redis Cluster (seed nodes)
//	rediss+cluster://...                                         Redis Cluster over TLS
//	redis+sentinel://[user:password@]host1:port1,host2:port2/master[/db][?...]
//	                                                             Sentinel (user info and
//	                                                             hosts are the sentinels';
//	                                                             the master's credentials
//	                                                             go in ?username=&password=)
//
// Hosts without a port get 6379. A password with special characters must be
// percent-encoded. The query parameters are go-redis' (dial_timeout=2s,
// read_timeout=1s, pool_size=50, max_retries=2, ...); fields set in Options
// take precedence over them, and the defaults apply to what neither sets.
//
// # Key layout
//
// Every key starts with Options.KeyPrefix (default "jitai:"). Study and
// participant ids appear in keys with '%', ':', '{' and '}' percent-encoded,
// so S and P below are never ambiguous. Everything one decision touches
// carries the participant's hash tag {S:P} and so lives in one cluster slot:
//
//	{S:P}:p        hash: p = participant JSON, s = state JSON, v = state version,
//	               a = token of the latest event append
//	{S:P}:i:KEY    string: idempotency entry JSON for KEY (optional TTL)
//	{S:P}:eid      set: the participant's event ids
//	{S:P}:ev       sorted set, by member: timekey + event id + NUL + event JSON
//	{S:P}:d        hash: decision id -> record JSON
//	{S:P}:dt       sorted set, by member: timekey + decision id
//	{S:P}:dx       set: decision ids the log reader gave up on (their commit
//	               is refused; see "Decision log")
//	{S:P}:o        hash: decision id -> delivery log JSON (see "Trial clock")
//	{S:P}:dv       hash: device id -> device JSON (push tokens)
//
// where timekey is 16 hex digits of the time's Unix nanoseconds with the
// sign bit flipped, so that members sort by (time, id). The study-level keys
// carry the study's hash tag {S}:
//
//	{S}:pdoc       hash: participant id -> participant JSON (the register)
//	{S}:pord       sorted set: participant ids scored by enrolment order
//	{S}:ord        counter: enrolments so far (the scores of {S}:pord)
//	{S}:seq        hash: stratum -> next sequence number
//	{S}:free       sorted set, by member: stratum + NUL + seq, numbers given back
//	{S}:res        hash: participant id -> enrolment reservation in progress
//
// The study-wide decision index and the decision log are split into
// Options.LogShards shards (default 16) so that they are not one hot slot;
// participant P's decisions go to shard N = FNV-1a-32(P) mod LogShards, and
// a shard's keys carry the hash tag {S#N} ('#' in S is escaped as %23):
//
//	{S#N}:dt       sorted set, by member: timekey + decision id + NUL + participant
//	{S#N}:di       hash: decision id -> participant + NUL + id of its log entry
//	{S#N}:log      stream: one entry per decision, fields d (decision id),
//	               p (participant), t (timekey)
//	{S#N}:due      sorted set: participants with a schedule entry, scored by
//	               its At in Unix microseconds (the trial clock's queue)
//	{S#N}:duec     hash: participant -> "AT FROM LEASE", the entry's exact
//	               times as clock keys (FROM and LEASE empty when zero)
//	{S#N}:outq     sorted set: queued deliveries, participant + NUL + decision
//	               id, scored by NextAttempt in Unix microseconds (the outbox)
//	{S#N}:dead     sorted set: failed and expired deliveries, the same
//	               members, scored by FailedAt in Unix microseconds
//
// where a clock key is 20 decimal digits of Unix nanoseconds with the sign
// bit flipped (so that scripts compare times exactly, as strings). The set
// at prefix + "studies" names the studies with trial clock data, whose
// shards the claims visit.
//
// The hash at prefix + "meta" holds settings every store on the prefix must
// share (log_shards; Open refuses a store with another number, since that
// would move participants between shards). Keys written before the index
// was sharded ({S}:dt, {S}:di) are not read; Reindex builds the sharded
// index and log from the participants' own records.
//
// # Round trips and atomicity
//
// Snapshot is one pipelined round trip (HMGET of {S:P}:p and GET of the
// idempotency key). CommitDecision is one Lua script on {S:P} that checks
// that the participant exists, the decision has not been given up by the
// log reader, the idempotency key is unused (else
// trial.ErrIdempotencyReplay) and the state version is the one read (else
// trial.ErrConflict) and then writes the record, its time index entry, the
// state and the idempotency entry, all or nothing. The study-wide index
// entry and the log entry ({S#N}:dt, {S#N}:di, {S#N}:log) live in another
// slot, so they are written by a second script sent ahead of the commit in
// the same pipeline (one round trip on one server; two nodes in parallel
// on Cluster), and removed again when the commit fails. Readers of the
// study-wide index fetch each record from its participant's hash and skip
// entries whose record is not there, so an entry written ahead of its
// commit, or left behind by a client that crashed between the two, is
// never seen. The per-participant record is the durable one: if the index
// write alone fails, it is retried, and if it still fails the decision
// stays committed, the error is logged and Reindex repairs the index and
// the log; until then Decision, the study-wide listing and the log miss
// that record (the participant's own listing has it).
//
// Since the index entry is written no later than the commit, a study-wide
// listing or Decision after CommitDecision has returned sees the record.
// The study-wide listing merges the shards (a page of each, pipelined);
// Decision asks every shard's {S#N}:di in one pipelined round trip.
//
// # Decision log
//
// Every committed decision is appended to the stream of its participant's
// shard, by the index script above (which appends only if {S#N}:di does
// not name the decision yet, and records the entry's id there, in the same
// script: so a resent script, a retried commit with the same decision id
// and Reindex never append a decision twice). ReadLog, Ack and Trim read
// it through Redis consumer groups. The guarantees:
//
//   - No committed decision is missing from the log for long. The entry is
//     written before the commit on the same connection: on a single server
//     or Sentinel, a commit that happened has its entry unless the index
//     script itself failed (an error reply, such as OOM or a wrong key
//     type), which CommitDecision retries once and then logs as an error
//     naming Reindex. On Cluster the two scripts go to different nodes, so
//     also a shard node failing alone, or the engine process dying between
//     sending to the two nodes, can leave a committed decision without its
//     entry. Reindex (also `jitai export --reindex`) appends every
//     committed decision that the index does not name, once; run it after
//     such an error or an engine crash on Cluster.
//   - The log delivers only committed decisions. ReadLog reads each
//     entry's record from the participant's hash before returning it, and
//     returns it only if {S#N}:di still names this very entry (read after
//     the record, which makes it final). An entry of a commit that failed
//     is removed by CommitDecision; one left by a client that died, or
//     whose commit is still in flight, is held (with the entries after it
//     in its shard, so that order is kept) until its record appears or
//     Options.LogGrace (default 30s) has passed since it was written. Then
//     a script on the participant's slot settles it for good: it returns
//     the record if the commit happened after all, else adds the decision
//     to {S:P}:dx, which makes the commit script refuse it from then on
//     (the engine answers 503, the client retries as a new decision), and
//     the entry is dropped. No timing assumption is needed for safety;
//     LogGrace only bounds how long a shard can be held up.
//   - Each committed decision is delivered to each consumer group once,
//     plus re-deliveries of what was not acknowledged: ReadLog returns a
//     consumer's own pending (delivered, not acknowledged) entries first.
//     Delivery is at least once; a consumer that must not duplicate skips
//     decision ids it has already stored (as `jitai export --format jsonl`
//     does with the end of its file). Entries pending for a consumer name
//     that never reads again stay pending (and untrimmed) for good: keep
//     consumer names stable.
//   - Trim removes only what every consumer group on the shard has
//     acknowledged: below the oldest pending entry of any group, and no
//     further than any group's last delivered entry (computed and applied
//     in one script per shard). A shard without groups is never trimmed.
//     A group created by ReadLog starts at the beginning of what is still
//     in the log, so create every group that needs the whole log before
//     the first Trim.
//
// Per shard, entries are in the order their scripts ran (commit order for
// one participant); ReadLog orders entries of different shards by entry id
// (the shard node's clock). Entries appended by Reindex come after newer
// ones. The log is as durable as the rest of the data (see "Durability").
//
// AppendEvents reads the state and which event ids are known in one round
// trip, calls apply, then stores the new events, their ids and the new state
// with a script that checks the version read (and starts over, up to
// Options.AppendAttempts times, if it changed).
//
// Decoding the state JSON is most of a snapshot's cost, so decoded
// participants and states are kept in memory (Options.CacheParticipants)
// and reused when the document read from Redis hashes to the cached one;
// every read still goes to Redis, so other replicas' writes are seen.
//
// # Trial clock
//
// The schedule (trial.Schedule) and the outbox (trial.Outbox) are sorted
// sets in the log shards of the participants, so that neither is one hot
// slot. A claim (ClaimDue, ClaimDeliveries) reads the study registry,
// counts the due entries of every shard of every study (one pipelined
// round trip), and claims from the shards that have some, starting at a
// rotating shard, with one script per shard (pipelined): the script takes
// the due members and moves their score to the end of the lease in one
// step, so no two claimers get the same entry until the lease ends, and an
// engine that dies holding a claim loses nothing. Order is by time within
// a shard, not across shards. Scores are in microseconds: an entry due
// within the same microsecond as now counts as due.
//
// A decision's delivery log is written by the commit script, with the
// record, in the participant's slot; a queued delivery then enters its
// shard's outbox with a second command (ZADD NX) right after the commit.
// If the engine dies between the two, the log is queued but not in the
// outbox; Requeue repairs that (and does nothing to a delivery already in
// the outbox, so a claim's lease stands). SaveDelivery writes the log
// first, then moves the outbox and dead-letter entries; a claim drops an
// outbox entry whose log is gone (erased) or terminal. The log keeps the
// NextAttempt it was saved with; Delivery and ClaimDeliveries report a
// claimed delivery's NextAttempt as its outbox score.
//
// # Enrolment
//
// Sequence numbers are per (study, stratum) in {S}:seq, while a participant
// lives under {S:P}; the two are in different slots. Enroll therefore
// reserves a number for the participant with a script on {S} (an unexpired
// reservation by another caller for the same participant makes it wait;
// numbers given back are reused first), calls assign, and registers the
// participant in {S}:pdoc with a second script on {S} that checks the
// reservation is still its own; the register is the authority. It then
// copies the participant to {S:P}:p. If assign fails (or panics), the
// number is given back, so numbers stay dense. If the process dies after
// reserving, the reservation expires after Options.EnrollLease and its
// number is given back to the next enrolment in that study. If it dies
// after registering but before the copy, the next Enroll, Participant,
// Snapshot, AppendEvents or CommitDecision for that participant makes the
// copy from the register. An enrolment that outlives its lease (a process
// paused for longer than the lease) loses its reservation and starts over,
// calling assign again.
//
// # Failures
//
// Connection failures, timeouts and the server's transient errors (LOADING,
// READONLY, CLUSTERDOWN, MASTERDOWN, TRYAGAIN, BUSY, OOM, ...) are returned
// wrapping trial.ErrUnavailable. The client retries a command a few times
// (Options.MaxRetries) and makes one dial attempt per try, so calls fail
// fast while Redis is down; it reconnects by itself when Redis is back. A
// change between reachable and unreachable is logged once, not per request
// (go-redis' own per-dial log lines go where RouteClientLogs sends them).
// Scripts that write are idempotent, so a command resent after a lost reply
// reports the first run's outcome.
//
// # Durability
//
// CommitDecision returns once the Redis master has applied the commit
// script. What survives a crash of the Redis host is what its persistence
// keeps: with appendonly yes and appendfsync always, nothing answered is
// lost (every write waits for fsync); with appendfsync everysec, the usual
// choice, up to about a second of answered decisions can be lost; with RDB
// snapshots alone, everything since the last snapshot. Replication is
// asynchronous, so a failover can also lose the last writes the old master
// acknowledged. A trial needs appendonly yes on every master.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Defaults.
const (
	defaultKeyPrefix      = "jitai:"
	defaultDialTimeout    = 2 * time.Second
	defaultReadTimeout    = time.Second
	defaultWriteTimeout   = time.Second
	defaultPoolTimeout    = 2 * time.Second
	defaultMaxRetries     = 2
	defaultEnrollLease    = 10 * time.Second
	defaultAppendAttempts = 50

	defaultCacheParticipants = 100000

	defaultLogShards = 16
	maxLogShards     = 1024
	defaultLogGrace  = 30 * time.Second
)

func defaultPoolSize() int { return 10 * runtime.GOMAXPROCS(0) }

// Options configures the store. The zero value is valid. Connection fields
// left zero take the URL's query parameter, else the default.
type Options struct {
	// KeyPrefix starts every key (default "jitai:"). It must not contain
	// '{' or '}'.
	KeyPrefix string `yaml:"key_prefix" json:"key_prefix"`
	// PoolSize is the most connections per Redis node (default 10 per CPU).
	PoolSize int `yaml:"pool_size" json:"pool_size"`
	// MinIdleConns keeps this many idle connections open per node (default 0).
	MinIdleConns int `yaml:"min_idle_conns" json:"min_idle_conns"`
	// DialTimeout bounds connecting (default 2s).
	DialTimeout time.Duration `yaml:"dial_timeout" json:"dial_timeout"`
	// ReadTimeout bounds waiting for a reply (default 1s).
	ReadTimeout time.Duration `yaml:"read_timeout" json:"read_timeout"`
	// WriteTimeout bounds sending a command (default 1s).
	WriteTimeout time.Duration `yaml:"write_timeout" json:"write_timeout"`
	// PoolTimeout bounds waiting for a free connection (default 2s).
	PoolTimeout time.Duration `yaml:"pool_timeout" json:"pool_timeout"`
	// MaxRetries is how often a failed command is retried (default 2; -1
	// turns retries off).
	MaxRetries int `yaml:"max_retries" json:"max_retries"`
	// IdempotencyTTL is how long idempotency entries are kept (default 0:
	// forever, as the embedded store does). After it, a retried request
	// makes a new decision.
	IdempotencyTTL time.Duration `yaml:"idempotency_ttl" json:"idempotency_ttl"`
	// EnrollLease is how long an enrolment may hold its sequence number
	// before another enrolment may take it back (default 10s).
	EnrollLease time.Duration `yaml:"enroll_lease" json:"enroll_lease"`
	// AppendAttempts bounds how often AppendEvents starts over when the
	// state changes under it (default 50).
	AppendAttempts int `yaml:"append_attempts" json:"append_attempts"`
	// CacheParticipants is how many participants' decoded documents are
	// kept in memory to skip decoding unchanged ones (default 100000; -1
	// turns the cache off). Every read still goes to Redis.
	CacheParticipants int `yaml:"cache_participants" json:"cache_participants"`
	// LogShards is how many shards each study's decision log and
	// study-wide index are split into (default 16, at most 1024); a
	// participant's decisions go to shard FNV-1a(participant) mod
	// LogShards. Every store on one key prefix must use the same number:
	// Open refuses another one.
	LogShards int `yaml:"log_shards" json:"log_shards"`
	// LogGrace is how long the log reader waits for the commit of a logged
	// decision whose record it does not find before it gives the decision
	// up for good (default 30s). See "Decision log" in the package
	// documentation.
	LogGrace time.Duration `yaml:"log_grace" json:"log_grace"`
	// Now, if set, is the clock enrolment leases and LogGrace are measured
	// by instead of the Redis server's (TIME); for tests, which move it
	// instead of sleeping. Every store on one key prefix must share it.
	Now func() time.Time `yaml:"-" json:"-"`
	// EraseRewriteAOF says whether an erasure starts an AOF rewrite
	// (BGREWRITEAOF) on every master whose append-only file is on, so that
	// the erased data leave the disk within seconds: RewriteAuto (default)
	// or RewriteOff. See docs/redis.md, "Erasure and the disk".
	EraseRewriteAOF string `yaml:"erase_rewrite_aof" json:"erase_rewrite_aof"`
}

// SetDefaults fills in unset store options. Connection options are resolved
// by Open, because the URL may set them.
func (o *Options) SetDefaults() {
	if o.KeyPrefix == "" {
		o.KeyPrefix = defaultKeyPrefix
	}
	if o.EnrollLease == 0 {
		o.EnrollLease = defaultEnrollLease
	}
	if o.AppendAttempts == 0 {
		o.AppendAttempts = defaultAppendAttempts
	}
	if o.CacheParticipants == 0 {
		o.CacheParticipants = defaultCacheParticipants
	}
	if o.LogShards == 0 {
		o.LogShards = defaultLogShards
	}
	if o.LogGrace == 0 {
		o.LogGrace = defaultLogGrace
	}
	if o.EraseRewriteAOF == "" {
		o.EraseRewriteAOF = RewriteAuto
	}
}

// Validate reports options that cannot work, naming the key and the fix.
func (o *Options) Validate() error {
	var errs []error
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		errs = append(errs, fmt.Errorf("key_prefix %q: leave out '{' and '}' (they make hash tags)", o.KeyPrefix))
	}
	for _, c := range []struct {
		key string
		v   int
	}{{"pool_size", o.PoolSize}, {"min_idle_conns", o.MinIdleConns}, {"append_attempts", o.AppendAttempts}} {
		if c.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: use a positive number or leave it out for the default", c.key, c.v))
		}
	}
	if o.LogShards < 0 || o.LogShards > maxLogShards {
		errs = append(errs, fmt.Errorf("log_shards %d: use 1 to %d, or leave it out for the default (%d)", o.LogShards, maxLogShards, defaultLogShards))
	}
	if o.CacheParticipants < -1 {
		errs = append(errs, fmt.Errorf("cache_participants %d: use a positive number, 0 for the default or -1 for no cache", o.CacheParticipants))
	}
	if o.MaxRetries < -1 {
		errs = append(errs, fmt.Errorf("max_retries %d: use a positive number, 0 for the default or -1 for none", o.MaxRetries))
	}
	for _, c := range []struct {
		key string
		v   time.Duration
	}{{"dial_timeout", o.DialTimeout}, {"read_timeout", o.ReadTimeout}, {"write_timeout", o.WriteTimeout}, {"pool_timeout", o.PoolTimeout}, {"idempotency_ttl", o.IdempotencyTTL}, {"enroll_lease", o.EnrollLease}, {"log_grace", o.LogGrace}} {
		if c.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: use a positive duration or leave it out for the default", c.key, c.v))
		}
	}
	if o.EraseRewriteAOF != "" {
		if err := validRewrite(o.EraseRewriteAOF); err != nil {
			errs = append(errs, err)
		}
	}
	if o.IdempotencyTTL > 0 && o.IdempotencyTTL < time.Millisecond {
		errs = append(errs, fmt.Errorf("idempotency_ttl %s: use at least 1ms, or 0 to keep entries", o.IdempotencyTTL))
	}
	return errors.Join(errs...)
}

// Store is the Redis trial.Store. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	kind    string
	log     *zap.Logger
	opts    Options
	k       keys
	sc      scripts
	cache   *decodeCache
	idemTTL string // milliseconds, "0" for none
	health  health
	closed  atomic.Bool
	groups  sync.Map // study + NUL + group -> struct{}: consumer groups known to exist
	rotate  atomic.Uint32

	// clockStudies are the studies known to be in the registry the trial
	// clock's claims visit (k.studies); clockRotate spreads claims over
	// shards.
	clockStudies sync.Map
	clockRotate  atomic.Uint32

	// testSkipIndex, set by tests only, makes CommitDecision leave out the
	// index and log script for the records it returns true for.
	testSkipIndex func(rec *trial.Record) bool
}

var _ trial.Store = (*Store)(nil)

// Open connects to the Redis that url names (see the package documentation
// for the forms). Redis being unreachable does not fail Open: the store
// answers trial.ErrUnavailable until it is back. A URL or options that
// cannot work, a server that refuses the credentials and a server older
// than 6.2 fail Open.
func Open(ctx context.Context, url string, opts Options, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	opts.SetDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("redis store options: %w", err)
	}
	rdb, kind, err := newClient(url, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{
		rdb:     rdb,
		kind:    kind,
		log:     log,
		opts:    opts,
		k:       keys{prefix: opts.KeyPrefix},
		sc:      newScripts(),
		cache:   newDecodeCache(opts.CacheParticipants),
		idemTTL: strconv.FormatInt(opts.IdempotencyTTL.Milliseconds(), 10),
	}
	if err := s.checkServer(ctx); err != nil {
		if !errors.Is(err, trial.ErrUnavailable) {
			_ = rdb.Close()
			return nil, err
		}
		log.Warn("redis store opened, but redis is unreachable; requests fail until it is back", zap.String("client", kind), zap.Error(err))
	} else {
		log.Info("redis store opened", zap.String("client", kind), zap.String("key_prefix", opts.KeyPrefix))
	}
	return s, nil
}

// checkServer pings and checks the server's version and that the keys
// were written with the same number of log shards.
func (s *Store) checkServer(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	info, err := s.rdb.Info(ctx, "server").Result()
	if err != nil {
		return s.fail("reading redis server info", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		var major, minor int
		if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err == nil && (major < 6 || major == 6 && minor < 2) {
			return fmt.Errorf("redis server %s is too old: the redis store needs Redis 6.2 or later", v)
		}
	}
	return s.checkLogShards(ctx)
}

// checkLogShards records the number of log shards for the key prefix, or
// checks it against the one recorded: participants' decisions must stay in
// their shard.
func (s *Store) checkLogShards(ctx context.Context) error {
	want := strconv.Itoa(s.opts.LogShards)
	if err := s.rdb.HSetNX(ctx, s.k.meta(), "log_shards", want).Err(); err != nil {
		return s.fail("recording the number of log shards", err)
	}
	got, err := s.rdb.HGet(ctx, s.k.meta(), "log_shards").Result()
	if err != nil {
		return s.fail("reading the number of log shards", err)
	}
	if got != want {
		return fmt.Errorf("log_shards %s: the keys under prefix %q were written with log_shards %s; use that (changing it would move participants to other shards of the decision log)", want, s.opts.KeyPrefix, got)
	}
	return nil
}

// Ping checks that Redis answers; on Cluster, every master.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	var err error
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			return canPersist(ctx, n)
		})
	} else {
		err = canPersist(ctx, s.rdb)
	}
	var ue *trial.UnavailableError
	if errors.As(err, &ue) {
		return err
	}
	return s.check("pinging redis", err)
}

// canPersist pings a node and reads whether it can write its files: a
// failed AOF write or snapshot (a full or read-only disk) makes Redis refuse
// writes with MISCONF, so the store is not ready.
func canPersist(ctx context.Context, c redis.Cmdable) error {
	info, err := c.Info(ctx, "persistence").Result()
	if err != nil && !unavailable(err) {
		return c.Ping(ctx).Err() // INFO renamed away (a managed service): PING only
	}
	if err != nil {
		return err
	}
	f := parseInfo(info)
	switch {
	case f["aof_enabled"] == "1" && f["aof_last_write_status"] == "err":
		return &trial.UnavailableError{Reason: "redis cannot write its append-only file (disk full or read-only?); it refuses writes until it can", RetryAfter: 10 * time.Second}
	case f["rdb_last_bgsave_status"] == "err":
		return &trial.UnavailableError{Reason: "redis's last RDB snapshot failed (disk full or read-only?); with stop-writes-on-bgsave-error (the default) it refuses writes until a snapshot succeeds", RetryAfter: 10 * time.Second}
	}
	return nil
}

// Close releases the connections. Later calls return an error wrapping
// trial.ErrUnavailable. It is safe to call Close more than once.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("closing redis store: %w", err)
	}
	s.log.Info("redis store closed")
	return nil
}

// errClosed is returned by calls after Close.
var errClosed = fmt.Errorf("redis store is closed: %w", trial.ErrUnavailable)

// check returns nil for a nil err (noting that Redis answers), else err
// wrapped by fail.
func (s *Store) check(what string, err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		s.up()
		return nil
	}
	return s.fail(what, err)
}

// fail wraps err, adding trial.ErrUnavailable if it means Redis cannot
// serve now.
func (s *Store) fail(what string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	if errors.Is(err, trial.ErrUnavailable) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if unavailable(err) {
		s.markDown(err)
		return fmt.Errorf("%s: %w: %w", what, trial.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// transientPrefixes are server errors that mean "not now".
// MISCONF is Redis refusing writes because it cannot persist them (its disk
// is full or read-only).
var transientPrefixes = []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "OOM", "MISCONF", "max number of clients", "MOVED", "ASK"}

// unavailable reports whether err means Redis cannot serve now: anything but
// a server's error reply (a script or usage error) counts, except the
// caller cancelling.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !errors.Is(err, redis.ErrPoolTimeout) && !errors.Is(err, redis.ErrClosed) {
		for _, p := range transientPrefixes {
			if redis.HasErrorPrefix(err, p) {
				return true
			}
		}
		return false
	}
	return true
}

// health remembers what the log last said about Redis, so that each change
// between reachable and unreachable is logged once rather than per request.
type health struct {
	loggedDown atomic.Bool // the last log line said "unreachable"
	mu         sync.Mutex
	lastUp     time.Time // when "reachable again" was logged
	downSince  time.Time
}

// flapWindow is how long after logging "reachable again" a new outage is
// not logged yet (a partial outage, say one cluster node down, makes
// requests alternate between success and failure); the next failure after
// it is.
const flapWindow = time.Second

// markDown logs the change to unreachable once.
func (s *Store) markDown(err error) {
	if s.health.loggedDown.Load() {
		return
	}
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	now := time.Now()
	if s.health.loggedDown.Load() || now.Sub(s.health.lastUp) < flapWindow {
		return
	}
	s.health.loggedDown.Store(true)
	s.health.downSince = now
	s.log.Warn("redis unreachable; requests fail with 503 until it is back", zap.Error(err))
}

// up logs the change back to reachable once.
func (s *Store) up() {
	if !s.health.loggedDown.Load() {
		return
	}
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if !s.health.loggedDown.Load() {
		return
	}
	now := time.Now()
	s.health.loggedDown.Store(false)
	s.health.lastUp = now
	s.log.Info("redis reachable again", zap.Duration("unreachable_for", now.Sub(s.health.downSince).Round(time.Millisecond)))
}

// token returns a random token that tells one caller's writes apart.
func token() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RouteClientLogs sends go-redis' own log lines (one per failed dial, among
// others) to log at debug level. go-redis has one logger per process, so
// the program calls this once at start-up rather than Open doing it; the
// store itself logs each change between reachable and unreachable once.
func RouteClientLogs(log *zap.Logger) {
	redis.SetLogger(clientLogger{log.WithOptions(zap.AddCallerSkip(1))})
}

// clientLogger adapts zap to go-redis' logging interface.
type clientLogger struct{ log *zap.Logger }

func (l clientLogger) Printf(_ context.Context, format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, "go-redis"); ce != nil {
		ce.Write(zap.String("message", fmt.Sprintf(format, v...)))
	}
}

// Client returns the store's Redis client, for components that share the
// connection pool (such as the API rate limiter).
func (s *Store) Client() redis.UniversalClient { return s.rdb }
