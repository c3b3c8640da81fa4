package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/schedule"
	"github.com/redis/go-redis/v9"
)

// clockScenario is one run of TestClockEnginesShareRedis: three engines on
// one Redis (a single server or the three-master cluster), all of whose
// participants share one scheduled point, with or without one engine
// SIGKILLed mid-burst.
type clockScenario struct {
	name    string
	cluster bool
	kill    bool

	redisURL string
	hook     *hookReceiver
	engines  []*server
	ids      []string

	killedAt time.Time
	recs     []clockRecord
	done     bool
	err      error // the run could not go on
	listErr  error // the last listing's
}

// TestClockEnginesShareRedis: three engines run the trial clock on one
// Redis, 10,000 participants share one scheduled point, and each engine
// delivers by webhook to a receiver in the test. On a single Redis server
// and on a three-master Redis Cluster, with all engines up and with one
// engine SIGKILLed mid-burst (its claims pass to the others when their lease
// ends), the study ends with exactly one record per participant under the
// point's key, all decided, and every decision's id arrives at the receiver
// (deliveries are at least once: an id arriving twice is allowed only when
// its first arrival came before the kill, and is counted). Without a kill
// each id arrives exactly once.
//
// The four runs share the point's instant (the next whole minute after
// every participant is enrolled) and run at the same time.
func TestClockEnginesShareRedis(t *testing.T) {
	t.Parallel() // waits for a wall-clock minute: overlaps with the other clock test
	const (
		participants = 10000
		studyID      = "share"
		ttl          = 10 * time.Minute
	)
	jitaiBinary(t)
	scenarios := []*clockScenario{
		{name: "single", cluster: false, kill: false},
		{name: "single-kill", cluster: false, kill: true},
		{name: "cluster", cluster: true, kill: false},
		{name: "cluster-kill", cluster: true, kill: true},
	}
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	// The point is the next whole minute at least margin ahead, for 4 x 3
	// engines to start and enrol 4 x 10,000 participants (half a minute on
	// an idle two-core machine). If enrolment runs past the point, the runs
	// start over on fresh servers with twice the margin: the test takes
	// longer on a slow machine rather than failing.
	var at time.Time
	for margin := 45 * time.Second; ; margin *= 2 {
		start := time.Now()
		at = wholeMinuteAfter(start, margin)
		late := ""
		for i, sc := range scenarios {
			if sc.cluster {
				sc.redisURL = startRedisCluster(t)
			} else {
				sc.redisURL = startRedis(t, false).url()
			}
			sc.hook = newHookReceiver(t)
			env := []string{clockSecretEnv + "=" + sc.hook.secret}
			sc.engines = nil
			var bases []string
			for e := range 3 {
				// Each engine's copy of the study posts to its own path.
				studies := t.TempDir()
				writeClockStudy(t, studies, clockStudy{ID: studyID, Points: []time.Time{at}, TTL: ttl}, sc.hook.url(fmt.Sprintf("e%d", e)))
				srv := startServerEnv(t, t.TempDir(), env, "--studies", studies, "--store", "redis", "--redis-url", sc.redisURL)
				sc.engines = append(sc.engines, srv)
				bases = append(bases, srv.base)
			}
			sc.ids = make([]string, participants)
			for j := range sc.ids {
				sc.ids[j] = fmt.Sprintf("s%d-%05d", i, j)
			}
			for _, e := range enrolParallel(t, hc, bases, studyID, sc.ids, 48) {
				if !e.enrolledAt.Before(at) && late == "" {
					late = fmt.Sprintf("%s: %s enrolled at %s", sc.name, e.id, e.enrolledAt.Format(time.TimeOnly))
				}
			}
			if late != "" {
				break
			}
		}
		if late == "" {
			t.Logf("started %d engines and enrolled %d participants in %s; the point is at %s",
				3*len(scenarios), participants*len(scenarios), time.Since(start).Round(time.Millisecond), at.Format(time.TimeOnly))
			break
		}
		if margin > 5*time.Minute {
			t.Fatalf("enrolment ran past the point again with a margin of %s (%s)", margin, late)
		}
		t.Logf("enrolment ran past the point at %s (%s, %s after the start): starting over with a margin of %s",
			at.Format(time.TimeOnly), late, time.Since(start).Round(time.Millisecond), 2*margin)
		for _, sc := range scenarios {
			for _, e := range sc.engines {
				_ = e.cmd.Process.Kill()
				e.wait(10 * time.Second)
			}
		}
	}

	sleepUntil(at)
	var wg sync.WaitGroup
	for _, sc := range scenarios {
		wg.Go(func() { sc.run(hc, at, studyID, participants) })
	}
	wg.Wait()

	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			sc.check(t, at, studyID, participants)
		})
	}
}

// run waits for the scenario's burst, kills engine 0 mid-burst if asked,
// and waits until every participant has a record and every deliver
// decision's id has arrived (or a deadline passes).
func (sc *clockScenario) run(hc *http.Client, at time.Time, studyID string, n int) {
	// A bound for failing, not a timing assertion: the burst takes well
	// under a minute on an idle two-core machine.
	deadline := at.Add(8 * time.Minute)
	if sc.kill {
		// The first delivery arrives once an engine has committed its first
		// batch of the burst.
		if !waitUntil(deadline, 2*time.Millisecond, func() bool { return sc.hook.arrived.Load() > 0 }) {
			sc.err = fmt.Errorf("no delivery within 8 minutes of the point")
			return
		}
		if err := sc.engines[0].cmd.Process.Kill(); err != nil {
			sc.err = err
			return
		}
		sc.killedAt = time.Now()
		if !sc.engines[0].wait(10 * time.Second) {
			sc.err = fmt.Errorf("the killed engine did not exit")
			return
		}
	}
	base := sc.engines[len(sc.engines)-1].base
	list := func() bool {
		recs, err := listStudy(hc, base, studyID)
		if err != nil {
			sc.listErr = err
			return false
		}
		sc.recs = recs
		if len(recs) < n {
			return false
		}
		got := sc.hook.snapshot()
		for _, r := range recs {
			if (r.Action == "deliver" || r.Action == "safety") && len(got[r.DecisionID]) == 0 {
				return false
			}
		}
		return true
	}
	// Listing (10 pages) costs the engines: list when the receiver has as
	// many ids as participants, and once more at the deadline.
	sc.done = waitUntil(deadline, 200*time.Millisecond, func() bool { return sc.hook.distinct() >= n && list() })
	if !sc.done {
		sc.done = list()
	}
}

// check asserts the scenario's outcome.
func (sc *clockScenario) check(t *testing.T, at time.Time, studyID string, n int) {
	if sc.err != nil {
		t.Fatal(sc.err)
	}
	got := sc.hook.snapshot()
	if !sc.done {
		t.Errorf("within 8 minutes of the point: %d records of %d participants, %d distinct ids received (last listing error: %v)", len(sc.recs), n, len(got), sc.listErr)
	}
	enrolled := map[string]bool{}
	for _, p := range sc.ids {
		enrolled[p] = true
	}
	date := at.UTC().Format(time.DateOnly)
	byParticipant := map[string]string{}
	stored := map[string]clockRecord{}
	delivering, beforeKill, lastRecorded, errs := 0, 0, time.Time{}, 0
	report := func(format string, args ...any) {
		if errs++; errs <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range sc.recs {
		if !enrolled[r.ParticipantID] {
			report("record %s of %s, who is not enrolled in this run", r.DecisionID, r.ParticipantID)
		}
		if prev, dup := byParticipant[r.ParticipantID]; dup {
			report("%s has two records of the point: %s and %s", r.ParticipantID, prev, r.DecisionID)
		}
		byParticipant[r.ParticipantID] = r.DecisionID
		stored[r.DecisionID] = r
		if key := schedule.PointKey(studyID, r.ParticipantID, "p1", date); r.IdempotencyKey != key || r.DecisionPoint != "p1" {
			report("record %s: point %s key %q, want p1 under %q", r.DecisionID, r.DecisionPoint, r.IdempotencyKey, key)
		}
		if r.Trigger != "scheduled" || !r.ScheduledAt.Equal(at) || r.missed() {
			report("record %s: trigger %q scheduled at %s, unavailable %v; want decided at the point %s", r.DecisionID, r.Trigger, r.ScheduledAt, r.UnavailableReasons, at)
		}
		if r.Action == "deliver" || r.Action == "safety" {
			delivering++
		} else {
			report("record %s: action %s; every participant is available and P(deliver) is 1", r.DecisionID, r.Action)
		}
		if sc.kill && r.RecordedAt.Before(sc.killedAt) {
			beforeKill++
		}
		if r.RecordedAt.After(lastRecorded) {
			lastRecorded = r.RecordedAt
		}
	}
	if len(sc.recs) != n || len(byParticipant) != n {
		t.Errorf("%d records for %d participants, want exactly %d", len(sc.recs), len(byParticipant), n)
		var lost []string
		for _, p := range sc.ids {
			if _, ok := byParticipant[p]; !ok {
				lost = append(lost, p)
			}
		}
		sc.diagnose(t, studyID, lost)
	}
	dupIDs, fromKilled := 0, 0
	for id, arrivals := range got {
		// What the killed engine delivered is stored, like every id.
		if r, ok := stored[id]; !ok || (r.Action != "deliver" && r.Action != "safety") {
			report("webhook id %s (from %s) is no deliver/safety decision of the store", id, arrivals[0].from)
		}
		if arrivals[0].from == "e0" {
			fromKilled++
		}
		if len(arrivals) < 2 {
			continue
		}
		// At least once: only an id the killed engine sent (and died
		// before storing the outcome) may arrive again, once, from an
		// engine that took its delivery over when the lease ended.
		dupIDs++
		if !sc.kill {
			report("webhook id %s arrived %d times; no engine failed: %v", id, len(arrivals), arrivals)
		} else if len(arrivals) != 2 || arrivals[0].from != "e0" || arrivals[1].from == "e0" {
			report("webhook id %s arrived %d times, not once from the killed engine and once from another: %v", id, len(arrivals), arrivals)
		}
	}
	missing := 0
	for id, r := range stored {
		if (r.Action == "deliver" || r.Action == "safety") && len(got[id]) == 0 {
			missing++
		}
	}
	if missing > 0 || len(got) != delivering {
		t.Errorf("%d deliver/safety decisions, %d distinct ids received, %d decisions never received", delivering, len(got), missing)
	}
	if bad := sc.hook.rejected(); len(bad) > 0 {
		t.Errorf("%d webhook requests failed verification, e.g. %s", len(bad), bad[0])
	}
	perEngine := map[string]int{}
	for _, arrivals := range got {
		for _, a := range arrivals {
			perEngine[a.from]++
		}
	}
	t.Logf("arrivals by sending engine: %v", perEngine)
	if sc.kill {
		t.Logf("engine 0 SIGKILLed %s after the point; it had delivered %d ids; %d records were committed before the kill",
			sc.killedAt.Sub(at).Round(time.Millisecond), fromKilled, beforeKill)
	}
	t.Logf("%d records (%d deliver/safety), %d distinct webhook ids, %d ids arrived more than once (%d duplicate arrivals); last record %s after the point, last delivery %s after it",
		len(sc.recs), delivering, len(got), dupIDs, duplicates(got), lastRecorded.Sub(at).Round(time.Millisecond), sc.hook.lastArrival().Sub(at).Round(time.Millisecond))
}

// diagnose reports what the store holds of participants without a record:
// their records, their schedule entry, and the engines' warnings.
func (sc *clockScenario) diagnose(t *testing.T, studyID string, lost []string) {
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	base := sc.engines[len(sc.engines)-1].base
	addrs := strings.Split(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(sc.redisURL, "redis+cluster://"), "redis://"), "/0"), ",")
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs, IsClusterMode: len(addrs) > 1})
	defer rdb.Close()
	ctx := context.Background()
	for i, p := range lost {
		if i == 5 {
			t.Logf("... and %d more", len(lost)-5)
			break
		}
		r, err := do(hc, "GET", base+"/v1/studies/"+studyID+"/decisions?participant="+p, nil, "")
		t.Logf("%s: decisions listed for them: %v %d %.500s", p, err, r.status, r.body)
		r, err = do(hc, "GET", base+"/v1/studies/"+studyID+"/participants/"+p, nil, "")
		t.Logf("%s: participant: %v %d %.500s", p, err, r.status, r.body)
		h := fnv.New32a()
		_, _ = h.Write([]byte(p))
		shard := fmt.Sprintf("jitai:{%s#%d}", studyID, h.Sum32()%16)
		entry, err := rdb.HGet(ctx, shard+":duec", p).Result()
		sc2, err2 := rdb.ZScore(ctx, shard+":due", p).Result()
		t.Logf("%s: schedule entry %q (%v), due score %v (%v)", p, entry, err, sc2, err2)
	}
	for i, e := range sc.engines {
		var warn []string
		for _, line := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
				warn = append(warn, line)
			}
		}
		t.Logf("engine %d: %d warnings/errors; the last ones:\n%s", i, len(warn), strings.Join(warn[max(0, len(warn)-10):], "\n"))
	}
}

// startRedisCluster starts a three-master Redis Cluster of private
// redis-servers on loopback ports (killed when t ends) and returns its
// redis+cluster:// URL.
func startRedisCluster(t *testing.T) string {
	t.Helper()
	bin := redisBinary(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-cli not found on PATH (CI is set, so this fails instead of skipping)")
		}
		t.Skip("redis-cli not found on PATH; skipping (it fails when CI is set)")
	}
	var addrs []string
	for range 3 {
		addrs = append(addrs, startClusterNode(t, bin))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		ok := waitUntil(time.Now().Add(time.Minute), 50*time.Millisecond, func() bool {
			out, err := exec.CommandContext(ctx, cli, "-h", "127.0.0.1", "-p", a[strings.LastIndexByte(a, ':')+1:], "cluster", "info").Output()
			return err == nil && strings.Contains(string(out), "cluster_state:ok") && strings.Contains(string(out), "cluster_slots_assigned:16384")
		})
		if !ok {
			t.Fatalf("cluster node %s not ok after a minute", a)
		}
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// startClusterNode starts one cluster-enabled redis-server on a free port
// whose cluster bus port (port+10000) is free too.
func startClusterNode(t *testing.T, bin string) string {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		port := freeLoopbackPort(t)
		if port > 55000 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		dir := t.TempDir()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "5000", "--cluster-require-full-coverage", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting redis-server: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if err := waitRedis(addr, done, 30*time.Second); err == nil {
			return addr
		}
		_ = cmd.Process.Kill()
	}
	t.Fatal("no cluster node started")
	return ""
}
