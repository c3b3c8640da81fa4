package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// WAL checkpoints copy committed pages from the write-ahead log back into
// the database file. SQLite runs them inside the commit that crosses the
// auto-checkpoint threshold, so one decision in some thousands waited for
// tens of megabytes to be copied (and, with durability power, synced): the
// tail of the latency distribution. The store checkpoints from a connection
// of its own instead, in PASSIVE mode, which never blocks the writer or
// readers; the writer's auto-checkpoint stays as a bound on the log's size
// should the background ones fall behind.
//
// PASSIVE checkpoints never wait for readers, so under steady reads the log
// is never restarted and grows without bound. The writer therefore looks at
// the log's size after each commit and, past Options.WALLimit, checkpoints
// in TRUNCATE mode (boundWAL), which waits for readers to move to the newest
// snapshot and leaves an empty log.
const checkpointEvery = time.Second

// walAutocheckpoint is the writer's auto-checkpoint threshold in 8 KiB pages:
// twice the WAL bound, at most 512 MiB; a safety net only.
func walAutocheckpoint(limit int64) int64 {
	return min(2*limit/8192, 65536)
}

// boundWAL truncates the write-ahead log once it is larger than WALLimit. It
// runs on the writer goroutine between transactions. A truncation waits for
// readers to move to the newest snapshot, holding up the writer. Up to twice
// the limit it waits at most truncateWait, and after a failed attempt the
// next one comes once the log has grown by another eighth of the limit, so
// that steady reads cost the writer at most one short wait per eighth of the
// limit written. Past twice the limit it waits as long as any lock
// (busy_timeout): writes slow down rather than fill the disk.
func (s *Store) boundWAL() {
	fi, err := os.Stat(s.path + "-wal")
	hard := err == nil && fi.Size() > 2*s.opts.WALLimit
	if err != nil || fi.Size() <= s.opts.WALLimit || fi.Size() < s.walRetryAt && !hard {
		return
	}
	ctx := context.Background()
	wait := truncateWait.Milliseconds()
	if hard {
		wait = busyTimeoutMillis
	}
	if _, err := s.wconn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait)); err == nil {
		_, err = s.truncateWAL(ctx)
		if _, rerr := s.wconn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeoutMillis)); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		s.walRetryAt = fi.Size() + s.opts.WALLimit/8
		s.walBusy(err)
		return
	}
	s.walRetryAt = 0
	s.walFailing = false
	s.stats.walTruncations.Add(1)
}

// truncateWait bounds how long a truncation of the log may hold up the writer.
const truncateWait = 250 * time.Millisecond

// truncateWAL copies the whole log into the database file and truncates the
// log to zero bytes. It reports whether it did (false: a reader still used
// an older snapshot; the log was checkpointed as far as it could be).
func (s *Store) truncateWAL(ctx context.Context) (bool, error) {
	var busy, logged, done int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logged, &done); err != nil {
		return false, fmt.Errorf("truncating the write-ahead log: %w", err)
	}
	if busy != 0 {
		return false, fmt.Errorf("truncating the write-ahead log: a reader holds an older snapshot (%d of %d pages copied)", done, logged)
	}
	return true, nil
}

// walBusy logs a failed truncation once until one succeeds.
func (s *Store) walBusy(err error) {
	if err = s.guard.observe(err); s.walFailing {
		return
	}
	s.walFailing = true
	s.log.Warn("write-ahead log over wal_limit_bytes could not be truncated; retrying after the next commit", zap.Int64("wal_limit_bytes", s.opts.WALLimit), zap.Error(err))
}

// checkpointer runs PASSIVE checkpoints while the store has written since the
// last one, until stop is closed.
type checkpointer struct {
	db    *sql.DB
	pages atomic.Uint64 // pages copied back so far
	stop  chan struct{}
	done  chan struct{}
}

func startCheckpointer(path string, written func() uint64, log *zap.Logger) (*checkpointer, error) {
	db, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)", path, busyTimeoutMillis))
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store for checkpoints: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		last := written()
		failing := false
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
			n := written()
			if n == last {
				continue
			}
			last = n
			var busy, logged, done int
			err := db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &done)
			if err != nil && !failing {
				log.Warn("background WAL checkpoint failed; the writer's auto-checkpoint bounds the log", zap.Error(err))
			}
			failing = err != nil
			if err == nil && done > 0 {
				c.pages.Add(uint64(done))
			}
		}
	}()
	return c, nil
}

// close stops the checkpoints and closes their connection.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	close(c.stop)
	<-c.done
	return c.db.Close()
}
