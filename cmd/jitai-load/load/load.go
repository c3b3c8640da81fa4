// Package load is a closed-loop HTTP load generator for the jitai decision
// API: it enrols participants (idempotently), then has Concurrency workers
// send decision requests over keep-alive connections, each for a random
// participant and time of the participant's day, each with its own
// Idempotency-Key, and reports throughput, errors by status and exact
// latency percentiles (every latency is kept and sorted).
//
// Every request asks for one decision point, by default the study's first
// app-requested point (kind: app), which the app may ask for at any time: a
// scheduled point has one decision per participant and local day, made at
// its instant, so requests for it at other times are refused (before it) or
// answered with that one record (after it).
//
// By default every time is the server's now (its clock read from the Date
// header of its answers) moved up to a minute ahead: a server refuses
// decision times more than --max-clock-skew (default 5m) from its clock and
// before the participant's enrolment.
//
// With Config.Start, the times are spread over Config.Days
// participant-local days from that date, around the study's scheduled
// points' times of day, so that a realistic mix of decisions arises:
// available and randomised ones, ones capped by the study's burden limits
// (several requests per participant and day) and ones in quiet hours (some
// times fall anywhere in the day). Such a run needs a server started with
// --max-clock-skew off and a Start on or after the day of the enrolments
// (e.g. tomorrow: Tomorrow).
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config is one load run.
type Config struct {
	// URLs are the engines' base URLs (http://host:port); each request goes
	// to one of them at random. At least one is required.
	URLs []string
	// Study is the study id (default stress-mrt).
	Study string
	// DecisionPoint is the decision point every request asks for (default:
	// the study's first app-requested point, kind app; Run fails if the
	// study has none).
	DecisionPoint string
	// Participants is how many participants the load spreads over (default 100).
	Participants int
	// ParticipantPrefix starts every participant id (default "load-"); ids
	// are the prefix followed by a zero-padded number.
	ParticipantPrefix string
	// Concurrency is the number of workers, each with at most one request in
	// flight (default 16).
	Concurrency int
	// Duration ends the run after this long; Requests ends it after this many
	// decision requests. One of them is required; with both, whichever comes
	// first.
	Duration time.Duration
	Requests int64
	// Enrol enrols every participant before the load (enrolment is
	// idempotent: already enrolled participants are fine).
	Enrol bool
	// Days is how many participant-local days the decision times spread over
	// (default 7) when Start is set: fewer days mean more decisions per
	// participant and day and so more capped ones.
	Days int
	// Start, if set, is the first day of times spread over Days days, a
	// date; its time of day is ignored. Times are in the study's time
	// zone. The server must run with --max-clock-skew off, and the day must
	// not be before the enrolments. Zero: every time is the server's now.
	Start time.Time
	// StartTomorrow starts the spread days tomorrow in the study's time
	// zone (after today's enrolments), instead of at Start.
	StartTomorrow bool
	// Seed makes the sequence of requests reproducible (default: random).
	Seed uint64
	// Timeout bounds one request (default 15s).
	Timeout time.Duration
	// Client is the HTTP client (default: keep-alive, Concurrency idle
	// connections per host).
	Client *http.Client
	// Observe, if set, is called after every decision request, from the
	// worker that sent it (so concurrently).
	Observe func(*Sample)
	// KeyPrefix starts every Idempotency-Key (default: random per run).
	KeyPrefix string
}

// Sample is one decision request and its outcome.
type Sample struct {
	Worker      int
	URL         string
	Participant string
	Key         string
	Body        []byte // the request body
	Sent        time.Time
	Latency     time.Duration
	// Status is the HTTP status, 0 if no answer came (Err says why).
	Status   int
	Header   http.Header
	Response []byte
	Err      error
}

// Latency summarises the latencies of answered decisions (200).
type Latency struct {
	Mean time.Duration `json:"mean"`
	P50  time.Duration `json:"p50"`
	P90  time.Duration `json:"p90"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p999"`
	Max  time.Duration `json:"max"`
}

// Result is what a run measured.
type Result struct {
	// Label names the run in reports (set by the caller).
	Label         string   `json:"label,omitempty"`
	URLs          []string `json:"urls"`
	Study         string   `json:"study"`
	DecisionPoint string   `json:"decision_point"`
	Participants  int      `json:"participants"`
	Concurrency   int      `json:"concurrency"`
	// Days is Config.Days, 0 for times at the server's now.
	Days int `json:"days"`
	// Enrolled is how many participants were newly enrolled (with Enrol).
	Enrolled int `json:"enrolled"`
	// Elapsed is the length of the decision phase.
	Elapsed time.Duration `json:"-"`
	// Requests counts decision requests sent; OK those answered 200.
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	Errors   int64 `json:"errors"`
	// Status counts answers by HTTP status (including 200).
	Status map[int]int64 `json:"-"`
	// Transport counts requests that got no HTTP answer, by kind of error.
	Transport map[string]int64 `json:"transport_errors,omitempty"`
	// DecisionsPerSecond is OK / Elapsed.
	DecisionsPerSecond float64 `json:"decisions_per_second"`
	// Actions counts the answered decisions' actions (deliver, none, safety).
	Actions map[string]int64 `json:"actions"`
	// Reasons counts the reasons given with the answered decisions
	// (quiet_hours, burden_daily_cap, randomised_no_prompt, ...).
	Reasons map[string]int64 `json:"reasons"`
	// Latency is over the answered decisions (200), from sending the request
	// to having read the whole answer.
	Latency Latency `json:"latency"`
}

// Run enrols (if asked) and then runs the load until the duration or the
// number of requests is reached or ctx ends. Errors answered by the server
// are counted, not returned; Run returns an error only if the run could not
// start (bad configuration, study not found, enrolment failed).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	hc := cfg.Client
	if hc == nil {
		hc = NewClient(cfg.Concurrency, cfg.Timeout)
		defer hc.CloseIdleConnections()
	}
	st, offset, err := fetchStudy(ctx, hc, cfg.URLs[0], cfg.Study)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(st.Timezone)
	if err != nil {
		return nil, fmt.Errorf("study %s: time zone %q: %w", cfg.Study, st.Timezone, err)
	}
	ask, err := PointToAsk(st.DecisionPoints, cfg.DecisionPoint)
	if err != nil {
		return nil, fmt.Errorf("study %s: %w", cfg.Study, err)
	}
	ids := ParticipantIDs(cfg.ParticipantPrefix, cfg.Participants)
	res := &Result{URLs: cfg.URLs, Study: cfg.Study, DecisionPoint: ask, Participants: cfg.Participants, Concurrency: cfg.Concurrency, Days: cfg.Days,
		Status: map[int]int64{}, Transport: map[string]int64{}, Actions: map[string]int64{}, Reasons: map[string]int64{}}
	if cfg.Enrol {
		n, err := enrolAll(ctx, hc, cfg, ids)
		if err != nil {
			return nil, err
		}
		res.Enrolled = n
	}
	var gen *Generator
	if cfg.StartTomorrow {
		cfg.Start = Tomorrow(loc)
	}
	if cfg.Start.IsZero() {
		gen = NewNowGenerator(ids, st.DecisionPoints, ask, func() time.Time { return time.Now().Add(offset) })
		res.Days = 0
	} else {
		gen = NewGenerator(ids, st.DecisionPoints, ask, time.Date(cfg.Start.Year(), cfg.Start.Month(), cfg.Start.Day(), 0, 0, 0, 0, loc), cfg.Days)
	}
	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		workers[i] = &worker{id: i, hc: hc, cfg: &cfg, gen: gen,
			status: map[int]int64{}, transport: map[string]int64{}, actions: map[string]int64{}, reasons: map[string]int64{}}
	}
	res.Elapsed = Loop(ctx, LoopConfig{Workers: cfg.Concurrency, Duration: cfg.Duration, Requests: cfg.Requests, Seed: cfg.Seed},
		func(ctx context.Context, i int, rng *mrand.Rand, n int64) { workers[i].one(ctx, rng, n) })

	var lats []time.Duration
	for _, w := range workers {
		res.Requests += w.requests
		for k, v := range w.status {
			res.Status[k] += v
		}
		for k, v := range w.transport {
			res.Transport[k] += v
		}
		for k, v := range w.actions {
			res.Actions[k] += v
		}
		for k, v := range w.reasons {
			res.Reasons[k] += v
		}
		lats = append(lats, w.lat...)
	}
	res.OK = res.Status[http.StatusOK]
	res.Errors = res.Requests - res.OK
	if s := res.Elapsed.Seconds(); s > 0 {
		res.DecisionsPerSecond = float64(res.OK) / s
	}
	res.Latency = Summarise(lats)
	return res, nil
}

func (c *Config) setDefaults() error {
	if len(c.URLs) == 0 {
		return errors.New("load: no URL")
	}
	for i, u := range c.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Errorf("load: URL %q: want http://host:port", u)
		}
		c.URLs[i] = strings.TrimRight(u, "/")
	}
	if c.Study == "" {
		c.Study = "stress-mrt"
	}
	if c.Participants <= 0 {
		c.Participants = 100
	}
	if c.ParticipantPrefix == "" {
		c.ParticipantPrefix = "load-"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		return errors.New("load: give a duration or a number of requests")
	}
	if c.Days <= 0 {
		c.Days = 7
	}
	if c.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, x := range b {
			c.Seed = c.Seed<<8 | uint64(x)
		}
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.KeyPrefix == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		c.KeyPrefix = "load-" + hex.EncodeToString(b[:])
	}
	return nil
}

// NewClient returns a keep-alive HTTP client for conns concurrent requests
// per host.
func NewClient(conns int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = max(conns, 2)
	tr.DisableCompression = true
	tr.ForceAttemptHTTP2 = false
	return &http.Client{Transport: tr, Timeout: timeout}
}

// DecisionPoint is a decision point as GET /v1/studies/{study} lists it.
type DecisionPoint struct {
	ID   string `json:"id"`
	Time string `json:"time"`
	Kind string `json:"kind"`
}

// PointToAsk is the decision point a load asks for among the study's
// points: want, which must be one of them, or (want empty) the first
// app-requested point (kind app).
func PointToAsk(points []DecisionPoint, want string) (string, error) {
	for _, dp := range points {
		if (want != "" && dp.ID == want) || (want == "" && dp.Kind == "app") {
			return dp.ID, nil
		}
	}
	if want != "" {
		return "", fmt.Errorf("no decision point %q", want)
	}
	return "", errors.New("no app-requested decision point (kind: app) to ask for at any time (a scheduled point has one decision a day, at its instant): add one to the study, or name a point")
}

type studyInfo struct {
	ID             string          `json:"id"`
	Timezone       string          `json:"timezone"`
	DecisionPoints []DecisionPoint `json:"decision_points"`
}

// fetchStudy reads the study and how far the server's clock is ahead of
// this machine's (from the Date header; 0 without one).
func fetchStudy(ctx context.Context, hc *http.Client, base, study string) (*studyInfo, time.Duration, error) {
	status, header, body, err := do(ctx, hc, http.MethodGet, base+"/v1/studies/"+url.PathEscape(study), nil, "")
	received := time.Now()
	if err != nil {
		return nil, 0, fmt.Errorf("reading study %s from %s: %w", study, base, err)
	}
	if status != http.StatusOK {
		return nil, 0, fmt.Errorf("reading study %s from %s: status %d: %.300s", study, base, status, body)
	}
	var st studyInfo
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, 0, fmt.Errorf("reading study %s: %w", study, err)
	}
	if len(st.DecisionPoints) == 0 {
		return nil, 0, fmt.Errorf("study %s has no decision points", study)
	}
	if st.Timezone == "" {
		st.Timezone = "UTC"
	}
	var offset time.Duration
	if d, err := http.ParseTime(header.Get("Date")); err == nil {
		offset = d.Sub(received)
	}
	return &st, offset, nil
}

// Tomorrow is midnight at the start of tomorrow in loc: a Start for times
// after enrolments made today.
func Tomorrow(loc *time.Location) time.Time {
	n := time.Now().In(loc)
	return time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, loc)
}

// enrolAll enrols ids with Concurrency workers, retrying 503s and 429s
// for a while; it returns how many were newly enrolled.
func enrolAll(ctx context.Context, hc *http.Client, cfg Config, ids []string) (int, error) {
	work := make(chan string)
	var created atomic.Int64
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				body, _ := json.Marshal(map[string]string{"participant_id": id})
				for attempt := 0; ; attempt++ {
					base := cfg.URLs[attempt%len(cfg.URLs)]
					status, resp, err := Do(ctx, hc, http.MethodPost, base+"/v1/studies/"+url.PathEscape(cfg.Study)+"/participants", body, "")
					if err == nil && (status == http.StatusCreated || status == http.StatusOK) {
						if status == http.StatusCreated {
							created.Add(1)
						}
						break
					}
					retryable := err != nil || status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests
					if !retryable || attempt >= 20 || ctx.Err() != nil {
						if err == nil {
							err = fmt.Errorf("status %d: %.300s", status, resp)
						}
						once.Do(func() { firstErr = fmt.Errorf("enrolling %s: %w", id, err); cancel() })
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return int(created.Load()), firstErr
}

// Do sends one request and reads the whole answer (so that the connection
// is reused).
func Do(ctx context.Context, hc *http.Client, method, u string, body []byte, key string) (int, []byte, error) {
	status, _, b, err := do(ctx, hc, method, u, body, key)
	return status, b, err
}

func do(ctx context.Context, hc *http.Client, method, u string, body []byte, key string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, res.Header, b, err
	}
	return res.StatusCode, res.Header, b, nil
}

// ParticipantIDs are the ids of n load participants: prefix followed by a
// zero-padded number.
func ParticipantIDs(prefix string, n int) []string {
	ids := make([]string, n)
	width := len(strconv.Itoa(n - 1))
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%0*d", prefix, width, i)
	}
	return ids
}

// Generator makes decision requests.
type Generator struct {
	ids    []string
	points []DecisionPoint
	ask    string
	day0   time.Time // midnight of the first day, study time zone
	days   int
	now    func() time.Time // the server's clock, for NewNowGenerator
}

// NewNowGenerator makes decision requests of the participants ids for the
// decision point ask (PointToAsk; with ask empty, a random one of points)
// at the server's now, read from now: each time is 1 to 61 seconds ahead of
// it (well within the server's clock skew, and after enrolments made before
// the load even if now runs a second late).
func NewNowGenerator(ids []string, points []DecisionPoint, ask string, now func() time.Time) *Generator {
	return &Generator{ids: ids, points: points, ask: ask, now: now, days: 1}
}

// NewGenerator makes decision requests of the participants ids for the
// decision point ask (PointToAsk) at times around the study's points over
// days days from day0 (midnight of the first day, in the study's time
// zone). With ask empty, each request asks for the point its time was drawn
// around.
func NewGenerator(ids []string, points []DecisionPoint, ask string, day0 time.Time, days int) *Generator {
	return &Generator{ids: ids, points: points, ask: ask, day0: day0, days: max(days, 1)}
}

// Request returns a participant and a request body: a random participant,
// decision point and day; the time is the server's now plus 1 to 61 seconds
// (NewNowGenerator), else the point's scheduled time moved by
// -15 to +45 minutes (80%), else (and for a point without a time) any time
// of the day (so quiet hours are hit too). The body asks for the
// generator's point (ask), or for the drawn one if it has none.
func (g *Generator) Request(rng *mrand.Rand) (participant string, body []byte) {
	p := g.ids[rng.IntN(len(g.ids))]
	dp := g.points[rng.IntN(len(g.points))]
	if g.now != nil {
		t := g.now().Add(time.Second + time.Duration(rng.Int64N(int64(time.Minute)))).Truncate(time.Millisecond)
		return p, requestBody(g.pointName(dp), t, time.RFC3339Nano)
	}
	day := rng.IntN(g.days)
	midnight := time.Date(g.day0.Year(), g.day0.Month(), g.day0.Day()+day, 0, 0, 0, 0, g.day0.Location())
	minute := -1
	if hh, mm, ok := parseHHMM(dp.Time); ok && rng.IntN(10) < 8 {
		minute = hh*60 + mm - 15 + rng.IntN(60)
	}
	var t time.Time
	if minute >= 0 && minute < 24*60 {
		t = midnight.Add(time.Duration(minute)*time.Minute + time.Duration(rng.IntN(60))*time.Second)
	} else {
		t = midnight.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))).Truncate(time.Second))
	}
	return p, requestBody(g.pointName(dp), t, time.RFC3339)
}

// pointName is the point a request asks for: the generator's (ask), or the
// drawn one if it has none.
func (g *Generator) pointName(dp DecisionPoint) string {
	if g.ask != "" {
		return g.ask
	}
	return dp.ID
}

func requestBody(point string, t time.Time, layout string) []byte {
	body := make([]byte, 0, 96)
	body = append(body, `{"decision_point":`...)
	body = strconv.AppendQuote(body, point)
	body = append(body, `,"time":"`...)
	body = t.AppendFormat(body, layout)
	body = append(body, `"}`...)
	return body
}

func parseHHMM(s string) (int, int, bool) {
	h, m, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, false
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, 0, false
	}
	return hh, mm, true
}

// worker sends requests one at a time and keeps its own tallies.
type worker struct {
	id        int
	hc        *http.Client
	cfg       *Config
	gen       *Generator
	requests  int64
	status    map[int]int64
	transport map[string]int64
	actions   map[string]int64
	reasons   map[string]int64
	lat       []time.Duration
}

type answer struct {
	Action  string   `json:"action"`
	Reasons []string `json:"reasons"`
}

func (w *worker) one(ctx context.Context, rng *mrand.Rand, n int64) {
	p, body := w.gen.Request(rng)
	base := w.cfg.URLs[0]
	if len(w.cfg.URLs) > 1 {
		base = w.cfg.URLs[rng.IntN(len(w.cfg.URLs))]
	}
	key := w.cfg.KeyPrefix + "-" + strconv.FormatInt(n, 10)
	u := base + "/v1/studies/" + url.PathEscape(w.cfg.Study) + "/participants/" + url.PathEscape(p) + "/decisions"
	sent := time.Now()
	status, header, resp, err := do(context.WithoutCancel(ctx), w.hc, http.MethodPost, u, body, key)
	lat := time.Since(sent)
	w.requests++
	if err != nil {
		w.transport[classify(err)]++
		status = 0 // no (whole) answer: a transport error
	} else {
		w.status[status]++
		if status == http.StatusOK {
			w.lat = append(w.lat, lat)
			var a answer
			if json.Unmarshal(resp, &a) == nil {
				w.actions[a.Action]++
				for _, r := range a.Reasons {
					w.reasons[r]++
				}
			}
		}
	}
	if w.cfg.Observe != nil {
		w.cfg.Observe(&Sample{Worker: w.id, URL: base, Participant: p, Key: key, Body: body, Sent: sent, Latency: lat,
			Status: status, Header: header, Response: resp, Err: err})
	}
}

// LoopConfig is a closed loop of Loop.
type LoopConfig struct {
	// Workers is the number of workers, each with one request in flight.
	Workers int
	// Duration ends the loop after this long (0: no limit).
	Duration time.Duration
	// Requests ends the loop after this many requests (0: no limit).
	Requests int64
	// Seed seeds the workers' random generators: worker i draws from
	// PCG(Seed, i+1).
	Seed uint64
}

// Loop is the closed-loop driver of every load run: each worker calls one
// for its next request (numbered n from 1) as soon as its previous one has
// returned, until ctx ends, the duration has passed or the requests are
// issued. one gets the loop's context, the worker's index and its random
// generator. Loop returns how long it ran.
func Loop(ctx context.Context, c LoopConfig, one func(ctx context.Context, worker int, rng *mrand.Rand, n int64)) time.Duration {
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	var issued atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < c.Workers; i++ {
		rng := mrand.New(mrand.NewPCG(c.Seed, uint64(i)+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := issued.Add(1)
				if c.Requests > 0 && n > c.Requests {
					return
				}
				one(ctx, i, rng, n)
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// classify names the kind of a transport error.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return "other"
}

// Summarise returns exact percentiles (nearest rank) of lats; it sorts lats.
func Summarise(lats []time.Duration) Latency {
	if len(lats) == 0 {
		return Latency{}
	}
	slices.Sort(lats)
	var sum time.Duration
	for _, l := range lats {
		sum += l
	}
	return Latency{
		Mean: sum / time.Duration(len(lats)),
		P50:  Percentile(lats, 50),
		P90:  Percentile(lats, 90),
		P99:  Percentile(lats, 99),
		P999: Percentile(lats, 99.9),
		Max:  lats[len(lats)-1],
	}
}

// Percentile is the nearest-rank p-th percentile of sorted.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// ms is a duration in milliseconds, rounded to microseconds.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// MarshalJSON writes latencies in milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]float64{
		"mean_ms": ms(l.Mean), "p50_ms": ms(l.P50), "p90_ms": ms(l.P90), "p99_ms": ms(l.P99), "p999_ms": ms(l.P999), "max_ms": ms(l.Max),
	})
}

// MarshalJSON writes the elapsed time in seconds and statuses by code.
func (r *Result) MarshalJSON() ([]byte, error) {
	type plain Result
	status := map[string]int64{}
	for k, v := range r.Status {
		status[strconv.Itoa(k)] = v
	}
	return json.Marshal(struct {
		*plain
		Elapsed float64          `json:"elapsed_s"`
		Status  map[string]int64 `json:"status"`
	}{(*plain)(r), math.Round(r.Elapsed.Seconds()*1000) / 1000, status})
}

// Table writes the result as a text table.
func (r *Result) Table(w io.Writer) {
	fmt.Fprintf(w, "target        %s (study %s, decision point %s)\n", strings.Join(r.URLs, ", "), r.Study, r.DecisionPoint)
	if r.Days > 0 {
		fmt.Fprintf(w, "load          %d workers, %d participants over %d days", r.Concurrency, r.Participants, r.Days)
	} else {
		fmt.Fprintf(w, "load          %d workers, %d participants at the server's now", r.Concurrency, r.Participants)
	}
	if r.Enrolled > 0 {
		fmt.Fprintf(w, " (%d newly enrolled)", r.Enrolled)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "elapsed       %.2f s\n", r.Elapsed.Seconds())
	fmt.Fprintf(w, "requests      %d (%d answered 200, %d errors)\n", r.Requests, r.OK, r.Errors)
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		if c != http.StatusOK {
			codes = append(codes, c)
		}
	}
	sort.Ints(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "  status %d   %d\n", c, r.Status[c])
	}
	for _, k := range slices.Sorted(maps.Keys(r.Transport)) {
		fmt.Fprintf(w, "  %-11s %d\n", k, r.Transport[k])
	}
	fmt.Fprintf(w, "decisions/s   %.1f\n", r.DecisionsPerSecond)
	fmt.Fprintf(w, "latency (ms)  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n",
		ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max), ms(r.Latency.Mean))
	if len(r.Actions) > 0 {
		fmt.Fprint(w, "actions      ")
		for _, k := range slices.Sorted(maps.Keys(r.Actions)) {
			fmt.Fprintf(w, " %s %d", k, r.Actions[k])
		}
		fmt.Fprintln(w)
	}
	if len(r.Reasons) > 0 {
		fmt.Fprint(w, "reasons      ")
		for _, k := range slices.Sorted(maps.Keys(r.Reasons)) {
			fmt.Fprintf(w, " %s %d", k, r.Reasons[k])
		}
		fmt.Fprintln(w)
	}
}

// Line is a one-line summary: label, decisions per second, p50, p99.
func (r *Result) Line() string {
	label := r.Label
	if label == "" {
		label = strings.Join(r.URLs, ",")
	}
	return fmt.Sprintf("%-10s %9.1f decisions/s   p50 %7.2f ms   p99 %7.2f ms   (%d requests, %d errors, %d workers, %.1f s)",
		label, r.DecisionsPerSecond, ms(r.Latency.P50), ms(r.Latency.P99), r.Requests, r.Errors, r.Concurrency, r.Elapsed.Seconds())
}
