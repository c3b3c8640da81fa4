package host

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"github.com/jitai/jitai/plugins/internal/filelock"
	pb "github.com/jitai/jitai/plugins/proto"
)

// outbox delivers a notifier's notifications at least once. Each one is
// written to its own file under spool/ (fsynced) before its first
// delivery; a delivered one's file is removed; one that fails every
// attempt is appended to dead-letter.jsonl (fsynced) and then removed.
// Spooled notifications left by a stop or a crash are delivered again at
// the next start, so the same id can arrive twice.
//
// Several outboxes can work on one folder at once: during a hot reload the
// new study version's outbox starts before the old one is closed. So that
// each notification is delivered by one of them at a time, an outbox
// delivers only the spool files it has claimed: <hash>.json is unclaimed,
// <hash>.<owner>.json is claimed by the outbox <owner>, which holds a lock
// on owners/<owner>.lock for as long as it runs. Claiming is an atomic
// rename, so exactly one outbox wins a file. On close an outbox renames
// its files back to unclaimed for the next outbox (which rescans the spool);
// the claims of an outbox whose lock is free (its process crashed) are
// taken over at the next scan.
type outbox struct {
	p          *proc
	spool      string
	owners     string
	deadLetter string
	owner      string
	lock       *filelock.Lock
	// fmu is the folder's mutex, shared by every outbox of this process on
	// the folder: it orders spool writes, claims, erasure and dead-letter
	// writes.
	fmu   *sync.Mutex
	queue chan *pending
	stop  chan struct{}
	done  chan struct{}
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
	// spooled: this outbox's claimed file holds it (else it is delivered
	// from memory: spooling failed).
	spooled bool
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

// folders holds each outbox folder's mutex (by path).
var folders sync.Map

func newOutbox(p *proc, dir string) (*outbox, error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	fmu, _ := folders.LoadOrStore(filepath.Clean(dir), &sync.Mutex{})
	ob := &outbox{p: p, spool: filepath.Join(dir, "spool"), owners: filepath.Join(dir, "owners"), deadLetter: filepath.Join(dir, "dead-letter.jsonl"),
		owner: hex.EncodeToString(id[:]), fmu: fmu.(*sync.Mutex),
		queue: make(chan *pending, outboxQueue), stop: make(chan struct{}), done: make(chan struct{})}
	for _, d := range []string{ob.spool, ob.owners} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, errorf(p, "creating its outbox: %v", err)
		}
	}
	lock, err := filelock.TryLock(ob.ownerLock(ob.owner))
	if err != nil {
		return nil, errorf(p, "locking its outbox: %v", err)
	}
	ob.lock = lock
	left, err := ob.claim(map[string]bool{})
	if err != nil {
		ob.release()
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

// spoolOnly spools pd unclaimed, for whichever outbox claims it.
func (ob *outbox) spoolOnly(pd *pending) {
	b, err := json.Marshal(pd)
	if err == nil {
		ob.fmu.Lock()
		err = writeDurably(filepath.Join(ob.spool, ob.hash(pd)+".json"), b)
		ob.fmu.Unlock()
	}
	if err != nil {
		pd.LastError = "spooling failed: " + err.Error()
		ob.dead(pd)
	}
}

// close stops the worker; what is queued or pending stays in the spool,
// unclaimed, for the next outbox on the folder.
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
			ob.handOver()
			ob.release()
			return
		}
	}
}

// handOver unclaims this outbox's spool files.
func (ob *outbox) handOver() {
	ob.fmu.Lock()
	defer ob.fmu.Unlock()
	entries, err := os.ReadDir(ob.spool)
	if err != nil {
		ob.p.o.Logger.Warn("handing the outbox over failed; the next start takes it over", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
		return
	}
	for _, e := range entries {
		if h, owner, ok := parseSpoolName(e.Name()); ok && owner == ob.owner {
			if err := os.Rename(filepath.Join(ob.spool, e.Name()), filepath.Join(ob.spool, h+".json")); err != nil {
				ob.p.o.Logger.Warn("handing a notification over failed; the next start takes it over", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
			}
		}
	}
	_ = syncDir(ob.spool)
}

// release drops this outbox's owner lock (and its file).
func (ob *outbox) release() {
	ob.fmu.Lock()
	defer ob.fmu.Unlock()
	_ = os.Remove(ob.ownerLock(ob.owner))
	_ = ob.lock.Unlock()
}

func (ob *outbox) ownerLock(owner string) string { return filepath.Join(ob.owners, owner+".lock") }

// hash names a notification's spool file.
func (ob *outbox) hash(pd *pending) string {
	sum := sha256.Sum256([]byte(pd.Notification.ID))
	return hex.EncodeToString(sum[:16])
}

// file is pd's spool file as claimed by this outbox.
func (ob *outbox) file(pd *pending) string {
	return filepath.Join(ob.spool, ob.hash(pd)+"."+ob.owner+".json")
}

// parseSpoolName splits a spool file name: <hash>.json (unclaimed, owner
// "") or <hash>.<owner>.json.
func parseSpoolName(name string) (hash, owner string, ok bool) {
	base, isJSON := strings.CutSuffix(name, ".json")
	if !isJSON {
		return "", "", false
	}
	hash, owner, _ = strings.Cut(base, ".")
	if hash == "" || strings.Contains(owner, ".") {
		return "", "", false
	}
	return hash, owner, true
}

// claim takes every spool file that no live outbox holds (unclaimed, or
// claimed by an outbox whose lock is free: its process died) and returns
// the notifications this outbox holds that known (by spool hash) lacks,
// oldest first.
func (ob *outbox) claim(known map[string]bool) ([]*pending, error) {
	ob.fmu.Lock()
	defer ob.fmu.Unlock()
	entries, err := os.ReadDir(ob.spool)
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	var dead []*filelock.Lock
	defer func() {
		for _, l := range dead {
			_ = l.Unlock()
		}
	}()
	isLive := func(owner string) bool {
		if v, seen := live[owner]; seen {
			return v
		}
		l, err := filelock.TryLock(ob.ownerLock(owner))
		live[owner] = err != nil // locked, or cannot tell: leave its files
		if err == nil {
			_ = os.Remove(ob.ownerLock(owner))
			dead = append(dead, l)
		}
		return live[owner]
	}
	var out []*pending
	for _, e := range entries {
		h, owner, ok := parseSpoolName(e.Name())
		if !ok || known[h] && owner == ob.owner {
			continue
		}
		if owner != ob.owner {
			if owner != "" && isLive(owner) {
				continue
			}
			// Atomic: if another outbox claimed it first, it is gone.
			if err := os.Rename(filepath.Join(ob.spool, e.Name()), filepath.Join(ob.spool, h+"."+ob.owner+".json")); err != nil {
				continue
			}
			if known[h] {
				continue // the same notification again: held already
			}
		}
		raw, err := os.ReadFile(filepath.Join(ob.spool, h+"."+ob.owner+".json"))
		if err != nil {
			return nil, err
		}
		var pd pending
		if err := json.Unmarshal(raw, &pd); err != nil {
			continue // a torn write of a notification never delivered nor acknowledged
		}
		if canon := ob.hash(&pd); canon != h {
			// Not named by its id's hash (written by hand or by another
			// tool): give it its canonical name, which the outbox uses.
			if known[canon] || os.Rename(filepath.Join(ob.spool, h+"."+ob.owner+".json"), ob.file(&pd)) != nil {
				continue
			}
			h = canon
		}
		pd.spooled = true
		known[h] = true
		out = append(out, &pd)
	}
	// Lock files of outboxes that died holding nothing.
	if locks, err := os.ReadDir(ob.owners); err == nil {
		for _, e := range locks {
			if owner, ok := strings.CutSuffix(e.Name(), ".lock"); ok && owner != ob.owner {
				isLive(owner)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Enqueued.Before(out[j].Enqueued) })
	return out, nil
}

// save writes pd to its claimed spool file durably (write, fsync,
// rename). With mustExist, it writes only if that file is still there (an
// erasure removes it) and reports whether it did.
func (ob *outbox) save(pd *pending, mustExist bool) (bool, error) {
	b, err := json.Marshal(pd)
	if err != nil {
		return true, err
	}
	ob.fmu.Lock()
	defer ob.fmu.Unlock()
	if mustExist && !ob.heldLocked(pd) {
		return false, nil
	}
	err = writeDurably(ob.file(pd), b)
	pd.spooled = pd.spooled || err == nil
	return true, err
}

// held reports whether pd is still this outbox's to deliver: its spool
// file was not removed by an erasure.
func (ob *outbox) held(pd *pending) bool {
	ob.fmu.Lock()
	defer ob.fmu.Unlock()
	return ob.heldLocked(pd)
}

func (ob *outbox) heldLocked(pd *pending) bool {
	if !pd.spooled {
		return true
	}
	_, err := os.Stat(ob.file(pd))
	return !errors.Is(err, os.ErrNotExist)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
	ob.fmu.Lock()
	err := os.Remove(ob.file(pd))
	ob.fmu.Unlock()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		ob.p.o.Logger.Warn("removing a delivered notification from the outbox", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
	}
}

// dead appends pd to the dead-letter file and drops it from the spool (if
// an erasure has not removed it meanwhile).
func (ob *outbox) dead(pd *pending) {
	line, _ := json.Marshal(DeadLetter{Notification: pd.Notification, Attempts: pd.Attempts, LastError: pd.LastError, Enqueued: pd.Enqueued, DeadAt: time.Now().UTC()})
	ob.fmu.Lock()
	if !ob.heldLocked(pd) {
		ob.fmu.Unlock()
		return
	}
	err := appendLine(ob.deadLetter, line)
	if err == nil && pd.spooled {
		if rerr := os.Remove(ob.file(pd)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			ob.p.o.Logger.Warn("removing a dead-lettered notification from the outbox", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(rerr))
		}
	}
	ob.fmu.Unlock()
	if err != nil {
		// Keep it spooled: it is retried at the next start.
		ob.p.o.Logger.Error("writing the dead-letter file failed; the notification stays in the outbox", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
		return
	}
	ob.p.o.Logger.Error("notification dead-lettered after its last attempt", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name),
		zap.Int("attempts", pd.Attempts), zap.String("file", ob.deadLetter))
	ob.p.observe("dead_letter", time.Now(), errors.New(pd.LastError))
}

// erase deletes every notification of participant from the spool (whoever
// claimed it: an outbox that holds one drops it before its next attempt)
// and from the dead-letter file, which is rewritten without their lines
// (temporary file, fsync, rename). Stale temporary files go too.
func (ob *outbox) erase(participant string) error {
	quoted, _ := json.Marshal(participant)
	ob.fmu.Lock()
	defer ob.fmu.Unlock()
	entries, err := os.ReadDir(ob.spool)
	if err != nil {
		return err
	}
	removed := 0
	for _, e := range entries {
		path := filepath.Join(ob.spool, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			// Every write holds fmu: this is a leftover of a crash.
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		if _, _, ok := parseSpoolName(e.Name()); !ok {
			continue
		}
		raw, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		var pd pending
		if json.Unmarshal(raw, &pd) == nil && pd.Notification.Decision.Participant != participant {
			continue
		}
		if pd.Notification.Decision.Participant != participant && !bytes.Contains(raw, quoted) {
			continue // unreadable, but not theirs
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		removed++
	}
	if removed > 0 {
		if err := syncDir(ob.spool); err != nil {
			return err
		}
	}
	return ob.eraseDeadLetters(participant, quoted)
}

func (ob *outbox) eraseDeadLetters(participant string, quoted []byte) error {
	raw, err := os.ReadFile(ob.deadLetter)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var kept []byte
	dropped := false
	for line := range bytes.Lines(raw) {
		var dl DeadLetter
		body := bytes.TrimSpace(line)
		if len(body) == 0 {
			continue
		}
		theirs := bytes.Contains(body, quoted) // an unreadable line naming them goes too
		if json.Unmarshal(body, &dl) == nil {
			theirs = dl.Notification.Decision.Participant == participant
		}
		if theirs {
			dropped = true
			continue
		}
		kept = append(append(kept, body...), '\n')
	}
	if !dropped {
		return nil
	}
	if err := writeDurably(ob.deadLetter, kept); err != nil {
		return err
	}
	return syncDir(filepath.Dir(ob.deadLetter))
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
	known := map[string]bool{} // spool hashes of the notifications held
	for _, pd := range waiting {
		known[ob.hash(pd)] = true
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
			if known[ob.hash(pd)] {
				continue
			}
			if _, err := ob.save(pd, false); err != nil {
				ob.p.o.Logger.Error("spooling a notification failed; delivering from memory", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
			}
			pd.next = time.Now()
			known[ob.hash(pd)] = true
			waiting = append(waiting, pd)
		case <-rescan.C:
			// Spooled by another outbox on this folder (a retired study
			// version), left by a crashed one, or spooled while the queue
			// was full.
			found, err := ob.claim(known)
			if err != nil {
				ob.p.o.Logger.Warn("rescanning the outbox failed", zap.String("study", ob.p.study), zap.String("plugin", ob.p.cfg.Name), zap.Error(err))
			}
			for _, pd := range found {
				pd.next = time.Now()
				waiting = append(waiting, pd)
			}
		case <-timer.C:
			pd := waiting[0]
			waiting = waiting[1:]
			if !ob.held(pd) { // erased
				delete(known, ob.hash(pd))
				continue
			}
			if ob.deliver(pd) {
				delete(known, ob.hash(pd))
				continue
			}
			if pd.Attempts >= ob.p.cfg.Retry.Attempts {
				delete(known, ob.hash(pd))
				ob.dead(pd)
				continue
			}
			if ok, _ := ob.save(pd, true); !ok { // erased meanwhile
				delete(known, ob.hash(pd))
				continue
			}
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
		_, err := c.notif.Notify(ctx, &pb.NotifyRequest{Id: n.ID, Decision: pbDecision(n.Decision), Action: n.Action, Reasons: n.Reasons, Intervention: n.Intervention, Attempt: int32(pd.Attempts)})
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
