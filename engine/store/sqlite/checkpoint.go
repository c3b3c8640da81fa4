package sqlite

import (
	"context"
	"database/sql"
	"fmt"
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
const (
	checkpointEvery     = time.Second
	walAutocheckpointPg = 65536 // 512 MiB of 8 KiB pages: a safety net only
)

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
