// Package host starts and supervises a study's out-of-process plugins
// (docs/plugins.md) and implements the engine's plugin interfaces with
// them: it verifies each executable's SHA-256 before every start, runs it
// with hashicorp/go-plugin over gRPC with AutoMTLS, restarts a crashed
// plugin with exponential backoff (calls fail fast meanwhile, so the
// engine's fallback applies), bounds every call by the plugin's deadline,
// and delivers notifications at least once through an on-disk outbox with
// a dead-letter file.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// Options configure a Host.
type Options struct {
	// DataDir holds each plugin's own folder (<DataDir>/<study>/<plugin>,
	// passed to the plugin) and each notifier's outbox
	// (<DataDir>/<study>/<plugin>.outbox). Required.
	DataDir string
	// Logger receives the host's own messages (never plugin output, which
	// may hold participant data).
	Logger *zap.Logger
	// Observer, if set, receives every plugin call.
	Observer engine.PluginObserver
	// PluginOutput, if set, receives the plugins' stderr (for debugging on
	// a developer's machine only); discarded otherwise.
	PluginOutput io.Writer
	// StartTimeout bounds a plugin's start and Configure call (default 10s).
	StartTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before restarting a crashed
	// plugin (defaults 100ms and 30s); the delay doubles on each crash and
	// resets once the plugin has run for MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// CheckInterval is how often a plugin's process is checked for having
	// exited (default 100ms); a failed call checks at once.
	CheckInterval time.Duration
	// OutboxRescan is how often a notifier's outbox looks for notifications
	// spooled by another outbox on the same folder, such as one of a study
	// version retired by a reload (default 10s).
	OutboxRescan time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 100 * time.Millisecond
	}
	if o.OutboxRescan <= 0 {
		o.OutboxRescan = 10 * time.Second
	}
}

// Factory returns the engine's plugin factory: Start for each loaded study
// version.
func Factory(o Options) engine.PluginFactory {
	return func(s *policies.Study) (engine.StudyPlugins, error) {
		return Start(s, o)
	}
}

// Set is one study version's running plugins. It implements
// engine.StudyPlugins.
type Set struct {
	study     string
	procs     map[string]*proc
	outboxes  map[string]*outbox
	closeOnce sync.Once
}

var (
	_ engine.StudyPlugins = (*Set)(nil)
	_ engine.PluginEraser = (*Set)(nil)
)

// Start verifies and starts every plugin the study declares. It fails,
// stopping what it started, if any plugin's executable does not match its
// checksum or does not start.
func Start(s *policies.Study, o Options) (*Set, error) {
	o.setDefaults()
	if o.DataDir == "" && len(s.Config.Plugins) > 0 {
		return nil, errors.New("plugin host needs a data folder")
	}
	set := &Set{study: s.Config.ID, procs: map[string]*proc{}, outboxes: map[string]*outbox{}}
	for i := range s.Config.Plugins {
		pc := s.Config.Plugins[i]
		p, err := newProc(s, pc, &o)
		if err == nil {
			err = p.start()
		}
		if err != nil {
			_ = set.Close()
			return nil, err
		}
		set.procs[pc.Name] = p
		go p.supervise()
		if pc.Kind == policies.PluginNotifier {
			ob, err := newOutbox(p, filepath.Join(o.DataDir, s.Config.ID, pc.Name+".outbox"))
			if err != nil {
				_ = set.Close()
				return nil, err
			}
			set.outboxes[pc.Name] = ob
		}
	}
	return set, nil
}

// Enricher implements engine.StudyPlugins.
func (s *Set) Enricher(name string) engine.Enricher {
	if p := s.procs[name]; p != nil && p.cfg.Kind == policies.PluginEnricher {
		return enricher{p}
	}
	return nil
}

// ProbabilityProvider implements engine.StudyPlugins.
func (s *Set) ProbabilityProvider(name string) engine.ProbabilityProvider {
	if p := s.procs[name]; p != nil && p.cfg.Kind == policies.PluginProbability {
		return provider{p}
	}
	return nil
}

// Notifier implements engine.StudyPlugins.
func (s *Set) Notifier(name string) engine.Notifier {
	if ob := s.outboxes[name]; ob != nil {
		return ob
	}
	return nil
}

// Version implements engine.StudyPlugins.
func (s *Set) Version(name string) string {
	if p := s.procs[name]; p != nil {
		return p.version()
	}
	return ""
}

// PID is the process id of the named plugin (0 when it is not running),
// for operators and tests.
func (s *Set) PID(name string) int {
	if p := s.procs[name]; p != nil {
		if c := p.current(); c != nil {
			if rc := c.client.ReattachConfig(); rc != nil {
				return rc.Pid
			}
		}
	}
	return 0
}

// EraseParticipant implements engine.PluginEraser: it removes the
// participant's notifications from every notifier's spool (pending, whoever
// holds them) and dead-letter file, and calls every plugin's Erase (a
// plugin that does not implement it keeps nothing per participant). Every
// plugin is asked even if one fails; the error names the plugins that
// failed, never the participant.
func (s *Set) EraseParticipant(ctx context.Context, study, participant string) error {
	if study != s.study {
		return fmt.Errorf("erase: plugins of study %s asked to erase in study %s", s.study, study)
	}
	var errs []error
	for name, ob := range s.outboxes {
		if err := ob.erase(participant); err != nil {
			errs = append(errs, fmt.Errorf("notifier %s outbox: %w", name, err))
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Go(func() {
			if err := p.erase(ctx, participant); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops the notifiers' outboxes (what is pending stays on disk for
// the next start) and then the plugins.
func (s *Set) Close() error {
	s.closeOnce.Do(func() {
		for _, ob := range s.outboxes {
			ob.close()
		}
		var wg sync.WaitGroup
		for _, p := range s.procs {
			wg.Go(p.close)
		}
		wg.Wait()
	})
	return nil
}

func hcLogger(name string, o *Options) hclog.Logger {
	out := o.PluginOutput
	if out == nil {
		out = io.Discard
	}
	return hclog.New(&hclog.LoggerOptions{Name: "plugin." + name, Output: out, Level: hclog.Info})
}

// pluginEnv is the environment a plugin runs with: not the engine's, which
// may hold secrets (store URLs, tokens).
func pluginEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "TMPDIR", "TZ", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (p *proc) observe(call string, start time.Time, err error) {
	if p.o.Observer != nil {
		outcome := engine.PluginOutcome(err)
		if errors.Is(err, engine.ErrPluginInvalid) {
			outcome = trial.PluginInvalid
		}
		p.o.Observer.PluginCall(p.study, p.cfg.Name, p.cfg.Kind, call, outcome, time.Since(start))
	}
}

func errorf(p *proc, format string, args ...any) error {
	return fmt.Errorf("study %s, plugin %s (%s): %s", p.study, p.cfg.Name, p.exe, fmt.Sprintf(format, args...))
}

var errClosed = fmt.Errorf("%w: plugin host closed", engine.ErrPluginUnavailable)

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
