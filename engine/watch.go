package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// WatchOptions configure a Watcher.
type WatchOptions struct {
	// Interval is how often the folder is scanned (default 1s).
	Interval time.Duration
	// Debounce is how long a changed study must stay unchanged before it is
	// reloaded, so that an editor's or a deploy's several writes make one
	// reload (default 500ms).
	Debounce time.Duration
	// OnAttempt, if set, is called after every reload attempt.
	OnAttempt func(*ReloadAttempt)
}

// Watcher polls a studies folder and reloads a study when its study.yaml or
// policy/*.rego files change, and loads study folders that appear. A study
// whose folder disappears keeps serving (logged once). Polling hashes the
// files' contents, so it sees every change whatever the file system's
// timestamp resolution.
type Watcher struct {
	eng  *Engine
	root string
	opt  WatchOptions
	now  func() time.Time

	mu    sync.Mutex
	dirs  map[string]*watchedDir
	force chan struct{}
}

type watchedDir struct {
	seen      string // fingerprint last loaded or attempted
	pending   string // a changed fingerprint waiting to settle
	changedAt time.Time
	gone      bool
	// shadow is the fingerprint of the study's shadow/ folder last acted
	// on, shadowPending one waiting to settle (seen in two scans).
	shadow, shadowPending string
}

// NewWatcher returns a watcher of root for the engine. The fingerprints of
// the folders the engine already serves are taken now, so only later changes
// cause reloads.
func NewWatcher(e *Engine, root string, opt WatchOptions) *Watcher {
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	if opt.Debounce < 0 {
		opt.Debounce = 0
	} else if opt.Debounce == 0 {
		opt.Debounce = 500 * time.Millisecond
	}
	w := &Watcher{eng: e, root: root, opt: opt, now: time.Now, dirs: map[string]*watchedDir{}, force: make(chan struct{}, 1)}
	for _, rt := range e.Studies() {
		w.dirs[rt.Dir] = &watchedDir{seen: fingerprint(rt.Dir)}
	}
	// A candidate already in a shadow/ folder is shadowed at the first scan.
	return w
}

// ReloadAll asks the running watcher to reload every study now, without
// waiting for a change (SIGHUP).
func (w *Watcher) ReloadAll() {
	select {
	case w.force <- struct{}{}:
	default:
	}
}

// Run scans until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.opt.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Scan(ctx, false)
		case <-w.force:
			w.Scan(ctx, true)
		}
	}
}

// Scan looks at the folder once and reloads what changed and settled (every
// study when force is set) and loads new study folders.
func (w *Watcher) Scan(ctx context.Context, force bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	present := map[string]bool{}
	entries, err := os.ReadDir(w.root)
	if err != nil {
		w.eng.log.Warn("watching studies: cannot read the folder; loaded studies keep serving", zap.String("dir", w.root), zap.Error(err))
		return
	}
	var due []string
	for _, ent := range entries {
		if !ent.IsDir() {
			continue
		}
		dir := filepath.Join(w.root, ent.Name())
		if _, err := os.Stat(filepath.Join(dir, "study.yaml")); err != nil {
			continue
		}
		present[dir] = true
		fp := fingerprint(dir)
		d, known := w.dirs[dir]
		if !known {
			d = &watchedDir{}
			w.dirs[dir] = d
		}
		if d.gone {
			d.gone = false
			w.eng.log.Info("study folder is back", zap.String("dir", dir))
		}
		switch {
		case force:
			d.seen, d.pending = fp, ""
			due = append(due, dir)
		case fp == d.seen:
			d.pending = ""
		case fp != d.pending:
			d.pending, d.changedAt = fp, now
			if w.opt.Debounce == 0 {
				d.seen, d.pending = fp, ""
				due = append(due, dir)
			}
		case now.Sub(d.changedAt) >= w.opt.Debounce:
			d.seen, d.pending = fp, ""
			due = append(due, dir)
		}
	}
	for dir, d := range w.dirs {
		if !present[dir] && !d.gone {
			d.gone = true
			w.eng.log.Warn("study folder removed or without study.yaml; the loaded version keeps serving until restart", zap.String("dir", dir))
		}
	}
	sort.Strings(due)
	for _, dir := range due {
		a, _ := w.eng.LoadStudyDir(ctx, dir)
		if w.opt.OnAttempt != nil && a != nil {
			w.opt.OnAttempt(a)
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(present)) {
		w.scanShadow(ctx, dir, w.dirs[dir], force)
	}
}

// scanShadow shadows the candidate in a study's shadow/ folder once its
// files settle (the same fingerprint in two scans, or at once without a
// debounce), and stops shadowing it when the folder goes.
func (w *Watcher) scanShadow(ctx context.Context, dir string, d *watchedDir, force bool) {
	sdir := filepath.Join(dir, ShadowFolder)
	fp := fingerprint(sdir)
	if fp == d.shadow && !(force && fp != "") {
		d.shadowPending = ""
		return
	}
	if fp != d.shadowPending && w.opt.Debounce > 0 && !force {
		d.shadowPending = fp
		return
	}
	d.shadow, d.shadowPending = fp, ""
	study := w.eng.studyOfDir(dir)
	if fp == "" {
		if rep, err := w.eng.Shadow(study); err == nil && rep.Source == sdir {
			_ = w.eng.DropShadow(study)
			w.eng.log.Info("shadow folder removed: the candidate is no longer shadowed", zap.String("study", study))
		}
		return
	}
	if _, err := w.eng.ShadowCandidate(ctx, sdir, sdir); err != nil {
		w.eng.log.Warn("the candidate in the shadow folder was refused", zap.String("dir", sdir), zap.Error(err))
	}
}

// fingerprint hashes a study folder's study.yaml and policy/*.rego (names
// and contents); "" when unreadable.
func fingerprint(dir string) string {
	h := sha256.New()
	files := []string{filepath.Join(dir, "study.yaml")}
	rego, _ := filepath.Glob(filepath.Join(dir, "policy", "*.rego"))
	sort.Strings(rego)
	files = append(files, rego...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		h.Write([]byte(f))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RunForcedOnly scans only when ReloadAll is called, until ctx ends (for a
// server that does not poll).
func (w *Watcher) RunForcedOnly(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.force:
			w.Scan(ctx, true)
		}
	}
}
