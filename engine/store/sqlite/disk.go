package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	sqlite3 "modernc.org/sqlite/lib"
)

// Disk is what the free-space guard learns about the file system holding
// the store.
type Disk struct {
	// Free is how many bytes an unprivileged process may still write.
	Free uint64
	// ReadOnly: the file system is mounted read-only or the database file
	// cannot be written by this process.
	ReadOnly bool
}

// StatDisk is the default Options.DiskStatus: statfs(2) of the database's
// file system and access(2) of the file.
func StatDisk(path string) (Disk, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return Disk{}, fmt.Errorf("statfs %s: %w", filepath.Dir(path), err)
	}
	d := Disk{Free: st.Bavail * uint64(st.Bsize), ReadOnly: st.Flags&unix.ST_RDONLY != 0}
	if err := unix.Access(path, unix.W_OK); err != nil && !errors.Is(err, unix.ENOENT) {
		d.ReadOnly = true
	}
	return d, nil
}

// Retry-After hints: space may come back soon (a log rotated, a file
// deleted); a read-only file needs someone to act and a restart.
const (
	retryFull     = 10 * time.Second
	retryReadOnly = 60 * time.Second
	diskCheckMin  = time.Second // the file system is looked at at most this often
)

// guard decides whether the store may write: it refuses writes before the
// disk is full (free space under Options.MinFree), when the file or file
// system is read-only, and after SQLite itself reported a full disk or an
// I/O error, until a later look at the disk shows it writable again. A
// read-only connection (SQLITE_READONLY) stays refused until a restart. It
// logs once per change of state, never per request.
type guard struct {
	path   string
	min    uint64 // refuse under this much free space
	resume uint64 // once refusing, write again from this much free space
	stat   func(string) (Disk, error)
	now    func() time.Time
	log    *zap.Logger

	mu      sync.Mutex
	checked time.Time
	kind    string                  // "" (writable), "full", "read-only", "io", "read-only connection"
	state   *trial.UnavailableError // nil when writable
}

// fullFloor is the least free space that ends a full state SQLite reported
// when min_free_bytes is off.
const fullFloor = 1 << 20

func newGuard(path string, opts Options, log *zap.Logger) *guard {
	g := &guard{path: path, stat: opts.DiskStatus, now: opts.Now, log: log}
	if opts.MinFree > 0 {
		// Resuming only with room for a whole WAL above the threshold
		// keeps the store from flapping (and logging) at the threshold as
		// each WAL truncation frees a little space.
		g.min, g.resume = uint64(opts.MinFree), uint64(opts.MinFree+opts.WALLimit)
	}
	if g.stat == nil {
		g.stat = StatDisk
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g
}

// writable returns nil when the store may write, or why not. It looks at
// the disk at most once per second (by the injected clock).
func (g *guard) writable() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.checked.IsZero() || now.Sub(g.checked) >= diskCheckMin || now.Before(g.checked) {
		g.checked = now
		g.look()
	}
	if g.state == nil {
		return nil
	}
	return g.state
}

// look reads the disk and moves to the state it implies.
func (g *guard) look() {
	if g.kind == kindConnReadOnly {
		return
	}
	d, err := g.stat(g.path)
	if err != nil {
		// Not knowing is no reason to refuse: SQLite's own errors still
		// turn a real failure into a refusal.
		g.log.Debug("looking at the store's disk failed", zap.Error(err))
		return
	}
	switch {
	case d.ReadOnly:
		g.set(kindReadOnly, &trial.UnavailableError{Reason: fmt.Sprintf("the database %s or its file system is read-only; make it writable by the server", filepath.Base(g.path)), RetryAfter: retryReadOnly})
	case g.min > 0 && (d.Free < g.min || g.kind == kindFull && d.Free < g.resume):
		g.set(kindFull, &trial.UnavailableError{Reason: fmt.Sprintf("the disk holding the database has %d bytes free (min_free_bytes %d); writes resume by themselves once %d bytes are free", d.Free, g.min, g.resume), RetryAfter: retryFull})
	case (g.kind == kindFull || g.kind == kindIO) && d.Free < max(g.resume, fullFloor):
		// SQLite found the disk full and it still is.
	default:
		g.set("", nil)
	}
}

const (
	kindFull         = "full"
	kindReadOnly     = "read-only"
	kindIO           = "io"
	kindConnReadOnly = "read-only connection"
)

// set moves to state s of the given kind, logging a change of kind once.
func (g *guard) set(kind string, s *trial.UnavailableError) {
	was := g.kind
	g.kind, g.state = kind, s
	switch {
	case was == kind:
	case kind == "":
		g.log.Info("sqlite store writable again", zap.String("was", was))
	default:
		g.log.Error("sqlite store refuses writes", zap.String("reason", s.Reason), zap.NamedError("cause", s.Err))
	}
}

// observe classifies an error of a write. A full disk, a read-only
// database or an I/O error puts the guard in the refusing state and comes
// back as a *trial.UnavailableError; other errors come back unchanged.
func (g *guard) observe(err error) error {
	code, ok := sqliteCode(err)
	if !ok {
		return err
	}
	var kind string
	var s *trial.UnavailableError
	switch code & 0xff {
	case sqlite3.SQLITE_FULL:
		kind, s = kindFull, &trial.UnavailableError{Reason: "the disk holding the database is full; writes resume by themselves once space is freed", RetryAfter: retryFull, Err: err}
	case sqlite3.SQLITE_IOERR:
		kind, s = kindIO, &trial.UnavailableError{Reason: "writing the database failed with an I/O error (disk full, removed or remounted read-only?); writes resume by themselves once the disk is writable again", RetryAfter: retryFull, Err: err}
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
		kind, s = kindConnReadOnly, &trial.UnavailableError{Reason: fmt.Sprintf("the database %s was opened read-only; make it writable by the server and restart it", filepath.Base(g.path)), RetryAfter: retryReadOnly, Err: err}
	default:
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.kind != kindConnReadOnly {
		g.set(kind, s)
		g.checked = g.now() // look at the disk again in a second, not now
	}
	return s
}

// sqliteCode returns the extended SQLite result code in err's chain.
func sqliteCode(err error) (int, bool) {
	var ce interface{ Code() int }
	if err == nil || !errors.As(err, &ce) {
		return 0, false
	}
	return ce.Code(), true
}
