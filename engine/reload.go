package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// Hot reload (docs/architecture.md, docs/study.md "Changing a running
// study"). A new version of a study is loaded, compiled and checked without
// any lock a decision could wait on, then swapped in with one atomic store
// of a new studies map (copy on write). A decision loads its *StudyRuntime
// once and uses that pointer to the end, so it finishes on the version it
// started with; its record names that version's revision. A version that
// fails to load changes nothing: the last good one keeps serving and the
// failure is kept for GET /v1/studies/{study}.

// Reload outcomes.
const (
	// ReloadLoaded: a new revision was swapped in.
	ReloadLoaded = "loaded"
	// ReloadAdded: a study the engine did not serve was loaded.
	ReloadAdded = "added"
	// ReloadUnchanged: the files give the revision already serving.
	ReloadUnchanged = "unchanged"
	// ReloadFailed: the new version was refused; the last good one serves.
	ReloadFailed = "failed"
)

// Bounds of what is kept per study.
const (
	// keepRevisions is how many versions (serving and retired) are kept for
	// StudyAt, so that replay and explain can use the version a decision
	// was made with.
	keepRevisions = 16
	// keepAttempts is how many reload attempts are kept.
	keepAttempts = 32
)

// StudyLoader loads, validates and compiles the study in a folder.
type StudyLoader func(ctx context.Context, dir string) (*policies.Study, error)

// ReloadAttempt is the outcome of one reload of a study.
type ReloadAttempt struct {
	Study string `json:"study"`
	Dir   string `json:"dir"`
	// Outcome is loaded, added, unchanged or failed.
	Outcome string `json:"outcome"`
	// Revision is the revision serving after the attempt.
	Revision string `json:"policy_revision"`
	// Previous is the revision that served before it ("" for a new study).
	Previous string `json:"previous_revision,omitempty"`
	// Errors are the problems that refused the new version, as
	// file:line: reason.
	Errors []string  `json:"errors,omitempty"`
	At     time.Time `json:"at"`
	// TookMillis is how long loading, compiling and swapping took.
	TookMillis float64 `json:"took_ms"`
}

// Err is the attempt's failure as an error (nil unless it failed).
func (a *ReloadAttempt) Err() error {
	if a.Outcome != ReloadFailed {
		return nil
	}
	return &ReloadError{Attempt: a}
}

// ReloadError is a refused reload; the last good version keeps serving.
type ReloadError struct{ Attempt *ReloadAttempt }

func (e *ReloadError) Error() string {
	msg := fmt.Sprintf("reload of study %s refused; revision %.12s keeps serving", e.Attempt.Study, e.Attempt.Previous)
	for _, s := range e.Attempt.Errors {
		msg += "\n" + s
	}
	return msg
}

// RevisionEntry is one version of a study in its history.
type RevisionEntry struct {
	Revision string    `json:"policy_revision"`
	LoadedAt time.Time `json:"loaded_at"`
	// RetiredAt is when a newer version replaced it (absent while serving).
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	rt        *StudyRuntime
}

// ReloadStatus is what GET /v1/studies/{study} shows of a study's reloads.
type ReloadStatus struct {
	Revision string    `json:"policy_revision"`
	LoadedAt time.Time `json:"loaded_at"`
	// LastAttempt is the latest reload attempt (absent before the first).
	LastAttempt *ReloadAttempt `json:"last_attempt,omitempty"`
	// LastError is the latest failed attempt, kept until a later attempt
	// succeeds.
	LastError *ReloadAttempt `json:"last_error,omitempty"`
	// Revisions lists the versions kept, newest first.
	Revisions []RevisionEntry `json:"revisions"`
	// Attempts lists the latest reload attempts, newest first.
	Attempts []ReloadAttempt `json:"attempts"`
}

// studyHistory is one study's versions and reload attempts.
type studyHistory struct {
	revisions []RevisionEntry // oldest first
	attempts  []ReloadAttempt // oldest first
	lastError *ReloadAttempt
}

// reloader is the engine's reload state. Decisions never take its locks.
type reloader struct {
	load StudyLoader
	// swap serialises copy-on-write updates of the studies map.
	swap sync.Mutex
	// closed (under swap) refuses swaps once Engine.Close has begun, so no
	// version's plugins are started after Close closed the serving ones.
	closed bool
	// perStudy serialises reloads of one study, so that two reloads cannot
	// swap in their versions out of order.
	perStudy sync.Map // id or dir -> *sync.Mutex
	mu       sync.Mutex
	history  map[string]*studyHistory
	// retiring counts retired versions still draining in-flight decisions.
	retiring sync.WaitGroup
}

func (r *reloader) studyLock(key string) *sync.Mutex {
	m, _ := r.perStudy.LoadOrStore(key, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// defaultLoader loads a folder with the built-in intervention catalogue and
// the designs pinned in the engine's store, as jitai serve does.
func (e *Engine) defaultLoader(ctx context.Context, dir string) (*policies.Study, error) {
	cat, err := interventions.Embedded()
	if err != nil {
		return nil, err
	}
	return policies.LoadStudy(ctx, dir, cat, policies.LoadOptions{PinnedDesign: DesignPins(ctx, e.store)})
}

// initReload sets up the reload state for the studies the engine starts with.
func (e *Engine) initReload(load StudyLoader, studies map[string]*StudyRuntime) {
	if load == nil {
		load = e.defaultLoader
	}
	e.reload = &reloader{load: load, history: map[string]*studyHistory{}}
	for id, rt := range studies {
		e.reload.history[id] = &studyHistory{revisions: []RevisionEntry{{Revision: rt.Revision, LoadedAt: rt.LoadedAt, rt: rt}}}
	}
}

// ReloadStudy reloads a served study from its folder. It returns the attempt
// and, when the new version was refused, a *ReloadError (the last good
// version keeps serving).
func (e *Engine) ReloadStudy(ctx context.Context, id string) (*ReloadAttempt, error) {
	rt, ok := e.Study(id)
	if !ok {
		return nil, ErrUnknownStudy
	}
	return e.LoadStudyDir(ctx, rt.Dir)
}

// LoadStudyDir loads the study in dir and serves it: a new revision of a
// served study replaces the old one; a study the engine does not serve yet
// is added. Errors are as for ReloadStudy.
func (e *Engine) LoadStudyDir(ctx context.Context, dir string) (*ReloadAttempt, error) {
	mu := e.reload.studyLock("dir:" + dir)
	mu.Lock()
	defer mu.Unlock()
	start := time.Now()
	s, err := e.reload.load(ctx, dir)
	if err != nil {
		a := &ReloadAttempt{Study: e.studyOfDir(dir), Dir: dir, Outcome: ReloadFailed, Errors: errorLines(err), At: e.now().UTC()}
		if cur, ok := e.Study(a.Study); ok {
			a.Previous, a.Revision = cur.Revision, cur.Revision
		}
		a.TookMillis = millis(time.Since(start))
		e.recordAttempt(a)
		return a, a.Err()
	}
	return e.swapIn(s, start)
}

// Swap serves an already loaded study: a new revision of a served study
// replaces the old one (after the same checks as a reload), a new study is
// added. Errors are as for ReloadStudy.
func (e *Engine) Swap(s *policies.Study) (*ReloadAttempt, error) {
	mu := e.reload.studyLock("dir:" + s.Dir)
	mu.Lock()
	defer mu.Unlock()
	return e.swapIn(s, time.Now())
}

// swapIn builds the runtime outside any lock a decision takes, then swaps
// the studies map.
func (e *Engine) swapIn(s *policies.Study, start time.Time) (*ReloadAttempt, error) {
	id := s.Config.ID
	a := &ReloadAttempt{Study: id, Dir: s.Dir, Revision: s.Revision, At: e.now().UTC()}
	cur, serving := e.Study(id)
	if serving {
		a.Previous = cur.Revision
		if cur.Revision == s.Revision {
			a.Outcome = ReloadUnchanged
			a.TookMillis = millis(time.Since(start))
			e.recordAttempt(a)
			return a, nil
		}
	}
	var problems []string
	if serving {
		if cur.Dir != s.Dir {
			problems = append(problems, fmt.Sprintf("%s: study id %q is already served from %s", s.Dir, id, cur.Dir))
		}
		problems = append(problems, experimentChanges(cur.Study, s)...)
	} else if other := e.studyOfDir(s.Dir); other != "" && other != id {
		problems = append(problems, fmt.Sprintf("%s/study.yaml: id changed from %q to %q: a served study's id cannot change; restart the server to rename it", s.Dir, other, id))
	}
	var rt *StudyRuntime
	if len(problems) == 0 {
		var err error
		if rt, err = e.newRuntime(s); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		a.Outcome, a.Errors, a.Revision = ReloadFailed, problems, a.Previous
		a.TookMillis = millis(time.Since(start))
		e.recordAttempt(a)
		return a, a.Err()
	}

	e.reload.swap.Lock()
	if e.reload.closed {
		e.reload.swap.Unlock()
		_ = rt.Close() // its plugins never served
		a.Outcome, a.Revision = ReloadFailed, a.Previous
		a.Errors = []string{fmt.Sprintf("%s: the engine is shutting down", s.Dir)}
		a.TookMillis = millis(time.Since(start))
		e.recordAttempt(a)
		return a, a.Err()
	}
	old := *e.studies.Load()
	if old[id] != cur {
		// Another folder's reload of the same id won the race.
		e.reload.swap.Unlock()
		_ = rt.Close() // its plugins never served
		a.Outcome, a.Revision = ReloadFailed, a.Previous
		a.Errors = []string{fmt.Sprintf("%s: study %s was reloaded from another folder meanwhile; reload again", s.Dir, id)}
		a.TookMillis = millis(time.Since(start))
		e.recordAttempt(a)
		return a, a.Err()
	}
	next := make(map[string]*StudyRuntime, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[id] = rt
	e.studies.Store(&next)
	e.reload.swap.Unlock()

	a.Outcome = ReloadLoaded
	if !serving {
		a.Outcome = ReloadAdded
	}
	a.TookMillis = millis(time.Since(start))
	e.recordAttempt(a)
	e.reload.mu.Lock()
	h := e.reload.historyOf(id)
	now := a.At
	if n := len(h.revisions); n > 0 && h.revisions[n-1].RetiredAt == nil {
		h.revisions[n-1].RetiredAt = &now
	}
	h.revisions = append(h.revisions, RevisionEntry{Revision: rt.Revision, LoadedAt: rt.LoadedAt, rt: rt})
	if len(h.revisions) > keepRevisions {
		h.revisions = slices.Delete(h.revisions, 0, len(h.revisions)-keepRevisions)
	}
	e.reload.mu.Unlock()
	if serving {
		e.retire(cur)
	}
	return a, nil
}

// experimentChanges refuses changes that would alter randomisation or
// assignment mid-study: the seed, the strata, the between-person design.
func experimentChanges(old, s *policies.Study) []string {
	file := s.Dir + "/study.yaml"
	var out []string
	if old.Config.Seed != s.Config.Seed {
		out = append(out, file+": seed changed: it keys every draw and assignment, so it cannot change on a running study (restart deliberately if this is a new study)")
	}
	if !slices.Equal(old.Config.Strata, s.Config.Strata) {
		out = append(out, file+": strata changed: enrolment balance is kept per stratum, so strata cannot change on a running study")
	}
	between := func(st *policies.Study) string {
		d := ""
		for _, f := range st.Config.FactorsOf(policies.Between) {
			d += f.Name + "=" + f.Levels[0] + "/" + f.Levels[1] + ";"
		}
		if st.Design != nil {
			d += fmt.Sprint(st.Design.Rows())
		}
		return d
	}
	if between(old) != between(s) {
		out = append(out, file+": between-person factors or design changed: participants already enrolled were assigned under the old design, so it cannot change on a running study")
	}
	return out
}

func (r *reloader) historyOf(id string) *studyHistory {
	h, ok := r.history[id]
	if !ok {
		h = &studyHistory{}
		r.history[id] = h
	}
	return h
}

func (e *Engine) recordAttempt(a *ReloadAttempt) {
	fields := []zap.Field{zap.String("study", a.Study), zap.String("dir", a.Dir), zap.String("outcome", a.Outcome),
		zap.String("policy_revision", a.Revision), zap.Float64("took_ms", a.TookMillis)}
	switch a.Outcome {
	case ReloadFailed:
		e.log.Error("study reload refused; the last good version keeps serving", append(fields, zap.Strings("errors", a.Errors))...)
	case ReloadUnchanged:
		e.log.Debug("study reload: unchanged", fields...)
	default:
		e.log.Info("study reloaded", append(fields, zap.String("previous_revision", a.Previous))...)
	}
	if a.Study == "" {
		return // the folder's study.yaml has no readable id; the log has it
	}
	if ro, ok := e.obs.(ReloadObserver); ok {
		ro.StudyReload(a.Study, a.Outcome, time.Duration(a.TookMillis*float64(time.Millisecond)))
	}
	e.reload.mu.Lock()
	defer e.reload.mu.Unlock()
	h := e.reload.historyOf(a.Study)
	h.attempts = append(h.attempts, *a)
	if len(h.attempts) > keepAttempts {
		h.attempts = slices.Delete(h.attempts, 0, len(h.attempts)-keepAttempts)
	}
	switch a.Outcome {
	case ReloadFailed:
		cp := *a
		h.lastError = &cp
	case ReloadLoaded, ReloadAdded:
		h.lastError = nil
	}
}

// ReloadStatus returns a served study's revision, reload attempts and
// revision history.
func (e *Engine) ReloadStatus(id string) (*ReloadStatus, bool) {
	rt, ok := e.Study(id)
	if !ok {
		return nil, false
	}
	st := &ReloadStatus{Revision: rt.Revision, LoadedAt: rt.LoadedAt, Revisions: []RevisionEntry{}, Attempts: []ReloadAttempt{}}
	e.reload.mu.Lock()
	defer e.reload.mu.Unlock()
	h := e.reload.history[id]
	if h == nil {
		return st, true
	}
	for i := len(h.revisions) - 1; i >= 0; i-- {
		st.Revisions = append(st.Revisions, h.revisions[i])
	}
	for i := len(h.attempts) - 1; i >= 0; i-- {
		st.Attempts = append(st.Attempts, h.attempts[i])
	}
	if n := len(h.attempts); n > 0 {
		last := h.attempts[n-1]
		st.LastAttempt = &last
	}
	if h.lastError != nil {
		le := *h.lastError
		st.LastError = &le
	}
	return st, true
}

// StudyAt returns the version of a study with the given revision, serving
// or retired, while it is kept in the history (the last 16 versions).
// Replay and explain use it to evaluate a decision with the policy it was
// made with. A retired version's per-version resources may be closed.
func (e *Engine) StudyAt(id, revision string) (*StudyRuntime, bool) {
	if rt, ok := e.Study(id); ok && rt.Revision == revision {
		return rt, true
	}
	e.reload.mu.Lock()
	defer e.reload.mu.Unlock()
	h := e.reload.history[id]
	if h == nil {
		return nil, false
	}
	for i := len(h.revisions) - 1; i >= 0; i-- {
		if h.revisions[i].Revision == revision {
			return h.revisions[i].rt, true
		}
	}
	return nil, false
}

// studyOfDir is the id of the served study loaded from dir ("" if none).
func (e *Engine) studyOfDir(dir string) string {
	for id, rt := range *e.studies.Load() {
		if rt.Dir == dir {
			return id
		}
	}
	return ""
}

// retire closes a replaced version's per-version resources once the
// decisions that started on it have finished.
func (e *Engine) retire(rt *StudyRuntime) {
	drained := rt.life.retire()
	e.reload.retiring.Add(1)
	go func() {
		defer e.reload.retiring.Done()
		<-drained
		if err := rt.closeRetired(); err != nil {
			e.log.Warn("closing a retired study version", zap.String("study", rt.Config.ID), zap.String("policy_revision", rt.Revision), zap.Error(err))
		}
	}()
}

// WaitRetired waits until every replaced version has drained its in-flight
// decisions and been closed (for tests and shutdown).
func (e *Engine) WaitRetired() { e.reload.retiring.Wait() }

// acquire returns the serving version of a study, counted as in use until
// release is called, so that it is not closed under a decision.
func (e *Engine) acquire(id string) (rt *StudyRuntime, release func(), ok bool) {
	for {
		rt, ok := e.Study(id)
		if !ok {
			return nil, func() {}, false
		}
		if rt.life.acquire() {
			return rt, rt.life.release, true
		}
		// Retired between the load and the count: the map already holds
		// its successor.
	}
}

// lifecycle counts a version's in-flight decisions; once it is retired and
// the count reaches zero, drained is closed.
type lifecycle struct {
	n       atomic.Int64 // in-flight count, plus retiredBit once retired
	once    sync.Once
	drained chan struct{}
	closers []func() error
	mu      sync.Mutex
}

const retiredBit = 1 << 40

func (l *lifecycle) acquire() bool {
	if l.n.Add(1) >= retiredBit {
		l.release()
		return false
	}
	return true
}

func (l *lifecycle) release() {
	if l.n.Add(-1) == retiredBit {
		l.once.Do(func() { close(l.drained) })
	}
}

func (l *lifecycle) retire() <-chan struct{} {
	l.drained = make(chan struct{}) // published by the atomic add below
	if l.n.Add(retiredBit) == retiredBit {
		l.once.Do(func() { close(l.drained) })
	}
	return l.drained
}

// OnRetire registers f to run when this version has been replaced by a
// reload and its in-flight decisions have finished: the place to close
// per-version resources such as a study's plugin hosts. (A Close method on
// StudyRuntime, if one is added, is called too.)
func (rt *StudyRuntime) OnRetire(f func() error) {
	rt.life.mu.Lock()
	defer rt.life.mu.Unlock()
	rt.life.closers = append(rt.life.closers, f)
}

func (rt *StudyRuntime) closeRetired() error {
	rt.life.mu.Lock()
	fs := rt.life.closers
	rt.life.closers = nil
	rt.life.mu.Unlock()
	var errs []error
	for _, f := range fs {
		errs = append(errs, f())
	}
	if c, ok := any(rt).(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// errorLines splits a load error into its file:line problems.
func errorLines(err error) []string {
	var ce policies.ConfigErrors
	if errors.As(err, &ce) {
		out := make([]string, len(ce))
		for i, e := range ce {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
