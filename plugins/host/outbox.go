package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	pb "github.com/jitai/jitai/plugins/proto"
)

// outbox delivers a notifier's notifications at least once. Each one is
// written to its own file under spool/ (fsynced) before its first
// delivery; a delivered one's file is removed; one that fails every
// attempt is appended to dead-letter.jsonl (fsynced) and then removed.
// Spooled notifications left by a stop or a crash are delivered again at
// the next start, so the same id can arrive twice.
type outbox struct {
	p          *proc
	spool      string
	deadLetter string
	queue      chan *pending
	stop       chan struct{}
	done       chan struct{}
	dlMu       sync.Mutex
	// mu orders Notify against close: after close, nothing enters queue.
	mu     sync.RWMutex
	closed bool
}

// pending is a notification with its delivery state, as spooled.
type pending struct {
	Notification engine.Notification `json:"notification"`
	Attempts     int                 `json:"attempts"`
	LastError    string              `json:"last_error,omitempty"`
	Enqueued     time.Time           `json:"enqueued"`
	next         time.Time
}

// DeadLetter is one line of a notifier's dead-letter.jsonl.
type DeadLetter struct {
	Notification engine.Notification `json:"notification"`
	Attempts     int                 `json:"attempts"`
	LastError    string              `json:"last_error"`
	Enqueued     time.Time           `json:"enqueued"`
	DeadAt       time.Time           `json:"dead_at"`
}

// outboxQueue bounds notifications waiting to be spooled.
const outboxQueue = 1024

func newOutbox(p *proc, dir string) (*outbox, error) {
	ob := &outbox{p: p, spool: filepath.Join(dir, "spool"), deadLetter: filepath.Join(dir, "dead-letter.jsonl"),
		queue: make(chan *pending, outboxQueue), stop: make(chan struct{}), done: make(chan struct{})}
	if err := os.MkdirAll(ob.spool, 0o700); err != nil {
		return nil, errorf(p, "creating its outbox: %v", err)
	}
	left, err := ob.load()
	if err != nil {
		return nil, errorf(p, "reading its outbox: %v", err)
	}
	if len(left) > 0 {
		p.o.Logger.Info("notifications pending from an earlier run", zap.String("study", p.study), zap.String("plugin", p.cfg.Name), zap.Int("pending", len(left)))
	}
	go ob.run(left)
	return ob, nil
}

// Notify implements engine.Notifier: it never blocks. If the queue is full
// (the notifier is far behind), the notification goes to the dead-letter
// file at once.
func (ob *outbox) Notify(n engine.Notification) {
	pd := &pending{Notification: n, Enqueued: time.Now().UTC()}
	ob.mu.RLock()
	defer ob.mu.RUnlock()
	if ob.closed {
		// A decision made on a study version being retired (hot reload)
		// or during shutdown: spool it for the next outbox on this folder.
		ob.spoolOnly(pd)
		return
	}
	select {
	case ob.queue <- pd:
	default:
		// Far behind: spool it; a rescan of the spool picks it up.
		go ob.spoolOnly(pd)
	}
}

func (ob *outbox) spoolOnly(pd *pending) {
	if err := ob.save(pd); err != nil {
		pd.LastError = "spooling failed: " + err.Error()
		ob.dead(pd)
	}
}

// close stops the worker; what is queued or pending stays in the spool.
func (ob *outbox) close() {
	ob.mu.Lock()
	ob.closed = true
	ob.mu.Unlock()
	close(ob.stop)
	<-ob.done
	for {
		select {
		case pd := <-ob.queue:
			ob.spoolOnly(pd)
		default:
			return
		}
	}
}

func (ob *outbox) file(id string) string {
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(ob.spool, hex.EncodeToString(sum[:16])+".json")
}

func (ob *outbox) load() ([]*pending, error) {
	entries, err := os.ReadDir(ob.spool)
	if err != nil {
		return nil, err
	}
	var out []*pending
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(ob.spool, e.Name()))
		if err != nil {
			return nil, err
		}
		var pd pending
		if err := json.Unmarshal(raw, &pd); err != nil {
			continue // a torn write of a notification never delivered nor acknowledged
		}
		out = append(out, &pd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Enqueued.Before(out[j].Enqueued) })
	return out, nil
}

// save writes pd's spool file durably (write, fsync, rename).
func (ob *outbox) save(pd *pending) error {
	b, err := json.Marshal(pd)
	if err != nil {
		return err
	}
	return writeDurably(ob.file(pd.Notification.ID), b)
}

func writeDurably(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (ob *outbox) remove(pd *pending) {
	if err := os.Remove(ob.file(pd.Notification.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		ob.p.o.Logger.Warn("removing a delivered notification from the outbox", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
	}
}

// dead appends pd to the dead-letter file and drops it from the spool.
func (ob *outbox) dead(pd *pending) {
	line, _ := json.Marshal(DeadLetter{Notification: pd.Notification, Attempts: pd.Attempts, LastError: pd.LastError, Enqueued: pd.Enqueued, DeadAt: time.Now().UTC()})
	ob.dlMu.Lock()
	err := appendLine(ob.deadLetter, line)
	ob.dlMu.Unlock()
	if err != nil {
		// Keep it spooled: it is retried at the next start.
		ob.p.o.Logger.Error("writing the dead-letter file failed; the notification stays in the outbox", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
		return
	}
	ob.remove(pd)
	ob.p.o.Logger.Error("notification dead-lettered after its last attempt", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name),
		zap.Int("attempts", pd.Attempts), zap.String("file", ob.deadLetter))
	ob.p.observe("dead_letter", time.Now(), errors.New(pd.LastError))
}

func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// run delivers in order of due time, one at a time.
func (ob *outbox) run(waiting []*pending) {
	defer close(ob.done)
	now := time.Now()
	for _, pd := range waiting {
		pd.next = now
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	rescan := time.NewTicker(ob.p.o.OutboxRescan)
	defer rescan.Stop()
	known := map[string]bool{}
	for _, pd := range waiting {
		known[pd.Notification.ID] = true
	}
	for {
		sort.SliceStable(waiting, func(i, j int) bool { return waiting[i].next.Before(waiting[j].next) })
		wait := time.Hour
		if len(waiting) > 0 {
			wait = max(0, time.Until(waiting[0].next))
		}
		timer.Reset(wait)
		select {
		case <-ob.stop:
			return
		case pd := <-ob.queue:
			if known[pd.Notification.ID] {
				continue
			}
			if err := ob.save(pd); err != nil {
				ob.p.o.Logger.Error("spooling a notification failed; delivering from memory", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
			}
			pd.next = time.Now()
			known[pd.Notification.ID] = true
			waiting = append(waiting, pd)
		case <-rescan.C:
			// Spooled by another outbox on this folder (a retired study
			// version) or while the queue was full.
			found, err := ob.load()
			if err != nil {
				ob.p.o.Logger.Warn("rescanning the outbox failed", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
			}
			for _, pd := range found {
				if !known[pd.Notification.ID] {
					pd.next = time.Now()
					known[pd.Notification.ID] = true
					waiting = append(waiting, pd)
				}
			}
		case <-timer.C:
			pd := waiting[0]
			waiting = waiting[1:]
			if ob.deliver(pd) {
				delete(known, pd.Notification.ID)
				continue
			}
			if pd.Attempts >= ob.p.cfg.Retry.Attempts {
				delete(known, pd.Notification.ID)
				ob.dead(pd)
				continue
			}
			_ = ob.save(pd)
			pd.next = time.Now().Add(ob.backoff(pd.Attempts))
			waiting = append(waiting, pd)
		}
	}
}

func (ob *outbox) backoff(attempts int) time.Duration {
	r := ob.p.cfg.Retry
	d := r.Backoff.Duration
	for i := 1; i < attempts && d < r.MaxBackoff.Duration; i++ {
		d *= 2
	}
	return min(d, r.MaxBackoff.Duration)
}

// deliver makes one attempt; it reports whether the notifier accepted it.
func (ob *outbox) deliver(pd *pending) bool {
	pd.Attempts++
	n := pd.Notification
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-ob.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := ob.p.call(ctx, "notify", func(ctx context.Context, c *conn) error {
		_, err := c.notif.Notify(ctx, &pb.NotifyRequest{Id: n.ID, Decision: decision(n.Decision), Action: n.Action, Reasons: n.Reasons, Intervention: n.Intervention, Attempt: int32(pd.Attempts)})
		return err
	})
	cancel()
	if err != nil {
		pd.LastError = fmt.Sprint(engine.PluginOutcome(err), ": ", err)
		return false
	}
	ob.remove(pd)
	return true
}
