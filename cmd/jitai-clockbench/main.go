// Command jitai-clockbench measures the trial clock at scale (make
// bench-schedule): N participants (default 100,000) share one scheduled
// point, and it reports how long after the point's instant the last record
// and the last webhook delivery exist, and the memory the clock used.
//
//	jitai-clockbench --store sqlite            # the embedded store, one engine
//	jitai-clockbench --store redis --engines 3 # three engines on one Redis
//
// How it measures:
//
//   - The study is the example stress-mrt with one scheduled point (08:30,
//     study time zone) and a webhook delivery section; its prompt factor
//     delivers with probability --deliver-probability (default 1, so every
//     point is delivered: the worst case).
//   - The participants are enrolled directly through engine.Engine (no
//     HTTP) at 08:00 on a fake clock. The store is then closed and opened
//     again in new engines, so the memory baseline holds no enrolment
//     garbage, and the Go heap is collected.
//   - At the start, the fake clock is set to the point's instant and from
//     then on runs with the wall clock. Each engine runs RunClock, as jitai
//     serve does (FireDue then DeliverDue in a loop). The times reported are
//     wall time from that start.
//   - Records are counted as the engine reports them (ClockObserver),
//     queued deliveries as the store commits them, and deliveries by a
//     receiver in a child process (so that its memory and CPU are not the
//     engine's... though it shares the machine) that verifies every
//     Standard Webhooks signature with webhook.Verify and counts distinct
//     webhook-ids.
//   - Memory: the Go heap (runtime/metrics heap objects, sampled every 50 ms)
//     and RSS (/proc/self/statm) of this process, baseline just before the
//     point and peak until the end; and the schedule's own storage (the
//     SQLite schedule table's pages from dbstat, or MEMORY USAGE of the
//     Redis schedule keys) with all participants scheduled.
//
// With --store redis and no --redis-url it starts a private redis-server
// (no persistence) on a free loopback port and stops it at the end. The
// three engines are three engine.Engine values in this process, each with
// its own redisstore.Store (its own connection pool) on the same Redis.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // the dbstat query of the schedule's size

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/webhook"
	"github.com/jitai/jitai/engine/store/redisstore"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "receive" {
		os.Exit(receive())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitai-clockbench:", err)
		os.Exit(1)
	}
}

type config struct {
	store        string
	participants int
	engines      int
	redisURL     string
	studies      string
	study        string
	probability  float64
	enrolConc    int
	timeout      time.Duration
	workers      int
	batch        int
	cpuProfile   string
	trace        string
	label        string
}

func run(ctx context.Context, args []string) error {
	c, err := parseConfig(args)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "jitai-clockbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	study, err := writeStudy(ctx, c, tmp)
	if err != nil {
		return err
	}
	rcv, err := startReceiver()
	if err != nil {
		return err
	}
	defer rcv.stop()

	point := time.Date(2026, 11, 16, 8, 30, 0, 0, time.UTC) // a Monday; London is on GMT
	clk := &benchClock{}
	clk.base.Store(point.Add(-30 * time.Minute).UnixNano())

	var st stores
	serverCPU := func() time.Duration { return -1 } // the private redis-server's
	switch c.store {
	case "sqlite":
		st = &sqliteStores{path: filepath.Join(tmp, "jitai.db")}
	case "redis":
		url := c.redisURL
		var srv *redisServer
		if url == "" {
			srv, err = startRedis(tmp)
			if err != nil {
				return err
			}
			defer srv.stop()
			url = srv.url
		}
		st = &redisStores{url: url}
		if c.redisURL == "" {
			serverCPU = func() time.Duration { return procCPU(srv.cmd.Process.Pid) }
		}
	default:
		return fmt.Errorf("--store %q: use sqlite or redis", c.store)
	}
	if err := st.reset(ctx); err != nil {
		return err
	}

	// Enrolment, at 08:00.
	t0 := time.Now()
	if err := enrol(ctx, c, st, study, clk); err != nil {
		return err
	}
	fmt.Printf("schedule %s: enrolled %d participants in %.1fs (engine.Enroll, %d concurrent)\n", c.label, c.participants, time.Since(t0).Seconds(), c.enrolConc)
	schedBytes, schedWhat, err := st.scheduleSize(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "jitai-clockbench: the schedule's storage size: %v\n", err)
	}

	// The engines that run the clock, on freshly opened stores.
	cnt := &counters{}
	engines := make([]*engine.Engine, c.engines)
	for i := range engines {
		s, err := st.open(ctx)
		if err != nil {
			return err
		}
		eng, err := engine.New(engine.Components{Store: &countingStore{Store: s, c: cnt}, Studies: []*policies.Study{study}, Now: clk.Now,
			Observer: cnt, Clock: engine.ClockOptions{Workers: c.workers, Batch: c.batch},
			Channels: func(*policies.Study) ([]delivery.Channel, error) {
				// As jitai serve builds it (cmd/jitai/channels.go).
				ch, err := webhook.New(webhook.Config{URL: rcv.url, Secret: rcv.secret})
				return []delivery.Channel{ch}, err
			}})
		if err != nil {
			return err
		}
		engines[i] = eng
	}
	defer st.close()

	runtime.GC()
	debug.FreeOSMemory()
	mem := newSampler()
	base := mem.now()
	cpu0, server0 := cpuTime(), serverCPU()
	load0 := loadAvg()

	stopProfiles, err := startProfiles(c)
	if err != nil {
		return err
	}
	defer stopProfiles()

	// The point's instant: the clock runs from here.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	clk.start(point, start)
	go mem.run(runCtx)
	for _, eng := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := eng.RunClock(runCtx); err != nil {
				fmt.Fprintln(os.Stderr, "jitai-clockbench: RunClock:", err)
			}
		}()
	}
	lastRecord, stats, err := awaitDone(ctx, c, cnt, rcv, start)
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	cancel()
	wg.Wait()
	peak := mem.peak()
	cpu, server := cpuTime()-cpu0, serverCPU()-server0
	lastDelivery := time.Duration(stats.LastNew - start.UnixNano())

	report(c, cnt, stats, lastRecord, lastDelivery, cpu, server, server0, load0, peak, base, schedBytes, schedWhat)
	if stats.Bad > 0 || stats.Distinct != cnt.sent.Load() {
		return fmt.Errorf("the receiver refused %d requests and counted %d distinct ids for %d sent deliveries", stats.Bad, stats.Distinct, cnt.sent.Load())
	}
	return nil
}

// parseConfig reads the flags.
func parseConfig(args []string) (config, error) {
	fs := flag.NewFlagSet("jitai-clockbench", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.store, "store", "sqlite", "sqlite (embedded) or redis")
	fs.IntVar(&c.participants, "participants", 100000, "participants sharing the scheduled point")
	fs.IntVar(&c.engines, "engines", 0, "engines running the clock (default 1 for sqlite, 3 for redis)")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis to use (its database is flushed); default a private redis-server")
	fs.StringVar(&c.studies, "studies", "policies/examples", "folder of the example studies")
	fs.StringVar(&c.study, "study", "stress-mrt", "example study the benchmark study is made from")
	fs.Float64Var(&c.probability, "deliver-probability", 1, "probability that a point delivers (the prompt factor)")
	fs.IntVar(&c.enrolConc, "enrol-concurrency", 64, "concurrent enrolments")
	fs.DurationVar(&c.timeout, "timeout", 15*time.Minute, "give up after this long past the point")
	fs.IntVar(&c.workers, "workers", 0, "ClockOptions.Workers (0: the engine's default)")
	fs.IntVar(&c.batch, "batch", 0, "ClockOptions.Batch (0: the engine's default)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the firing to this file")
	fs.StringVar(&c.trace, "trace", "", "write an execution trace of the firing to this file")
	fs.StringVar(&c.label, "label", "", "label of the result line (default: the store)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.engines <= 0 {
		c.engines = 1
		if c.store == "redis" {
			c.engines = 3
		}
	}
	if c.label == "" {
		c.label = map[string]string{"sqlite": "embedded", "redis": "redis"}[c.store]
		if c.store == "redis" {
			c.label = fmt.Sprintf("redis x%d engines", c.engines)
		}
	}
	return c, nil
}

// startProfiles starts the CPU profile and the execution trace the flags
// ask for; the returned function stops them.
func startProfiles(c config) (func(), error) {
	var stops []func()
	stop := func() {
		for _, f := range stops {
			f()
		}
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return stop, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return stop, err
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}

	if c.trace != "" {
		f, err := os.Create(c.trace)
		if err != nil {
			return stop, err
		}
		if err := trace.Start(f); err != nil {
			return stop, err
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
	}

	return stop, nil
}

// awaitDone waits until every participant's point is recorded and every
// queued delivery is sent (or dead) and seen by the receiver.
func awaitDone(ctx context.Context, c config, cnt *counters, rcv *receiverProc, start time.Time) (time.Duration, receiverStats, error) {
	var lastRecord time.Duration
	var stats receiverStats
	deadline := time.After(c.timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	lastProgress := start
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return 0, stats, ctx.Err()
		case <-deadline:
			return 0, stats, fmt.Errorf("after %s: %d records, %d deliveries queued, %d sent, %d failed or expired, %d at the receiver",
				c.timeout, cnt.records.Load(), cnt.queued.Load(), cnt.sent.Load(), cnt.dead.Load(), stats.Distinct)
		case <-tick.C:
		}
		if time.Since(lastProgress) >= 10*time.Second {
			lastProgress = time.Now()
			fmt.Fprintf(os.Stderr, "  %4.0fs: %d records, %d deliveries queued, %d sent\n", time.Since(start).Seconds(), cnt.records.Load(), cnt.queued.Load(), cnt.sent.Load())
		}
		if cnt.records.Load() < int64(c.participants) {
			continue
		}
		if lastRecord == 0 {
			lastRecord = time.Duration(cnt.lastRecord.Load() - start.UnixNano())
		}
		if cnt.sent.Load()+cnt.dead.Load() < cnt.queued.Load() {
			continue
		}
		var err error
		if stats, err = rcv.stats(); err != nil {
			return 0, stats, err
		}
		done = stats.Distinct >= cnt.sent.Load()
	}
	tick.Stop()
	return lastRecord, stats, nil
}

// report prints the result lines.
func report(c config, cnt *counters, stats receiverStats, lastRecord, lastDelivery, cpu, server, server0 time.Duration, load0 string, peak, base memory, schedBytes int64, schedWhat string) {
	fmt.Printf("schedule %s: %d participants, last record %.1fs after the point, last delivery %.1fs (%d deliveries: %d distinct ids verified by the receiver, %d requests, %d refused, %d failed or expired)\n",
		c.label, c.participants, lastRecord.Seconds(), lastDelivery.Seconds(), cnt.queued.Load(), stats.Distinct, stats.Requests, stats.Bad, cnt.dead.Load())
	fmt.Printf("schedule %s: engine process CPU %.1fs over %.1fs of wall time to the last delivery (%.2f of 2 cores); load average %s at the point, %s at the end (the machine is shared)\n",
		c.label, cpu.Seconds(), lastDelivery.Seconds(), cpu.Seconds()/lastDelivery.Seconds(), load0, loadAvg())
	if server0 >= 0 {
		fmt.Printf("schedule %s: redis-server CPU %.1fs\n", c.label, server.Seconds())
	}
	per := 100000 / float64(c.participants)
	fmt.Printf("schedule %s: memory per 100k participants: clock heap +%.1f MiB (peak %.1f MiB over %.1f MiB before the point), RSS +%.1f MiB (peak %.1f MiB over %.1f MiB), schedule storage %.1f MiB (%s)\n",
		c.label, mib(peak.heap-base.heap)*per, mib(peak.heap), mib(base.heap), mib(peak.rss-base.rss)*per, mib(peak.rss), mib(base.rss), mib(schedBytes)*per, schedWhat)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// benchClock is the engines' clock: fixed before the point, then the
// point's instant plus the wall time since the start.
type benchClock struct {
	base    atomic.Int64 // unix nanos
	started atomic.Int64 // wall unix nanos; 0 while fixed
	mono    time.Time
}

func (c *benchClock) start(point, wall time.Time) {
	c.mono = wall
	c.base.Store(point.UnixNano())
	c.started.Store(wall.UnixNano())
}

func (c *benchClock) Now() time.Time {
	b := time.Unix(0, c.base.Load()).UTC()
	if c.started.Load() == 0 {
		return b
	}
	return b.Add(time.Since(c.mono))
}

// counters observe the clock: records (ClockObserver), queued deliveries
// (countingStore) and delivery outcomes.
type counters struct {
	records, queued, sent, dead atomic.Int64
	lastRecord                  atomic.Int64 // wall unix nanos
}

func (c *counters) Decision(string, string, string, time.Duration) {}
func (c *counters) PolicyEval(string, time.Duration, error)        {}
func (c *counters) StoreOp(string, time.Duration, error)           {}
func (c *counters) PointRecorded(_, _, _ string) {
	c.records.Add(1)
	c.lastRecord.Store(time.Now().UnixNano())
}
func (c *counters) DeliveryStatus(_, status string) {
	switch status {
	case trial.DeliverySent:
		c.sent.Add(1)
	case trial.DeliveryFailed, trial.DeliveryExpired:
		c.dead.Add(1)
	}
}

// countingStore counts the deliveries the decisions' commits queue.
type countingStore struct {
	trial.Store
	c *counters
}

func (s *countingStore) CommitDecision(ctx context.Context, c *trial.Commit) error {
	err := s.Store.CommitDecision(ctx, c)
	if err == nil && c.Delivery != nil && c.Delivery.Status == trial.DeliveryQueued {
		s.c.queued.Add(1)
	}
	return err
}

// writeStudy writes the benchmark study: the example with one scheduled
// point and a webhook delivery section.
func writeStudy(ctx context.Context, c config, tmp string) (*policies.Study, error) {
	src := filepath.Join(c.studies, c.study)
	b, err := os.ReadFile(filepath.Join(src, "study.yaml"))
	if err != nil {
		return nil, err
	}
	rego, err := os.ReadFile(filepath.Join(src, "policy", "policy.rego"))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i, j := strings.Index(s, "decision_points:"), strings.Index(s, "decision_ttl:")
	if i < 0 || j < i {
		return nil, fmt.Errorf("%s: no decision_points before decision_ttl", src)
	}
	s = s[:i] + "decision_points:\n  - id: morning\n    time: \"08:30\"\n" + s[j:]
	old := "probability: 0.6\n    bounds: [0.1, 0.9]"
	if !strings.Contains(s, old) {
		return nil, fmt.Errorf("%s: the prompt factor is not as expected (%q)", src, old)
	}
	s = strings.Replace(s, old, fmt.Sprintf("probability: %v\n    bounds: [0, 1]", c.probability), 1)
	s += "\ndelivery:\n  channels: [webhook]\n  webhook:\n    url: http://127.0.0.1:1/unused\n    secret_env: JITAI_CLOCKBENCH_SECRET\n"
	dir := filepath.Join(tmp, "study")
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(s), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "policy.rego"), rego, 0o644); err != nil {
		return nil, err
	}
	cat, err := interventions.Embedded()
	if err != nil {
		return nil, err
	}
	return policies.LoadStudy(ctx, dir, cat)
}

// enrol enrols the participants through an engine on its own store, then
// closes it.
func enrol(ctx context.Context, c config, st stores, study *policies.Study, clk *benchClock) error {
	s, err := st.open(ctx)
	if err != nil {
		return err
	}
	eng, err := engine.New(engine.Components{Store: s, Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		return err
	}
	var next atomic.Int64
	errs := make(chan error, c.enrolConc)
	for range c.enrolConc {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(c.participants) {
					errs <- nil
					return
				}
				id := fmt.Sprintf("p%06d", i)
				if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: id}); err != nil {
					errs <- fmt.Errorf("enrolling %s: %w", id, err)
					return
				}
			}
		}()
	}
	var first error
	for range c.enrolConc {
		if err := <-errs; err != nil && first == nil {
			first = err
			next.Store(int64(c.participants))
		}
	}
	_ = eng.Close()
	return errors.Join(first, st.closeAll())
}

// stores opens the benchmark's stores.
type stores interface {
	reset(ctx context.Context) error
	open(ctx context.Context) (trial.Store, error)
	scheduleSize(ctx context.Context) (int64, string, error)
	closeAll() error
	close()
}

type sqliteStores struct {
	path   string
	opened []*sqlite.Store
}

func (s *sqliteStores) reset(context.Context) error { return nil }

func (s *sqliteStores) open(context.Context) (trial.Store, error) {
	if len(s.opened) > 0 {
		return nil, errors.New("the embedded store is one per data folder: use --engines 1")
	}
	st, err := sqlite.Open(s.path, sqlite.Options{}, nil)
	if err != nil {
		return nil, err
	}
	s.opened = append(s.opened, st)
	return st, nil
}

func (s *sqliteStores) closeAll() error {
	var errs []error
	for _, st := range s.opened {
		errs = append(errs, st.Close())
	}
	s.opened = nil
	return errors.Join(errs...)
}

func (s *sqliteStores) close() { _ = s.closeAll() }

func (s *sqliteStores) scheduleSize(ctx context.Context) (int64, string, error) {
	db, err := sql.Open("sqlite", "file:"+s.path+"?mode=ro")
	if err != nil {
		return 0, "", err
	}
	defer db.Close()
	var n int64
	var rows int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schedule`).Scan(&rows); err != nil {
		return 0, "", err
	}
	// The table and its indexes.
	err = db.QueryRowContext(ctx, `SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = 'schedule' OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'schedule')`).Scan(&n)
	if err != nil {
		return 0, "", fmt.Errorf("dbstat: %w", err)
	}
	return n, fmt.Sprintf("SQLite pages of the schedule table and its indexes, %d entries", rows), nil
}

type redisStores struct {
	url    string
	opened []*redisstore.Store
}

func (s *redisStores) client() (*redis.Client, error) {
	opt, err := redis.ParseURL(s.url)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}

func (s *redisStores) reset(ctx context.Context) error {
	rdb, err := s.client()
	if err != nil {
		return err
	}
	defer rdb.Close()
	return rdb.FlushDB(ctx).Err()
}

func (s *redisStores) open(ctx context.Context) (trial.Store, error) {
	st, err := redisstore.Open(ctx, s.url, redisstore.Options{}, nil)
	if err != nil {
		return nil, err
	}
	s.opened = append(s.opened, st)
	return st, nil
}

func (s *redisStores) closeAll() error {
	var errs []error
	for _, st := range s.opened {
		errs = append(errs, st.Close())
	}
	s.opened = nil
	return errors.Join(errs...)
}

func (s *redisStores) close() { _ = s.closeAll() }

func (s *redisStores) scheduleSize(ctx context.Context) (int64, string, error) {
	rdb, err := s.client()
	if err != nil {
		return 0, "", err
	}
	defer rdb.Close()
	var total, keys int64
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if !strings.HasSuffix(k, ":due") && !strings.HasSuffix(k, ":duec") {
			continue
		}
		n, err := rdb.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			return 0, "", err
		}
		total += n
		keys++
	}
	if err := iter.Err(); err != nil {
		return 0, "", err
	}
	return total, fmt.Sprintf("Redis MEMORY USAGE of the %d schedule keys (:due sorted sets, :duec hashes)", keys), nil
}

// memory samples this process's Go heap and RSS.
type memory struct{ heap, rss int64 }

type sampler struct {
	mu  sync.Mutex
	max memory
	s   []metrics.Sample
}

func newSampler() *sampler {
	return &sampler{s: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
}

func (s *sampler) now() memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	metrics.Read(s.s)
	m := memory{heap: int64(s.s[0].Value.Uint64()), rss: rss()}
	s.max.heap, s.max.rss = max(s.max.heap, m.heap), max(s.max.rss, m.rss)
	return m
}

func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.now()
		}
	}
}

func (s *sampler) peak() memory {
	s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// cpuTime is the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the user and system CPU time of process pid (from
// /proc/pid/stat; -1 where it cannot be read).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// loadAvg is the machine's 1-minute load average ("?" without /proc).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// rss is this process's resident set size (0 where /proc is missing).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// receiverProc is the webhook receiver, a child process.
type receiverProc struct {
	cmd    *exec.Cmd
	url    string
	secret string
}

type receiverStats struct {
	Distinct int64 `json:"distinct"`
	Requests int64 `json:"requests"`
	Bad      int64 `json:"bad"`
	LastNew  int64 `json:"last_new_unix_nano"`
}

func startReceiver() (*receiverProc, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "receive")
	cmd.Env = append(os.Environ(), "JITAI_CLOCKBENCH_SECRET="+secret)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the receiver did not start: %w", err)
	}
	return &receiverProc{cmd: cmd, url: "http://" + strings.TrimSpace(line) + "/hook", secret: secret}, nil
}

func (r *receiverProc) stats() (receiverStats, error) {
	var s receiverStats
	resp, err := http.Get(strings.TrimSuffix(r.url, "/hook") + "/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func (r *receiverProc) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	_ = r.cmd.Wait()
}

// receive runs the receiver: it verifies every POST to /hook with the
// Standard Webhooks algorithm and counts distinct webhook-ids; GET /stats
// answers the counts.
func receive() int {
	secret := os.Getenv("JITAI_CLOCKBENCH_SECRET")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		return 1
	}
	var (
		mu       sync.Mutex
		seen     = map[string]struct{}{}
		requests int64
		bad      int64
		lastNew  int64
	)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		err := webhook.Verify(secret, req.Header, body, time.Now(), webhook.DefaultTolerance)
		id := req.Header.Get("webhook-id")
		mu.Lock()
		requests++
		if err != nil || id == "" {
			bad++
			mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			lastNew = time.Now().UnixNano()
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		s := receiverStats{Distinct: int64(len(seen)), Requests: requests, Bad: bad, LastNew: lastNew}
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(s)
	})
	fmt.Println(l.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
		<-ch
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		return 1
	}
	return 0
}

// redisServer is a private redis-server without persistence.
type redisServer struct {
	cmd *exec.Cmd
	url string
}

func startRedis(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found on PATH: install it or pass --redis-url")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	s := &redisServer{cmd: cmd, url: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	opt, _ := redis.ParseURL(s.url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	for i := 0; ; i++ {
		if rdb.Ping(context.Background()).Err() == nil {
			return s, nil
		}
		if i == 100 {
			s.stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer within 10s", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *redisServer) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}
