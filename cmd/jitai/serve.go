package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/console"
	"github.com/jitai/jitai/engine/metrics"
	"github.com/jitai/jitai/engine/ratelimit"
	"github.com/jitai/jitai/engine/store/redisstore"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/policies"
)

// newServeCmd is `jitai serve`: the HTTP API for the studies in a folder.
func newServeCmd() *cobra.Command {
	var flags *configFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API for the studies in a folder",
		Long: `Serve the HTTP API for the studies under --studies, with the embedded store
under --data or the Redis store (--store redis --redis-url URL).

Precedence: flags, then JITAI_* environment variables (JITAI_ADDR,
JITAI_STUDIES, ...), then the YAML file of --config (keys as the flags, with _
for -), then defaults. The studies are hot-reloaded when they change (see
--watch-interval) and on SIGHUP. SIGINT or SIGTERM drain in-flight requests
and stop.`,
		Example: `  jitai serve --studies policies/examples --data ./data
  jitai serve --store redis --redis-url redis://127.0.0.1:6379/0
  jitai serve --auth token --addr 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := flags.load(cmd.Flags(), os.Getenv)
			if err != nil {
				return usageErrorf("%v", err)
			}
			return runServe(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	flags = bindConfigFlags(cmd.Flags())
	return cmd
}

// runServe serves cfg until SIGINT or SIGTERM, logging to stderr.
func runServe(ctx context.Context, cfg *Config, stderr io.Writer) error {
	if os.Getenv("GOGC") == "" {
		// The decision path allocates briskly and the live heap is small:
		// collecting at 200% rather than 100% growth spends about a tenth
		// less CPU per decision. GOGC, if set, wins.
		debug.SetGCPercent(200)
	}
	log, err := newLogger(cfg.LogLevel, stderr)
	if err != nil {
		return usageErrorf("%v", err)
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// JITAI_CPU_PROFILE=FILE writes a CPU profile of the whole run (for
	// performance work; FILE gets the process id appended).
	if path := os.Getenv("JITAI_CPU_PROFILE"); path != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
		}
	}
	if err := serve(ctx, cfg, log, nil); err != nil {
		log.Error("serve failed", zap.Error(err))
		return err
	}
	return nil
}

// openStore opens the configured store and the rate limiter that goes with
// it: in process for the embedded store, shared through Redis otherwise.
func openStore(ctx context.Context, cfg *Config, log *zap.Logger) (trial.Store, ratelimit.Limiter, error) {
	if cfg.Store == "redis" {
		redisstore.RouteClientLogs(log)
		st, err := redisstore.Open(ctx, cfg.RedisURL, redisstore.Options{EraseRewriteAOF: cfg.EraseRewriteAOF}, log)
		if err != nil {
			return nil, nil, fmt.Errorf("opening the Redis store: %w", err)
		}
		return st, ratelimit.NewRedis(st.Client()), nil
	}
	st, err := sqlite.Open(filepath.Join(cfg.Data, "jitai.db"), sqlite.Options{Durability: cfg.Durability, WALLimit: cfg.WALLimit, MinFree: cfg.MinFree}, log)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the embedded store: %w", err)
	}
	return st, ratelimit.NewMemory(nil), nil
}

func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

// serve runs the server until ctx ends, then drains in-flight requests and
// closes the store. ready, if not nil, receives the bound address.
func serve(ctx context.Context, cfg *Config, log *zap.Logger, ready chan<- string) error {
	cat, err := interventions.Embedded()
	if err != nil {
		return fmt.Errorf("loading the intervention catalogue: %w", err)
	}
	if err := checkStudiesFolder(cfg.Studies); err != nil {
		return err
	}
	store, limiter, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			_ = store.Close()
		}
	}()
	// --evaluator is the evaluator of studies whose study.yaml has none,
	// at start and on every reload.
	// A study with enrolled participants keeps the between-person design
	// pinned in the store at its first enrolment.
	loadOpts := policies.LoadOptions{Evaluator: cfg.Evaluator, PinnedDesign: engine.DesignPins(ctx, store)}
	// A reload runs the new version's own tests and scenarios first.
	load := func(ctx context.Context, dir string) (*policies.Study, error) {
		s, err := policies.LoadStudy(ctx, dir, cat, loadOpts)
		if err != nil {
			return nil, err
		}
		if err := gateStudy(ctx, s); err != nil {
			return nil, err
		}
		return s, nil
	}
	studies, err := policies.LoadStudies(ctx, cfg.Studies, cat, loadOpts)
	if err != nil {
		return err
	}
	for _, s := range studies {
		ev, why := s.Policy.Evaluator()
		log.Info("study loaded", zap.String("study", s.Config.ID), zap.String("policy_revision", s.Revision), zap.Int("interventions", s.Catalogue.Len()), zap.String("evaluator", ev))
		if why != nil {
			log.Warn("policy evaluated by topdown: the planned IR cannot run it", zap.String("study", s.Config.ID), zap.String("reason", why.Error()))
		}
	}
	met := metrics.New()
	for _, s := range studies {
		met.AddStudy(s.Config.ID)
	}
	eng, err := engine.New(engine.Components{
		Store: store, Studies: studies, Logger: log, Observer: met,
		PolicyTimeout: cfg.PolicyTimeout, MaxClockSkew: cfg.MaxClockSkew, Loader: load,
		Plugins:  host.Factory(host.Options{DataDir: filepath.Join(cfg.Data, "plugins"), Logger: log, Observer: met}),
		Channels: channelFactory(os.Getenv),
	})
	if err != nil {
		return err
	}
	met.WatchHealth(eng)
	defer func() {
		if err := eng.Close(); err != nil { // stops plugin processes
			log.Warn("stopping plugins", zap.Error(err))
		}
	}()
	opts := api.Options{RequestTimeout: cfg.RequestTimeout, Limiter: limiter, Metrics: met}
	if cfg.RateLimit > 0 {
		opts.RateLimit = ratelimit.PerSecond(cfg.RateLimit, cfg.RateBurst)
	}
	srv := api.New(eng, log, opts)
	stopWatch := watchStudies(ctx, cfg, eng, met, log) // see reload.go
	defer stopWatch()
	if err := checkListen(cfg.Addr, &cfg.AuthConfig); err != nil {
		return err
	}
	closeAuth, err := setupAuth(ctx, &cfg.AuthConfig, srv, eng.AuditKey, log)
	if err != nil {
		return err
	}
	defer closeAuth()
	con, err := console.New(eng, console.Options{Tokens: srv.Tokens(), Permits: api.Permits, Logger: log})
	if err != nil {
		return err
	}
	go func() { // the health aggregates, from the decision log (see docs/console.md)
		if err := eng.WarmHealth(ctx); err != nil && ctx.Err() == nil {
			log.Warn("rebuilding study health from the decision log failed; the first health request retries", zap.Error(err))
		}
	}()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	if ln, err = tlsListener(ln, &cfg.AuthConfig); err != nil {
		return err
	}
	if cfg.TLSCert == "" {
		// net/http's own error answers as problem+json (not under TLS).
		ln = api.ProblemListener(ln)
	}
	// The API's edge: header and body read deadlines, header size; the
	// console answers /console, the API the rest.
	hs := srv.HTTPServer()
	hs.Handler = con.Wrap(srv)
	log.Info("serving", zap.String("addr", ln.Addr().String()), zap.String("store", cfg.Store), zap.String("data", cfg.Data), zap.String("durability", cfg.Durability))
	if ready != nil {
		ready <- ln.Addr().String()
	}
	stopClock := runClock(ctx, cfg, eng, log)
	defer stopClock()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	srv.SetDraining()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("drain incomplete", zap.Error(err))
	}
	stopWatch() // no reload may start plugins while they are being stopped
	stopClock()
	if err := eng.Close(); err != nil {
		log.Warn("stopping plugins", zap.Error(err))
	}
	closed = true
	if err := store.Close(); err != nil {
		return fmt.Errorf("closing the store: %w", err)
	}
	log.Info("stopped")
	return nil
}
