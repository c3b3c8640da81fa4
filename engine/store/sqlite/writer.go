package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"
)

// Op states: a queued op is claimed by the writer (running) or abandoned by
// its caller (cancelled), whichever happens first.
const (
	opQueued int32 = iota
	opRunning
	opCancelled
)

// op is one write operation queued for the writer.
type op struct {
	// fn runs inside the write transaction, on the writer goroutine. Its
	// error fails this op only.
	fn func(w *writeStmts) error
	// outside: fn runs after the batch's transaction, outside any
	// transaction (checkpoints, vacuum).
	outside bool
	state   atomic.Int32
	done    chan error // buffered; receives the op's result after COMMIT
}

// write queues fn and waits until the transaction holding it has committed
// (nil) or fn or the transaction failed. If ctx ends before the writer
// starts fn, fn never runs; once it has started, write waits for the result
// so that callbacks never run after their caller has returned.
func (s *Store) write(ctx context.Context, fn func(w *writeStmts) error) error {
	return s.submit(ctx, &op{fn: fn, done: make(chan error, 1)})
}

// maintain runs fn on the writer's connection outside any transaction, after
// the writes queued before it, and waits for it.
func (s *Store) maintain(ctx context.Context, fn func(w *writeStmts) error) error {
	return s.submit(ctx, &op{fn: fn, outside: true, done: make(chan error, 1)})
}

// submit queues o unless the store cannot write now, and waits for its result.
func (s *Store) submit(ctx context.Context, o *op) error {
	if s.readOnly {
		return errReadOnly
	}
	if err := s.guard.writable(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed
	}
	select {
	case s.ops <- o:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return fmt.Errorf("queueing write: %w", ctx.Err())
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opCancelled) {
			return fmt.Errorf("waiting for write: %w", ctx.Err())
		}
		return <-o.done
	}
}

// writer runs until ops is closed and drained, committing batches.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*op, 0, s.opts.BatchMax)
	results := make([]error, 0, s.opts.BatchMax)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	concurrent := false
	for first := range s.ops {
		batch = s.collect(append(batch[:0], first), nil)
		// Under concurrent load, wait briefly for more operations: one
		// commit (WAL frames and their syscalls) then serves them all.
		if concurrent && s.opts.Linger > 0 && len(batch) < s.opts.BatchMax {
			linger.Reset(s.opts.Linger)
			batch = s.collect(batch, linger.C)
			linger.Stop()
		}
		concurrent = len(batch) > 1
		// Claim the ops whose callers still wait; maintenance runs after
		// the batch's commit.
		live, outside := batch[:0], s.outside[:0]
		for _, o := range batch {
			if !o.state.CompareAndSwap(opQueued, opRunning) {
				continue
			}
			if o.outside {
				outside = append(outside, o)
			} else {
				live = append(live, o)
			}
		}
		if len(live) > 0 {
			results = s.runBatch(live, results[:0])
			for i, o := range live {
				o.done <- results[i]
			}
			s.boundWAL()
		}
		for _, o := range outside {
			o.done <- s.guard.observe(runOp(o, s.w))
		}
		clear(batch[:cap(batch)])
		clear(outside)
	}
}

// collect adds queued ops to batch up to BatchMax. With a nil deadline it
// takes only what is queued now; otherwise it waits until the deadline fires.
func (s *Store) collect(batch []*op, deadline <-chan time.Time) []*op {
	for len(batch) < s.opts.BatchMax {
		if deadline == nil {
			select {
			case o, ok := <-s.ops:
				if !ok {
					return batch
				}
				batch = append(batch, o)
			default:
				return batch
			}
			continue
		}
		select {
		case o, ok := <-s.ops:
			if !ok {
				return batch
			}
			batch = append(batch, o)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// runBatch runs ops in one transaction and returns each op's result.
func (s *Store) runBatch(ops []*op, results []error) []error {
	ctx := context.Background()
	w := s.w
	fail := func(err error) []error {
		results = results[:0]
		if gerr := s.guard.observe(err); gerr != err {
			err = gerr // a full or read-only disk: the guard logs once per change
		} else {
			s.log.Error("sqlite store write transaction failed", zap.Int("ops", len(ops)), zap.Error(err))
		}
		for range ops {
			results = append(results, err)
		}
		s.stats.failedOps.Add(uint64(len(ops)))
		return results
	}
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return fail(fmt.Errorf("beginning write transaction: %w: %w", trial.ErrUnavailable, err))
	}

	// A lone op needs no savepoint: if it fails, the transaction is rolled
	// back instead.
	if len(ops) == 1 {
		err := runOp(ops[0], w)
		results = append(results, err)
		if err != nil {
			s.stats.failedOps.Add(1)
			if _, rbErr := w.rollback.ExecContext(ctx); rbErr != nil {
				return fail(fmt.Errorf("rolling back failed write: %w: %w", trial.ErrUnavailable, rbErr))
			}
			results[0] = s.guard.observe(err)
			return results
		}
	} else if !s.runOptimistic(ops, w) {
		// An op failed: nothing of the first attempt remains. Run the batch
		// again with a savepoint per op, so that only the failing op fails.
		// Ops are re-runnable: they read what they need inside the
		// transaction.
		if _, err := w.begin.ExecContext(ctx); err != nil {
			return fail(fmt.Errorf("beginning write transaction: %w: %w", trial.ErrUnavailable, err))
		}
		for _, o := range ops {
			if _, err := w.savepoint.ExecContext(ctx); err != nil {
				s.rollback()
				return fail(fmt.Errorf("starting savepoint: %w: %w", trial.ErrUnavailable, err))
			}
			err := runOp(o, w)
			results = append(results, err)
			if err != nil {
				if _, rbErr := w.rollbackTo.ExecContext(ctx); rbErr != nil {
					s.rollback()
					return fail(fmt.Errorf("rolling back failed write: %w: %w", trial.ErrUnavailable, rbErr))
				}
			}
			if _, err := w.release.ExecContext(ctx); err != nil {
				s.rollback()
				return fail(fmt.Errorf("releasing savepoint: %w: %w", trial.ErrUnavailable, err))
			}
		}
	}

	if len(results) == 0 {
		results = append(results, make([]error, len(ops))...) // optimistic batch: every op succeeded
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		s.rollback()
		return fail(fmt.Errorf("committing write transaction: %w: %w", trial.ErrUnavailable, err))
	}
	s.stats.transactions.Add(1)
	committed := 0
	for i, err := range results {
		if err == nil {
			committed++
		} else {
			results[i] = s.guard.observe(err)
		}
	}
	s.stats.ops.Add(uint64(committed))
	s.stats.failedOps.Add(uint64(len(results) - committed))
	return results
}

// rollback ends a failed transaction; if there is none (SQLite already
// rolled it back) the error is expected and ignored.
func (s *Store) rollback() {
	_, _ = s.w.rollback.ExecContext(context.Background())
}

// runOptimistic runs a batch without savepoints (two statements fewer per
// op). On the first failing op it rolls the whole transaction back and
// returns false.
func (s *Store) runOptimistic(ops []*op, w *writeStmts) bool {
	for _, o := range ops {
		if err := runOp(o, w); err != nil {
			s.rollback()
			return false
		}
	}
	return true
}

// runOp runs o's function, turning a panic in a caller's callback into the
// op's error so that the writer survives it.
func runOp(o *op, w *writeStmts) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write operation panicked: %v", p)
		}
	}()
	return o.fn(w)
}
