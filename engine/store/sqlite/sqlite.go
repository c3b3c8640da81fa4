// Package sqlite is the embedded trial.Store: one SQLite file (pure-Go
// driver, no cgo) in WAL mode, so that `jitai serve` needs nothing else and
// statisticians can open the file with sqlite3.
//
// All writes go through one writer goroutine that groups concurrent
// operations into one transaction (group commit); each operation runs in
// its own savepoint, so one failing operation does not fail the others, and
// a caller returns only once the transaction holding its operation has
// committed. Reads use a separate pool of connections, which WAL lets run
// alongside the writer.
//
// Records, participants and states are stored as JSON text; times used for
// ordering are also stored as integer nanoseconds since the Unix epoch.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Durability levels.
const (
	// DurabilityProcess: an answered decision survives a crash of the
	// process (WAL with synchronous=NORMAL).
	DurabilityProcess = "process"
	// DurabilityPower: an answered decision survives power loss too (WAL
	// with synchronous=FULL; every commit waits for fsync).
	DurabilityPower = "power"
)

// Options configures the store. The zero value is valid.
type Options struct {
	// Durability is DurabilityProcess (default) or DurabilityPower.
	Durability string `yaml:"durability" json:"durability"`
	// BatchMax is the most operations committed in one write transaction
	// (default 256).
	BatchMax int `yaml:"batch_max" json:"batch_max"`
	// ReadConns is the number of read connections (default 4).
	ReadConns int `yaml:"read_conns" json:"read_conns"`
	// Linger is how long the writer waits for more operations to share a
	// transaction while writes are concurrent (the previous transaction held
	// more than one). It trades a little latency for fewer commits under
	// load. Default 500µs; negative turns it off.
	Linger time.Duration `yaml:"linger" json:"linger"`
	// CacheParticipants is how many participants' decoded states are kept
	// in memory (default 100000; -1 turns the cache off).
	CacheParticipants int `yaml:"cache_participants" json:"cache_participants"`
	// WALLimit bounds the write-ahead log, in bytes (default 64 MiB): once
	// a commit leaves it larger, the writer checkpoints in TRUNCATE mode,
	// and journal_size_limit truncates it to this size whenever SQLite
	// restarts it.
	WALLimit int64 `yaml:"wal_limit_bytes" json:"wal_limit_bytes"`
	// MinFree is the free space, in bytes, under which the store refuses
	// writes (503 with Retry-After) and reports not ready, before the disk
	// is full (default twice WALLimit; -1 turns the guard off). Writes
	// resume by themselves once space is freed.
	MinFree int64 `yaml:"min_free_bytes" json:"min_free_bytes"`
	// DiskStatus reports the free space and writability of the file system
	// holding the database (default StatDisk). Tests inject one.
	DiskStatus func(path string) (Disk, error) `yaml:"-" json:"-"`
	// Now is the clock that paces looks at the disk (default time.Now).
	Now func() time.Time `yaml:"-" json:"-"`
}

// SetDefaults fills in unset options.
func (o *Options) SetDefaults() {
	if o.Durability == "" {
		o.Durability = DurabilityProcess
	}
	if o.BatchMax == 0 {
		o.BatchMax = 256
	}
	if o.ReadConns == 0 {
		o.ReadConns = 4
	}
	if o.Linger == 0 {
		o.Linger = 500 * time.Microsecond
	}
	if o.CacheParticipants == 0 {
		o.CacheParticipants = 100000
	}
	if o.WALLimit == 0 {
		o.WALLimit = 64 << 20
	}
	if o.MinFree == 0 {
		o.MinFree = 2 * o.WALLimit
	}
}

// Validate reports options that cannot work, naming the key and the fix.
func (o *Options) Validate() error {
	var errs []error
	if o.Durability != DurabilityProcess && o.Durability != DurabilityPower {
		errs = append(errs, fmt.Errorf("durability %q: use %q or %q", o.Durability, DurabilityProcess, DurabilityPower))
	}
	if o.BatchMax < 1 {
		errs = append(errs, fmt.Errorf("batch_max %d: use a positive number (default 256)", o.BatchMax))
	}
	if o.ReadConns < 1 {
		errs = append(errs, fmt.Errorf("read_conns %d: use a positive number (default 4)", o.ReadConns))
	}
	if o.WALLimit < 1<<20 {
		errs = append(errs, fmt.Errorf("wal_limit_bytes %d: use at least 1 MiB (default 64 MiB)", o.WALLimit))
	}
	if o.MinFree < -1 {
		errs = append(errs, fmt.Errorf("min_free_bytes %d: use a positive number of bytes, or -1 to turn the free-space guard off", o.MinFree))
	}
	return errors.Join(errs...)
}

// busyTimeoutMillis is how long a connection waits for a lock held by
// another process (e.g. sqlite3 opened by a statistician) before failing.
const busyTimeoutMillis = 10000

// Store is the SQLite trial.Store. It is safe for concurrent use.
type Store struct {
	log  *zap.Logger
	path string
	opts Options

	ckpt  *checkpointer // background WAL checkpoints (checkpoint.go)
	wdb   *sql.DB       // one connection, owned by the writer goroutine
	wconn *sql.Conn     // the writer's connection
	w     *writeStmts
	rdb   *sql.DB // read pool
	r     *readStmts

	// mu guards closed and sending on ops: submitters hold it shared, Close
	// exclusively, so ops is closed only when no one is sending.
	mu         sync.RWMutex
	closed     bool
	ops        chan *op
	outside    []*op // the writer's buffer of maintenance ops
	writerDone chan struct{}
	closing    atomic.Bool

	guard    *guard // refuses writes on a (nearly) full or read-only disk (disk.go)
	cache    *stateCache
	idem     *idemFilter // nil when read-only
	lock     *os.File
	readOnly bool

	closeOnce sync.Once
	closeErr  error

	// The writer's WAL bound (checkpoint.go; writer goroutine only):
	walFailing bool  // the last truncation failed (logged once)
	walRetryAt int64 // after a failed truncation, the log size of the next attempt

	stats struct {
		walTruncations atomic.Uint64
		transactions   atomic.Uint64
		ops            atomic.Uint64
		failedOps      atomic.Uint64
	}
}

var _ trial.Store = (*Store)(nil)

// Open opens (creating if needed) the store at path, migrates its schema
// and starts the writer. The parent directory is created if missing.
func Open(path string, opts Options, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	opts.SetDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("sqlite store options: %w", err)
	}
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("sqlite store path %q: use a plain file path without '?' or '#'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("creating directory for sqlite store: %w", err)
	}

	synchronous := "NORMAL"
	if opts.Durability == DurabilityPower {
		synchronous = "FULL"
	}
	s := &Store{log: log, path: path, opts: opts, cache: newStateCache(opts.CacheParticipants), guard: newGuard(path, opts, log)}
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	ok := false
	defer func() {
		if !ok {
			s.closeDBs()
		}
	}()

	ctx := context.Background()
	// mmap spares read copies. The page cache holds what mmap cannot serve
	// (pages written since the last checkpoint) and a full batch's dirty
	// pages: 16 MiB (SQLite's default is 2 MiB). Not more: when a B-tree
	// rebalance swaps two pages, SQLite parks one at a page number beyond
	// the end of the file, and the commit then scans the whole cache to drop
	// pages past the end. With 64 MiB that scan was 6% of a decision's CPU.
	//
	// Erasure: secure_delete overwrites deleted content with zeros, and
	// auto_vacuum INCREMENTAL (set by autoVacuum) lets an erasure give freed pages back to the file
	// system (erase.go). journal_size_limit bounds the log once SQLite
	// restarts it; the writer truncates it past WALLimit (checkpoint.go).
	s.wdb, err = sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=page_size(8192)&_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_pragma=cache_size(-16384)&_pragma=mmap_size(268435456)&_pragma=temp_store(memory)&_pragma=wal_autocheckpoint(%d)&_pragma=secure_delete(ON)&_pragma=journal_size_limit(%d)", path, busyTimeoutMillis, synchronous, walAutocheckpoint(opts.WALLimit), opts.WALLimit))
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store for writing: %w", err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	if s.wconn, err = s.wdb.Conn(ctx); err != nil {
		return nil, fmt.Errorf("opening sqlite store %s: %w", path, err)
	}
	if err := autoVacuum(ctx, s.wconn, log); err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if err := migrate(ctx, s.wconn, log); err != nil {
		return nil, fmt.Errorf("migrating sqlite store %s: %w", path, err)
	}
	if s.w, err = prepareWrite(ctx, s.wconn); err != nil {
		return nil, fmt.Errorf("preparing sqlite store writes: %w", err)
	}

	s.rdb, err = sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=cache_size(-16384)&_pragma=mmap_size(268435456)&_query_only=1", path, busyTimeoutMillis))
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store for reading: %w", err)
	}
	s.rdb.SetMaxOpenConns(opts.ReadConns)
	s.rdb.SetMaxIdleConns(opts.ReadConns)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)
	if s.r, err = prepareRead(ctx, s.rdb); err != nil {
		return nil, fmt.Errorf("preparing sqlite store reads: %w", err)
	}

	if s.ckpt, err = startCheckpointer(path, s.stats.transactions.Load, log); err != nil {
		return nil, err
	}

	s.ops = make(chan *op, opts.BatchMax)
	s.writerDone = make(chan struct{})
	s.idem = newIdemFilter()
	go s.writer()
	loadCtx, stopLoad := context.WithCancel(context.Background())
	s.idem.stop = stopLoad
	go s.idem.load(loadCtx, s.rdb, log)
	ok = true
	log.Info("sqlite store opened", zap.String("durability", opts.Durability), zap.Int("batch_max", opts.BatchMax), zap.Int("read_conns", opts.ReadConns))
	return s, nil
}

var errReadOnly = errors.New("the store was opened read-only")

// OpenReadOnly opens an existing store for reading only, without the
// exclusive lock, so that reports and exports can read while a server
// writes (SQLite WAL readers see the last committed state). Writes fail.
func OpenReadOnly(path string, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("opening sqlite store %s read-only: %w (no data yet? start the server with this data folder first)", path, err)
	}
	opts := Options{CacheParticipants: -1}
	opts.SetDefaults()
	s := &Store{log: log, path: path, opts: opts, cache: newStateCache(-1), readOnly: true}
	var err error
	s.rdb, err = sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=mmap_size(268435456)&_query_only=1", path, busyTimeoutMillis))
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store %s read-only: %w", path, err)
	}
	s.rdb.SetMaxOpenConns(opts.ReadConns)
	if s.r, err = prepareRead(context.Background(), s.rdb); err != nil {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("opening sqlite store %s read-only (is it a jitai store?): %w", path, err)
	}
	s.writerDone = make(chan struct{})
	close(s.writerDone)
	s.closed = true
	s.ops = make(chan *op)
	return s, nil
}

// Ping reads the schema version, a cheap read that touches the file, and
// reports whether the store can write (disk.go): a nearly full disk or a
// read-only file makes the store not ready.
func (s *Store) Ping(ctx context.Context) error {
	if s.closing.Load() {
		return errClosed
	}
	if !s.readOnly {
		if err := s.guard.writable(); err != nil {
			return err
		}
	}
	var v int
	if err := s.r.ping.QueryRowContext(ctx).Scan(&v); err != nil {
		return fmt.Errorf("pinging sqlite store: %w: %w", trial.ErrUnavailable, err)
	}
	return nil
}

// Close stops accepting writes, waits for queued writes to commit and closes
// the database. Later calls return an error wrapping trial.ErrUnavailable.
// It is safe to call Close more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.ops)
		s.mu.Unlock()
		<-s.writerDone
		s.closing.Store(true)
		s.closeErr = s.closeDBs()
		st := s.Stats()
		s.log.Info("sqlite store closed", zap.Uint64("transactions", st.Transactions), zap.Uint64("ops", st.Ops), zap.Uint64("failed_ops", st.FailedOps))
	})
	return s.closeErr
}

// closeDBs releases statements, connections and databases that were opened.
func (s *Store) closeDBs() error {
	s.idem.close()
	var errs []error
	errs = append(errs, s.ckpt.close())
	if s.w != nil {
		errs = append(errs, s.w.close())
	}
	if s.r != nil {
		errs = append(errs, s.r.close())
	}
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // releases the flock
		s.lock = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing sqlite store: %w", err)
	}
	return nil
}

// Stats counts the writer's work since Open.
type Stats struct {
	// Transactions is the number of committed write transactions.
	Transactions uint64
	// Ops is the number of write operations committed.
	Ops uint64
	// FailedOps is the number of write operations that failed (conflicts,
	// callback errors, failed commits).
	FailedOps uint64
	// CheckpointedPages is how many WAL pages the background checkpoints
	// have copied into the database file (checkpoint.go).
	CheckpointedPages uint64
	// WALTruncations counts the checkpoints that truncated a write-ahead
	// log grown past WALLimit.
	WALTruncations uint64
	// IdempotencyQueriesSkipped counts the snapshots whose idempotency key
	// the in-memory filter showed to be unused, so that it was not looked
	// up (idemfilter.go).
	IdempotencyQueriesSkipped uint64
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Transactions: s.stats.transactions.Load(),
		Ops:          s.stats.ops.Load(),
		FailedOps:    s.stats.failedOps.Load(),

		WALTruncations: s.stats.walTruncations.Load(),
	}
	if s.ckpt != nil {
		st.CheckpointedPages = s.ckpt.pages.Load()
	}
	if s.idem != nil {
		st.IdempotencyQueriesSkipped = s.idem.skipped.Load()
	}
	return st
}

// errClosed is returned by calls after Close.
var errClosed = fmt.Errorf("sqlite store is closed: %w", trial.ErrUnavailable)

// readErr wraps a failed read; reads after Close report ErrUnavailable.
func (s *Store) readErr(what string, err error) error {
	if s.closing.Load() || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%s: %w: %w", what, trial.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
