package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/redisstore"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// logExportRedisURL returns a Redis for the export tests: the one
// JITAI_TEST_REDIS_URL names, else the one on 127.0.0.1:6379 if it
// answers, else a private redis-server on a free loopback port (killed
// when t ends). Without any, the test fails when CI is set and skips
// otherwise.
func logExportRedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("JITAI_TEST_REDIS_URL"); u != "" {
		return u
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DialTimeout: 500 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c.Ping(ctx).Err() == nil {
		return "redis://127.0.0.1:6379/0"
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no Redis on 127.0.0.1:6379 and redis-server not found on PATH (CI is set, so this fails instead of skipping)")
		}
		t.Skip("no Redis on 127.0.0.1:6379 and redis-server not found on PATH; skipping (it fails when CI is set)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	defer pc.Close()
	for deadline := time.Now().Add(10 * time.Second); pc.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			t.Fatal("private redis-server did not answer within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
}

// logExportPrefix gives the export command a key prefix of its own for the
// test and deletes its keys when t ends.
func logExportPrefix(t testing.TB, url string) redisstore.Options {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	opts := redisstore.Options{KeyPrefix: "jitaitest:export:" + hex.EncodeToString(b[:]) + ":"}
	t.Cleanup(func() {
		o, _ := redis.ParseURL(url)
		c := redis.NewClient(o)
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, opts.KeyPrefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Unlink(ctx, iter.Val())
		}
	})
	return opts
}

// logExportEngine is the real engine on the Redis store, with stress-mrt.
type logExportEngine struct {
	st  *redisstore.Store
	eng *engine.Engine
	now time.Time
}

func newLogExportEngine(t *testing.T, url string, opts redisstore.Options) *logExportEngine {
	t.Helper()
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	studies, err := policies.LoadStudies(ctx, exampleStudies, cat)
	if err != nil {
		t.Fatal(err)
	}
	st, err := redisstore.Open(ctx, url, opts, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &logExportEngine{st: st, now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	e.eng, err = engine.New(engine.Components{Store: st, Studies: studies, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// day enrols the participants (if new) and makes each one's decisions of
// day d (0-based): three the app asks for (on_demand).
func (e *logExportEngine) day(t *testing.T, d int, people ...string) {
	t.Helper()
	ctx := context.Background()
	for _, p := range people {
		e.now = time.Date(2026, 3, 2+d, 8, 0, 0, 0, time.UTC) // a new participant enrols before the day's decisions
		if _, _, err := e.eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: p}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			tm := time.Date(2026, 3, 2+d, 8+3*i, 30, 0, 0, time.UTC)
			e.now = tm
			if _, err := e.eng.Decide(ctx, "stress-mrt", p, engine.DecideRequest{DecisionPoint: onDemand, Time: tm}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// decisionIDs lists the study's committed decision ids.
func (e *logExportEngine) decisionIDs(t *testing.T) []string {
	t.Helper()
	recs, err := e.st.ListDecisions(context.Background(), trial.DecisionQuery{Study: "stress-mrt"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

// jsonlIDs reads the export file: the decision id of every line, failing
// on a line that is not a whole record.
func jsonlIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r trial.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == "" || r.Study != "stress-mrt" {
			t.Fatalf("%s: line %d is not a decision record (%v): %s", path, len(ids)+1, err, sc.Text())
		}
		ids = append(ids, r.ID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// checkExactlyOnce checks that the file holds every committed decision
// exactly once.
func checkExactlyOnce(t *testing.T, path string, want []string) {
	t.Helper()
	got := jsonlIDs(t, path)
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s: decision %s appears twice", path, id)
		}
		seen[id] = true
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%s holds %d decisions, want the %d committed:\ngot  %v\nwant %v", path, len(got), len(want), got, want)
	}
}

func TestExportJSONLFromRedis(t *testing.T) {
	url := logExportRedisURL(t)
	opts := logExportPrefix(t, url)
	e := newLogExportEngine(t, url, opts)
	out := filepath.Join(t.TempDir(), "decisions.jsonl")
	people := []string{"p1", "p2", "p3", "p4"}
	var afterBatch func(int) error // the crash of a run, if set
	runJSONL := func(extra ...string) (int, string, string) {
		args := append([]string{"export", "--study", "stress-mrt", "--out", out, "--store", "redis", "--redis-url", url, "--batch", "5"}, extra...)
		var o, e bytes.Buffer
		code := executeWith(deps{redis: opts, afterBatch: afterBatch}, args, strings.NewReader(""), &o, &e)
		return code, o.String(), e.String()
	}

	// First run: everything so far.
	e.day(t, 0, people...)
	code, stdout, stderr := runJSONL()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "12 decisions appended") {
		t.Errorf("stdout: %s", stdout)
	}
	checkExactlyOnce(t, out, e.decisionIDs(t))
	if n, _ := e.st.LogLen(t.Context(), "stress-mrt"); n != 0 {
		t.Errorf("after the export the log holds %d entries, want 0 (trimmed)", n)
	}

	// Second run: only what is new; the first lines are unchanged.
	before, _ := os.ReadFile(out)
	e.day(t, 1, people...)
	code, stdout, stderr = runJSONL()
	if code != 0 || !strings.Contains(stdout, "12 decisions appended") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	after, _ := os.ReadFile(out)
	if !bytes.HasPrefix(after, before) {
		t.Fatal("the second run changed lines of the first")
	}
	checkExactlyOnce(t, out, e.decisionIDs(t))

	// Nothing new: nothing appended.
	if code, stdout, _ = runJSONL(); code != 0 || !strings.Contains(stdout, "0 decisions appended") {
		t.Fatalf("exit %d: %s", code, stdout)
	}

	// A run killed after writing and syncing its second batch and before
	// acknowledging it: the next run gets that batch again and does not
	// write it twice.
	e.day(t, 2, people...)
	afterBatch = func(batch int) error {
		if batch == 1 {
			return errors.New("killed between write and ack")
		}
		return nil
	}
	code, _, stderr = runJSONL()
	afterBatch = nil
	if code != 1 || !strings.Contains(stderr, "killed between write and ack") {
		t.Fatalf("the killed run: exit %d, %s", code, stderr)
	}
	if got := len(jsonlIDs(t, out)); got != 24+10 {
		t.Fatalf("after the killed run the file has %d lines, want 34 (two batches of 5 written)", got)
	}
	if n, _ := e.st.LogPending(t.Context(), "stress-mrt", "export", "jitai-export"); n != 5 {
		t.Fatalf("%d entries pending after the killed run, want 5", n)
	}
	code, stdout, stderr = runJSONL()
	if code != 0 || !strings.Contains(stdout, "2 decisions appended (5 delivered again and already in the file)") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	checkExactlyOnce(t, out, e.decisionIDs(t))

	// A run killed in the middle of writing a line: the cut line is
	// removed and its decision written again, whole.
	e.day(t, 3, people...)
	afterBatch = func(int) error { return errors.New("killed") }
	if code, _, _ = runJSONL(); code != 1 {
		t.Fatalf("the killed run: exit %d", code)
	}
	afterBatch = nil
	st, _ := os.Stat(out)
	if err := os.Truncate(out, st.Size()-20); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runJSONL()
	if code != 0 || !strings.Contains(stderr, "incomplete line") || !strings.Contains(stdout, "8 decisions appended (4 delivered again") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	checkExactlyOnce(t, out, e.decisionIDs(t))

	// --reindex with nothing to repair, through another group that starts
	// after the trims: it appends nothing twice.
	if code, stdout, stderr = runJSONL("--group", "audit", "--reindex"); code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}

	// A study nobody is enrolled in.
	if code, _, stderr = runExportWith(opts, "--study", "nope", "--out", out, "--store", "redis", "--redis-url", url); code != 1 || !strings.Contains(stderr, `no study "nope"`) {
		t.Fatalf("export of an unknown study: exit %d, %s", code, stderr)
	}

	// Not a file this export wrote: refused rather than appended to.
	bad := filepath.Join(t.TempDir(), "notes.jsonl")
	if err := os.WriteFile(bad, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = runExportWith(opts, "--study", "stress-mrt", "--out", bad, "--store", "redis", "--redis-url", url); code != 1 || !strings.Contains(stderr, "not a decision record") {
		t.Fatalf("export to a foreign file: exit %d, %s", code, stderr)
	}
}

func TestExportTablesFromRedis(t *testing.T) {
	url := logExportRedisURL(t)
	opts := logExportPrefix(t, url)
	e := newLogExportEngine(t, url, opts)
	e.day(t, 0, "p1", "p2")
	out := filepath.Join(t.TempDir(), "stress.csv")
	t.Setenv("JITAI_STORE", "redis")
	t.Setenv("JITAI_REDIS_URL", url)
	code, stdout, stderr := runExportWith(opts, "--study", "stress-mrt", "--out", out, "--studies", exampleStudies)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "6 rows") {
		t.Errorf("stdout: %s", stdout)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 7 || recs[0][0] != "participant_id" || recs[1][0] != "p1" || recs[6][0] != "p2" {
		t.Errorf("decisions CSV: %v", recs)
	}
	// The tables need no consumer group: the log is untouched.
	if n, _ := e.st.LogLen(t.Context(), "stress-mrt"); n != 6 {
		t.Errorf("the log holds %d entries after a CSV export, want 6", n)
	}
}

func TestExportJSONLErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--study", "s", "--out", "x.jsonl"}, "--format jsonl reads the decision log of the Redis store"},
		{[]string{"--study", "s", "--out", "x.jsonl", "--store", "redis", "--batch", "0"}, "--batch must be at least 1"},
		{[]string{"--study", "s", "--out", "x.csv", "--store", "mongo"}, `store "mongo"`},
		{[]string{"--study", "s", "--out", "x", "--format", "xml"}, "use csv or parquet (tables) or jsonl"},
	} {
		code, _, stderr := runExportArgs(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// BenchmarkExportJSONL measures the JSONL export: b.N decisions committed
// beforehand, then read, written, synced, acknowledged and trimmed.
func BenchmarkExportJSONL(b *testing.B) {
	url := logExportRedisURL(b)
	opts := logExportPrefix(b, url)
	ctx := context.Background()
	st, err := redisstore.Open(ctx, url, opts, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	const people = 500
	for i := range people {
		p := &trial.Participant{Study: "s1", ID: fmt.Sprintf("p%04d", i), Stratum: "a", Status: trial.StatusActive}
		if _, _, err := st.Enroll(ctx, p, func(int64) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	// Records of about 1.5 KB, like the engine's.
	prob, draw := 0.6, 0.4137792315
	input := json.RawMessage(`{"now":"2026-03-02T09:00:00Z","state":{"ema":{"stress":{"v":7,"t":"2026-03-02T08:11:00Z"},"mood":{"v":4,"t":"2026-03-02T08:11:00Z"}},` +
		`"context":{"activity":{"v":"still","t":"2026-03-02T08:58:00Z"},"location":{"v":"home","t":"2026-03-02T08:58:00Z"}}},` +
		`"between":{"framing":"gain"},"history":{"prompts_today":1,"minutes_since_prompt":184,"decisions_today":3,"engaged_last":true}}`)
	var size int
	for i := range b.N {
		p := fmt.Sprintf("p%04d", i%people)
		t := base.Add(time.Duration(i) * time.Second)
		rec := &trial.Record{ID: fmt.Sprintf("01J%023d", i), Study: "s1", Participant: p, DecisionPoint: "scheduled",
			Time: t, LocalTime: t.Format("2006-01-02T15:04:05"), RecordedAt: t.Add(3 * time.Millisecond), ExpiresAt: t.Add(time.Hour),
			PolicyRevision: "sha256:4f2a9c0b1c7e", CatalogueRevision: "cat-2026-02-20",
			Action: trial.ActionDeliver, Reasons: []string{"stress_high"}, Available: true, Randomised: true,
			Factors: []trial.FactorDraw{
				{Name: "prompt", Type: "within", Level: 1, Label: "on", Probability: &prob, Source: "policy", Draw: &draw},
				{Name: "framing", Type: "between", Level: 0, Label: "gain"},
			},
			Option:    &trial.OptionDraw{ID: "breathing-478", Probability: 2.0 / 3, Draw: 0.1903},
			Tailoring: map[string]any{"stress": 7.0, "minutes_since_prompt": 184.0},
			Input:     input, InputHash: "sha256:0b1c7e4f2a9c", LatencyMicros: 1843}
		if i == 0 {
			j, _ := json.Marshal(rec)
			size = len(j)
		}
		if err := st.CommitDecision(ctx, &trial.Commit{Record: rec}); err != nil {
			b.Fatal(err)
		}
	}
	out := filepath.Join(b.TempDir(), "d.jsonl")
	b.ResetTimer()
	res, err := appendLog(ctx, st, logExportArgs{study: "s1", out: out, group: "export", consumer: "c", batch: 1000})
	if err != nil || res.Appended != b.N {
		b.Fatalf("appendLog = %+v, %v", res, err)
	}
	b.ReportMetric(float64(res.Appended)/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(size), "bytes/record")
}

// TestExportJSONLAppliesErasures: a JSONL file written before an erasure
// loses the erased participant's data at the next run: the lines of a
// participant whose records were removed go, those of one whose records
// were anonymised are replaced by the anonymised records; no line names
// either id; the other participants' lines are untouched; a further run
// changes nothing.
func TestExportJSONLAppliesErasures(t *testing.T) {
	ctx := t.Context()
	url := logExportRedisURL(t)
	opts := logExportPrefix(t, url)
	e := newLogExportEngine(t, url, opts)
	out := filepath.Join(t.TempDir(), "decisions.jsonl")
	run := func() string {
		t.Helper()
		code, stdout, stderr := runExportWith(opts, "--study", "stress-mrt", "--out", out, "--store", "redis", "--redis-url", url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		return stdout
	}
	e.day(t, 0, "keep-3141", "anon-me-2718", "gone-1618")
	run()
	before, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(before, []byte("anon-me-2718")) || !bytes.Contains(before, []byte("gone-1618")) {
		t.Fatal("the first export does not hold the participants")
	}
	var kept [][]byte
	for _, l := range bytes.SplitAfter(before, []byte("\n")) {
		if bytes.Contains(l, []byte("keep-3141")) {
			kept = append(kept, l)
		}
	}
	if _, err := e.st.Erase(ctx, "stress-mrt", "anon-me-2718", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Erase(ctx, "stress-mrt", "gone-1618", false); err != nil {
		t.Fatal(err)
	}
	if got := run(); !strings.Contains(got, "erasures applied to the file: 3 lines removed, 3 anonymised") {
		t.Fatalf("second run: %s", got)
	}
	after, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"anon-me-2718", "gone-1618"} {
		if n := bytes.Count(after, []byte(id)); n != 0 {
			t.Fatalf("the export still names %s %d times after its erasure", id, n)
		}
	}
	ids := jsonlIDs(t, out)
	if len(ids) != 6 {
		t.Fatalf("%d lines after the erasures, want 6 (3 kept, 3 anonymised)", len(ids))
	}
	anonymised := 0
	for _, l := range bytes.SplitAfter(after, []byte("\n")) {
		var r trial.Record
		if len(l) == 0 || json.Unmarshal(l, &r) != nil {
			continue
		}
		if strings.HasPrefix(r.Participant, "anon-") {
			anonymised++
			if string(r.Input) != "{}" || r.InputHash != "" {
				t.Fatalf("an anonymised line keeps its input: %s", l)
			}
		}
	}
	for _, k := range kept {
		if !bytes.Contains(after, k) {
			t.Fatalf("a line of a participant not erased changed: %s", k)
		}
	}
	if anonymised != 3 {
		t.Fatalf("%d anonymised lines, want 3", anonymised)
	}
	run()
	again, _ := os.ReadFile(out)
	if !bytes.Equal(again, after) {
		t.Fatal("a run after the erasures were applied changed the file")
	}
}
