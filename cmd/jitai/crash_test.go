package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/store/sqlite"
)

// The crash tests run the real binary: they build it once into binDir.
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jitai-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// goTool is the go command of the toolchain running the tests: `go test`
// puts its own GOROOT/bin first on PATH, and CI may not have go elsewhere.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if p := "/usr/local/go/bin/go"; fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// jitaiBinary builds the jitai binary once per test run.
func jitaiBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "jitai")
		cmd := exec.Command(goTool(), "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// logSink collects the server's stderr (JSON log lines) and reports the
// address it serves on.
type logSink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	seen  int
	addr  chan string
	found bool
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		rest := l.buf.Bytes()[l.seen:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i]
		l.seen += i + 1
		var entry struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if !l.found && json.Unmarshal(line, &entry) == nil && entry.Msg == "serving" && entry.Addr != "" {
			l.found = true
			l.addr <- entry.Addr
		}
	}
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// server is a running `jitai serve`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	logs *logSink
	done chan struct{} // closed when the process has exited
	err  error         // from Wait, valid after done
}

// startServer starts `jitai serve` on a free port over dataDir. The
// server decides at any time (--max-clock-skew off, unless extra sets it):
// the tests replay days (from laterDay) rather than wait for the clock.
func startServer(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	return startServerEnv(t, dataDir, nil, extra...)
}

// startServerEnv is startServer with env (KEY=value) added to the
// process' environment.
func startServerEnv(t *testing.T, dataDir string, env []string, extra ...string) *server {
	t.Helper()
	bin := jitaiBinary(t)
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--studies", "../../policies/examples", "--data", dataDir}, extra...)
	if !slices.Contains(extra, "--max-clock-skew") {
		args = append(args, "--max-clock-skew", "off")
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JITAI_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	logs := &logSink{addr: make(chan string, 1)}
	cmd.Stderr = logs
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting jitai serve: %v", err)
	}
	s := &server{t: t, cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", tail(logs.String(), 4000))
		}
	})
	select {
	case addr := <-logs.addr:
		s.base = "http://" + addr
	case <-s.done:
		t.Fatalf("jitai serve exited before serving (%v):\n%s", s.err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("jitai serve did not log its address within 30s:\n%s", logs.String())
	}
	return s
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// wait waits for the process to exit, at most d.
func (s *server) wait(d time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop ends the server with SIGTERM and expects a clean exit.
func (s *server) stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if !s.wait(20 * time.Second) {
		s.t.Fatalf("jitai serve did not stop within 20s of SIGTERM")
	}
	if s.err != nil {
		s.t.Errorf("jitai serve exited with %v after SIGTERM", s.err)
	}
}

func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

type reply struct {
	status   int
	header   http.Header
	body     []byte
	received time.Time
}

func do(hc *http.Client, method, u string, body []byte, key string) (reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: res.StatusCode, header: res.Header, body: b, received: time.Now()}, nil
}

const study = "stress-mrt"

func enrolAll(t *testing.T, hc *http.Client, base string, ids []string) {
	t.Helper()
	for _, p := range ids {
		r, err := do(hc, "POST", base+"/v1/studies/"+study+"/participants", []byte(`{"participant_id":"`+p+`"}`), "")
		if err != nil || (r.status != http.StatusCreated && r.status != http.StatusOK) {
			t.Fatalf("enrolling %s: %v %d %s", p, err, r.status, r.body)
		}
	}
}

// sent is one decision request and, if it was answered, its answer.
type sent struct {
	participant string
	key         string
	body        []byte
	answered    bool
	reply       []byte
	decisionID  string
	action      string
	received    time.Time
	err         error
}

// load runs clients concurrent clients, each sending decision requests with
// Idempotency-Keys until stop is closed or a request fails. It returns every
// request sent.
func loadClients(hc *http.Client, base string, participants []string, clients int, stop <-chan struct{}, inFlight *atomic.Int64) ([]*sent, []error) {
	// The app point on_demand, asked for at any time: a scheduled point has
	// one decision a day, which every request for it answers. The days are
	// after the enrolments (from laterDay; the server runs with
	// --max-clock-skew off).
	const dp = onDemand
	start := laterDay(time.UTC).Add(7 * time.Hour)
	var mu sync.Mutex
	var all []*sent
	var errs []error
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				p := participants[(c+n*clients)%len(participants)]
				when := start.Add(time.Duration(n*clients+c) * 7 * time.Minute)
				s := &sent{
					participant: p,
					key:         fmt.Sprintf("k-%d-%d", c, n),
					body:        []byte(fmt.Sprintf(`{"decision_point":%q,"time":%q}`, dp, when.Format(time.RFC3339))),
				}
				mu.Lock()
				all = append(all, s)
				mu.Unlock()
				inFlight.Add(1)
				r, err := do(hc, "POST", base+"/v1/studies/"+study+"/participants/"+p+"/decisions", s.body, s.key)
				inFlight.Add(-1)
				if err == nil && r.status != http.StatusOK {
					err = fmt.Errorf("status %d: %s", r.status, r.body)
				}
				if err != nil {
					s.err = err
					return
				}
				var d struct {
					DecisionID string `json:"decision_id"`
					Action     string `json:"action"`
				}
				if err := json.Unmarshal(r.body, &d); err != nil || d.DecisionID == "" {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: answer without decision_id (%v): %s", s.key, err, r.body))
					mu.Unlock()
					return
				}
				s.answered, s.reply, s.decisionID, s.action, s.received = true, r.body, d.DecisionID, d.Action, r.received
			}
		}()
	}
	wg.Wait()
	return all, errs
}

type listedRecord struct {
	DecisionID     string `json:"decision_id"`
	ParticipantID  string `json:"participant_id"`
	Action         string `json:"action"`
	IdempotencyKey string `json:"idempotency_key"`
}

// listAll lists every decision of the study, following next_cursor.
func listAll(t *testing.T, hc *http.Client, base string) []listedRecord {
	t.Helper()
	var out []listedRecord
	cursor := ""
	for page := 0; page < 1000; page++ {
		q := url.Values{"limit": {"250"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r, err := do(hc, "GET", base+"/v1/studies/"+study+"/decisions?"+q.Encode(), nil, "")
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("listing decisions: %v %d %.300s", err, r.status, r.body)
		}
		var doc struct {
			Decisions  []listedRecord `json:"decisions"`
			NextCursor string         `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("listing: %v", err)
		}
		out = append(out, doc.Decisions...)
		if doc.NextCursor == "" {
			return out
		}
		cursor = doc.NextCursor
	}
	t.Fatalf("listing does not end")
	return nil
}

func participantIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("crash-%02d", i)
	}
	return ids
}

// TestCrashKeepsEveryAnsweredDecision kills the server with SIGKILL while
// decisions are in flight, restarts it over the same data and checks that
// every decision that was answered is in the log, and that retrying its
// request returns the very same bytes.
func TestCrashKeepsEveryAnsweredDecision(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	ids := participantIDs(16)
	enrolAll(t, hc, srv.base, ids)

	stop := make(chan struct{})
	var inFlight atomic.Int64
	var all []*sent
	var errs []error
	finished := make(chan struct{})
	go func() {
		all, errs = loadClients(hc, srv.base, ids, 8, stop, &inFlight)
		close(finished)
	}()
	time.Sleep(1500 * time.Millisecond)
	atKill := inFlight.Load()
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if !srv.wait(10 * time.Second) {
		t.Fatal("the killed server did not exit")
	}
	close(stop)
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("clients did not finish after the kill")
	}
	for _, err := range errs {
		t.Error(err)
	}
	var answered, failed []*sent
	for _, s := range all {
		if s.answered {
			answered = append(answered, s)
		} else if s.err != nil {
			failed = append(failed, s)
		}
	}
	t.Logf("%d requests answered, %d failed at the kill (%d in flight when killed)", len(answered), len(failed), atKill)
	if len(answered) < 50 {
		t.Fatalf("only %d decisions were answered before the kill; the test needs load", len(answered))
	}

	// Restart over the same data.
	srv2 := startServer(t, data)
	hc2 := newHTTPClient()
	defer hc2.CloseIdleConnections()
	recs := listAll(t, hc2, srv2.base)
	byID := map[string]listedRecord{}
	byKey := map[string]listedRecord{}
	for _, r := range recs {
		if _, dup := byID[r.DecisionID]; dup {
			t.Errorf("decision %s listed twice", r.DecisionID)
		}
		byID[r.DecisionID] = r
		if r.IdempotencyKey == "" {
			t.Errorf("decision %s has no idempotency key; every request had one", r.DecisionID)
		} else if prev, dup := byKey[r.IdempotencyKey]; dup {
			t.Errorf("idempotency key %s recorded twice: %s and %s", r.IdempotencyKey, prev.DecisionID, r.DecisionID)
		}
		byKey[r.IdempotencyKey] = r
	}
	sentKeys := map[string]bool{}
	for _, s := range all {
		sentKeys[s.key] = true
	}
	for _, r := range recs {
		if !sentKeys[r.IdempotencyKey] {
			t.Errorf("decision %s (key %q) was never requested", r.DecisionID, r.IdempotencyKey)
		}
	}
	lost := 0
	for _, s := range answered {
		r, ok := byID[s.decisionID]
		if !ok {
			lost++
			if lost <= 10 {
				t.Errorf("answered decision %s (%s, key %s) is missing after the crash", s.decisionID, s.action, s.key)
			}
			continue
		}
		if r.Action != s.action || r.ParticipantID != s.participant || r.IdempotencyKey != s.key {
			t.Errorf("decision %s: recorded %s/%s/%s, answered %s/%s/%s", s.decisionID, r.Action, r.ParticipantID, r.IdempotencyKey, s.action, s.participant, s.key)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d answered decisions were lost by the crash", lost, len(answered))
	}

	// Retries: an answered request returns the same bytes; a failed one is
	// either replayed (it was recorded) or decided now (it was not).
	retry := append(append([]*sent(nil), answered...), failed...)
	work := make(chan *sent)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var retryErrs []string
	report := func(format string, args ...any) {
		mu.Lock()
		retryErrs = append(retryErrs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				r, err := do(hc2, "POST", srv2.base+"/v1/studies/"+study+"/participants/"+s.participant+"/decisions", s.body, s.key)
				if err != nil || r.status != http.StatusOK {
					report("retrying %s: %v %d %s", s.key, err, r.status, r.body)
					continue
				}
				replayed := r.header.Get("Idempotent-Replayed") == "true"
				if s.answered {
					if !replayed || !bytes.Equal(r.body, s.reply) {
						report("retrying answered %s: replayed %v, body equal %v\nfirst: %s\nretry: %s", s.key, replayed, bytes.Equal(r.body, s.reply), s.reply, r.body)
					}
					continue
				}
				rec, recorded := byKey[s.key]
				switch {
				case recorded && !replayed:
					report("retrying failed %s: it was recorded as %s but was decided again", s.key, rec.DecisionID)
				case recorded && !bytes.Contains(r.body, []byte(rec.DecisionID)):
					report("retrying failed %s: replay does not return the recorded %s: %s", s.key, rec.DecisionID, r.body)
				case !recorded && replayed:
					report("retrying failed %s: replayed, but no decision with this key was listed", s.key)
				}
			}
		}()
	}
	for _, s := range retry {
		work <- s
	}
	close(work)
	wg.Wait()
	for i, e := range retryErrs {
		if i == 20 {
			t.Errorf("... and %d more", len(retryErrs)-20)
			break
		}
		t.Error(e)
	}
	srv2.stop()
}

// TestGracefulShutdownDrains: SIGTERM while decisions are in flight drains
// them: every request answered 200 is recorded, the process exits 0 within
// the grace period and says so in its log.
func TestGracefulShutdownDrains(t *testing.T) {
	data := t.TempDir()
	const grace = 10 * time.Second
	srv := startServer(t, data, "--shutdown-grace", grace.String())
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	ids := participantIDs(16)
	enrolAll(t, hc, srv.base, ids)

	stop := make(chan struct{})
	var inFlight atomic.Int64
	var all []*sent
	var errs []error
	finished := make(chan struct{})
	go func() {
		all, errs = loadClients(hc, srv.base, ids, 8, stop, &inFlight)
		close(finished)
	}()
	time.Sleep(1 * time.Second)
	atSignal := inFlight.Load()
	signalled := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !srv.wait(grace + 5*time.Second) {
		t.Fatalf("jitai serve still runs %s after SIGTERM (grace %s)", grace+5*time.Second, grace)
	}
	took := time.Since(signalled)
	close(stop)
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Fatal("clients did not finish after the shutdown")
	}
	for _, err := range errs {
		t.Error(err)
	}
	if srv.err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", srv.err)
	}
	if took > grace {
		t.Errorf("shutdown took %s, more than the grace period %s", took, grace)
	}
	logs := srv.logs.String()
	for _, want := range []string{"shutting down: draining in-flight requests", `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	if strings.Contains(logs, "drain incomplete") {
		t.Errorf("the log says the drain was incomplete")
	}

	var answered []*sent
	afterSignal := 0
	for _, s := range all {
		if s.answered {
			answered = append(answered, s)
			if s.received.After(signalled) {
				afterSignal++
			}
		}
	}
	t.Logf("%d answered (%d of them after SIGTERM), %d in flight at SIGTERM, exit %s after it", len(answered), afterSignal, atSignal, took)
	if len(answered) < 20 {
		t.Fatalf("only %d decisions answered; the test needs load", len(answered))
	}

	// Every answered decision is in the store, with its idempotent answer.
	st, err := sqlite.Open(filepath.Join(data, "jitai.db"), sqlite.Options{Durability: "process"}, nil)
	if err != nil {
		t.Fatalf("opening the store after shutdown: %v", err)
	}
	defer st.Close()
	ctx := context.Background()
	missing := 0
	for _, s := range answered {
		rec, err := st.Decision(ctx, study, s.decisionID)
		if err != nil {
			missing++
			if missing <= 10 {
				t.Errorf("answered decision %s: %v", s.decisionID, err)
			}
			continue
		}
		if rec.Action != s.action || rec.Participant != s.participant || rec.IdempotencyKey != s.key {
			t.Errorf("decision %s: recorded %s/%s/%s, answered %s/%s/%s", s.decisionID, rec.Action, rec.Participant, rec.IdempotencyKey, s.action, s.participant, s.key)
		}
		snap, err := st.Snapshot(ctx, study, s.participant, s.key)
		if err != nil || snap.Replay == nil {
			t.Errorf("decision %s: no idempotency entry for key %s (%v)", s.decisionID, s.key, err)
			continue
		}
		if !bytes.Equal(snap.Replay.Response, s.reply) {
			t.Errorf("decision %s: stored answer differs from the one sent:\n%s\n%s", s.decisionID, snap.Replay.Response, s.reply)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d answered decisions are not recorded after a graceful shutdown", missing, len(answered))
	}
}
