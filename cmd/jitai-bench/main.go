// Command jitai-bench compares the engine with OPA's own server evaluating
// the same policy (make bench-load): decisions per second, p50 and p99 of
//
//   - opa run --server with the study's policy/*.rego and the catalogue as
//     data.json (data.jitai, as the engine gives it to the policy), asked
//     POST /v1/data/jitai/policy/decision {"input": ...} with inputs the
//     engine itself built (the input field of the records of a warm-up run);
//   - jitai serve with the embedded store (durable recording);
//   - jitai serve with the Redis store,
//
// one after the other on this machine, each at every concurrency given,
// driven by the same closed-loop driver (the HTTP client, request and
// percentile code of cmd/jitai-load/load), then prints the table with the
// ratio engine/OPA.
//
//	jitai-bench --jitai bin/jitai --opa bin/opa --concurrency 16,64 --duration 15s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jitai/jitai/cmd/jitai-load/load"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "jitai-bench: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	jitai, opa, studies, study, redisURL, logLevel string
	decisionPoint                                  string // the point the engine load asks for
	concurrency                                    []int
	duration, warmup                               time.Duration
	participants, days, inputs                     int
	skipRedis                                      bool
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("jitai-bench", flag.ContinueOnError)
	var o options
	conc := fs.String("concurrency", "16,64", "comma-separated worker counts (each worker has one request in flight)")
	fs.StringVar(&o.jitai, "jitai", "bin/jitai", "the engine binary")
	fs.StringVar(&o.opa, "opa", "bin/opa", "the OPA binary")
	fs.StringVar(&o.studies, "studies", "policies/examples", "studies folder")
	fs.StringVar(&o.study, "study", "stress-mrt", "study id (and folder name under --studies)")
	fs.StringVar(&o.decisionPoint, "decision-point", "", "decision point the engine load asks for (default: the study's first app-requested point, kind app)")
	fs.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/13", "Redis for the Redis-store run; this database is FLUSHED before and after")
	fs.BoolVar(&o.skipRedis, "skip-redis", false, "skip the Redis-store run")
	fs.StringVar(&o.logLevel, "log-level", "error", "log level of both servers")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured time of each run")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured load before each server's runs")
	fs.IntVar(&o.participants, "participants", 1000, "participants the engine load spreads over")
	fs.IntVar(&o.days, "days", 7, "participant-local days the decision times spread over")
	fs.IntVar(&o.inputs, "inputs", 4000, "engine-built policy inputs recorded for the OPA load")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--concurrency %q: want positive numbers", *conc)
		}
		o.concurrency = append(o.concurrency, n)
	}
	tmp, err := os.MkdirTemp("", "jitai-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	study, err := loadStudy(ctx, o)
	if err != nil {
		return err
	}
	if o.decisionPoint, err = load.PointToAsk(loadPoints(study), o.decisionPoint); err != nil {
		return fmt.Errorf("study %s: %w", o.study, err)
	}
	fmt.Fprintf(out, "bench-load: study %s (decision point %s), %d participants over %d days, concurrency %v, %s per run (after %s warm-up per server), %d CPUs, log level %s\n",
		o.study, o.decisionPoint, o.participants, o.days, o.concurrency, o.duration, o.warmup, numCPU(), o.logLevel)

	load0 := loadAvg()
	var rows []row
	// 1. The engine, embedded store: warm-up also records the inputs for OPA.
	eng, err := startJitai(ctx, o, tmp, "embedded", "--store", "embedded", "--data", filepath.Join(tmp, "data"))
	if err != nil {
		return err
	}
	prefix := fmt.Sprintf("bl-%d-e-", time.Now().Unix())
	if err := enrolAndWarm(ctx, o, eng.base, prefix); err != nil {
		eng.stop()
		return err
	}
	inputs, err := recordedInputs(ctx, eng.base, o.study, o.inputs)
	if err != nil {
		eng.stop()
		return err
	}
	for _, c := range o.concurrency {
		r := measured(eng, func() result { return drive(ctx, c, o.duration, jitaiRequests(eng.base, o, study, prefix)) })
		rows = append(rows, row{"engine (embedded, durable)", c, r})
	}
	eng.stop()

	// 2. The engine, Redis store.
	if !o.skipRedis {
		if err := flushRedis(ctx, o.redisURL); err != nil {
			return err
		}
		eng, err := startJitai(ctx, o, tmp, "redis", "--store", "redis", "--redis-url", o.redisURL)
		if err != nil {
			return err
		}
		prefix := fmt.Sprintf("bl-%d-r-", time.Now().Unix())
		if err := enrolAndWarm(ctx, o, eng.base, prefix); err != nil {
			eng.stop()
			return err
		}
		for _, c := range o.concurrency {
			r := measured(eng, func() result { return drive(ctx, c, o.duration, jitaiRequests(eng.base, o, study, prefix)) })
			rows = append(rows, row{"engine (Redis)", c, r})
		}
		eng.stop()
		if err := flushRedis(ctx, o.redisURL); err != nil {
			return err
		}
	}

	// 3. OPA's server on the same policy, with the engine's own inputs.
	opa, err := startOPA(ctx, o, tmp, study)
	if err != nil {
		return err
	}
	bodies := make([][]byte, len(inputs))
	for i, in := range inputs {
		bodies[i] = append(append([]byte(`{"input":`), in...), '}')
	}
	opaReq := func(rng *mrand.Rand, _ int64) (string, []byte, string) {
		return opa.base + "/v1/data/jitai/policy/decision", bodies[rng.IntN(len(bodies))], ""
	}
	_ = drive(ctx, 16, o.warmup, opaReq)
	for _, c := range o.concurrency {
		r := measured(opa, func() result { return drive(ctx, c, o.duration, opaReq) })
		rows = append(rows, row{"opa run --server", c, r})
	}
	opa.stop()
	fmt.Fprintf(out, "OPA inputs: %d engine-built inputs from the embedded warm-up; load average before: %s, after: %s\n\n", len(inputs), load0, loadAvg())
	printTable(out, rows)
	return nil
}

type row struct {
	name string
	conc int
	res  result
}

func printTable(w io.Writer, rows []row) {
	opa := map[int]result{}
	for _, r := range rows {
		if strings.HasPrefix(r.name, "opa") {
			opa[r.conc] = r.res
		}
	}
	fmt.Fprintf(w, "%-28s %5s %10s %9s %9s %7s %12s %12s %11s %11s\n", "server", "conc", "decisions/s", "p50 ms", "p99 ms", "errors", "x OPA dec/s", "p99 vs OPA", "server µs", "driver µs")
	for _, r := range rows {
		ratio, p99 := "", ""
		if o, ok := opa[r.conc]; ok && !strings.HasPrefix(r.name, "opa") && o.perSecond > 0 {
			ratio = fmt.Sprintf("%.2fx", r.res.perSecond/o.perSecond)
			p99 = fmt.Sprintf("%.2fx", float64(r.res.lat.P99)/float64(max(o.lat.P99, 1)))
		}
		fmt.Fprintf(w, "%-28s %5d %10.0f %9.2f %9.2f %7d %12s %12s %11s %11s\n", r.name, r.conc, r.res.perSecond,
			ms(r.res.lat.P50), ms(r.res.lat.P99), r.res.errors, ratio, p99, perDecision(r.res.serverCPU, r.res.ok), perDecision(r.res.driverCPU, r.res.ok))
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// result of one driven run.
type result struct {
	ok, errors int64
	perSecond  float64
	lat        load.Latency
	firstErr   string
	// CPU time (user + system) the server process and this driver spent
	// during the run; the Redis server's own CPU is not included.
	serverCPU, driverCPU time.Duration
}

// measured runs one drive and adds the CPU time the server process and this
// process (the driver) spent meanwhile.
func measured(s *server, run func() result) result {
	s0, d0 := processCPU(s.cmd.Process.Pid), selfCPU()
	r := run()
	r.serverCPU, r.driverCPU = processCPU(s.cmd.Process.Pid)-s0, selfCPU()-d0
	return r
}

// processCPU is a process's user + system CPU time from /proc (0 where
// there is no /proc).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at state.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perDecision is CPU time per answered decision in microseconds.
func perDecision(cpu time.Duration, n int64) string {
	if cpu <= 0 || n <= 0 {
		return "-"
	}
	return strconv.FormatInt(cpu.Microseconds()/n, 10)
}

// drive is the closed-loop driver used for every server: load.Loop with
// conc workers over keep-alive connections (load.NewClient). Latencies of
// 200 answers with a JSON object are kept and summarised exactly
// (load.Summarise).
func drive(ctx context.Context, conc int, dur time.Duration, next func(rng *mrand.Rand, n int64) (string, []byte, string)) result {
	hc := load.NewClient(conc, 15*time.Second)
	defer hc.CloseIdleConnections()
	type tally struct {
		lats     []time.Duration
		ok, bad  int64
		firstErr string
	}
	tallies := make([]tally, conc)
	el := load.Loop(ctx, load.LoopConfig{Workers: conc, Duration: dur, Seed: uint64(time.Now().UnixNano())},
		func(ctx context.Context, i int, rng *mrand.Rand, n int64) {
			u, body, key := next(rng, n)
			sent := time.Now()
			status, resp, err := load.Do(context.WithoutCancel(ctx), hc, http.MethodPost, u, body, key)
			lat := time.Since(sent)
			t := &tallies[i]
			if err == nil && status == http.StatusOK && bytes.HasPrefix(bytes.TrimSpace(resp), []byte("{")) && !bytes.Equal(bytes.TrimSpace(resp), []byte("{}")) {
				t.ok++
				t.lats = append(t.lats, lat)
				return
			}
			t.bad++
			if t.firstErr == "" {
				t.firstErr = fmt.Sprintf("status %d err %v: %.200s", status, err, resp)
			}
		})
	var all []time.Duration
	var ok, bad int64
	var firstErr string
	for _, t := range tallies {
		all = append(all, t.lats...)
		ok += t.ok
		bad += t.bad
		if firstErr == "" {
			firstErr = t.firstErr
		}
	}
	r := result{ok: ok, errors: bad, perSecond: float64(ok) / el.Seconds(), lat: load.Summarise(all), firstErr: firstErr}
	if firstErr != "" {
		fmt.Fprintf(os.Stderr, "jitai-bench: %d errors at concurrency %d, first: %s\n", bad, conc, firstErr)
	}
	return r
}

// jitaiRequests makes decision requests with cmd/jitai-load's generator
// (load.Generator), each with its own Idempotency-Key.
func jitaiRequests(base string, o options, study *policies.Study, prefix string) func(*mrand.Rand, int64) (string, []byte, string) {
	loc, err := time.LoadLocation(study.Config.Timezone)
	if err != nil {
		loc = time.UTC
	}
	// The days from tomorrow: after the enrolments, on a server run with
	// --max-clock-skew off (startJitai).
	gen := load.NewGenerator(load.ParticipantIDs(prefix, o.participants), loadPoints(study), o.decisionPoint, load.Tomorrow(loc), o.days)
	studyURL := base + "/v1/studies/" + url.PathEscape(o.study) + "/participants/"
	key := prefix + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	return func(rng *mrand.Rand, n int64) (string, []byte, string) {
		p, body := gen.Request(rng)
		return studyURL + url.PathEscape(p) + "/decisions", body, key + strconv.FormatInt(n, 10)
	}
}

// loadPoints are the study's decision points as the load generator takes them.
func loadPoints(study *policies.Study) []load.DecisionPoint {
	points := make([]load.DecisionPoint, len(study.Config.DecisionPoints))
	for i, dp := range study.Config.DecisionPoints {
		points[i] = load.DecisionPoint{ID: dp.ID, Time: dp.Time, Kind: dp.Kind}
	}
	return points
}

// enrolAndWarm enrols the participants and runs the warm-up load with
// cmd/jitai-load's generator.
func enrolAndWarm(ctx context.Context, o options, base, prefix string) error {
	res, err := load.Run(ctx, load.Config{URLs: []string{base}, Study: o.study, DecisionPoint: o.decisionPoint, Participants: o.participants, ParticipantPrefix: prefix,
		Concurrency: 16, Duration: o.warmup, Enrol: true, Days: o.days, StartTomorrow: true})
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if res.OK == 0 {
		return fmt.Errorf("warm-up: no decision answered 200 (status %v)", res.Status)
	}
	return nil
}

// recordedInputs lists up to n decision records and returns their policy
// inputs, exactly as the engine gave them to the policy.
func recordedInputs(ctx context.Context, base, study string, n int) ([]json.RawMessage, error) {
	hc := load.NewClient(2, 30*time.Second)
	defer hc.CloseIdleConnections()
	var out []json.RawMessage
	cursor := ""
	for len(out) < n {
		u := base + "/v1/studies/" + url.PathEscape(study) + "/decisions?limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		status, body, err := load.Do(ctx, hc, http.MethodGet, u, nil, "")
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("listing decisions: status %d: %v: %.200s", status, err, body)
		}
		var page struct {
			Decisions []struct {
				Input json.RawMessage `json:"input"`
			} `json:"decisions"`
			Next string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("listing decisions: %w", err)
		}
		for _, d := range page.Decisions {
			if len(d.Input) > 0 && len(out) < n {
				out = append(out, d.Input)
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(out) == 0 {
		return nil, errors.New("the warm-up recorded no policy inputs")
	}
	return out, nil
}

func loadStudy(ctx context.Context, o options) (*policies.Study, error) {
	cat, err := interventions.Embedded()
	if err != nil {
		return nil, err
	}
	s, err := policies.LoadStudy(ctx, filepath.Join(o.studies, o.study), cat)
	if err != nil {
		return nil, fmt.Errorf("loading study %s: %w", o.study, err)
	}
	return s, nil
}

type server struct {
	name string
	base string
	cmd  *exec.Cmd
	log  string
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func start(ctx context.Context, name, health, logFile string, bin string, args ...string) (*server, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	f.Close()
	s := &server{name: name, cmd: cmd, log: logFile}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		res, err := hc.Get(health)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	b, _ := os.ReadFile(logFile)
	return nil, fmt.Errorf("%s did not become ready (%s):\n%s", name, health, tail(b))
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func startJitai(ctx context.Context, o options, tmp, name string, args ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// The load spreads its times over days (a realistic mix of available,
	// capped and quiet-hours decisions), so the clock skew check is off.
	all := append([]string{"serve", "--addr", addr, "--studies", o.studies, "--log-level", o.logLevel, "--max-clock-skew", "off"}, args...)
	s, err := start(ctx, "jitai serve ("+name+")", "http://"+addr+"/readyz", filepath.Join(tmp, "jitai-"+name+".log"), o.jitai, all...)
	if err != nil {
		return nil, err
	}
	s.base = "http://" + addr
	return s, nil
}

// startOPA writes the study's policy (without its tests) and the data the
// engine gives it (data.jitai) and starts opa run --server on them.
func startOPA(ctx context.Context, o options, tmp string, study *policies.Study) (*server, error) {
	dir := filepath.Join(tmp, "opa")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := []string{}
	policyDir := filepath.Join(o.studies, o.study, "policy")
	entries, err := os.ReadDir(policyDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".rego") || strings.HasSuffix(e.Name(), "_test.rego") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(policyDir, e.Name()))
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, e.Name())
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
		files = append(files, p)
	}
	data, err := json.Marshal(map[string]any{"jitai": policies.PolicyData(study.Catalogue)})
	if err != nil {
		return nil, err
	}
	dataFile := filepath.Join(dir, "data.json")
	if err := os.WriteFile(dataFile, data, 0o644); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"run", "--server", "--addr", addr, "--log-level", o.logLevel, "--disable-telemetry", dataFile}, files...)
	s, err := start(ctx, "opa run --server", "http://"+addr+"/health", filepath.Join(tmp, "opa.log"), o.opa, args...)
	if err != nil {
		return nil, err
	}
	s.base = "http://" + addr
	return s, nil
}

// flushRedis empties the benchmark's Redis database (a spare index).
func flushRedis(ctx context.Context, u string) error {
	opt, err := redis.ParseURL(u)
	if err != nil {
		return fmt.Errorf("--redis-url: %w", err)
	}
	if opt.DB == 0 {
		return errors.New("--redis-url: use a spare database index (not 0): it is flushed")
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("flushing %s: %w", u, err)
	}
	return nil
}

func numCPU() int { return runtime.NumCPU() }

// loadAvg is the 1-minute load average (other work on the machine skews
// the comparison).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
