package api_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/auth"
	"github.com/jitai/jitai/engine/store/redisstore"
	"github.com/jitai/jitai/engine/trial"
)

// TestHostileInput sends the hostile-input suite to the server over each
// store (embedded SQLite and Redis), as jitai serve runs it (its
// http.Server, listener and token authentication): every request must be
// answered with its 4xx status as problem+json with a type, title, detail
// and, where one field is at fault, that field; none may be a 5xx; and none
// may write anything.
func TestHostileInput(t *testing.T) {
	for _, backend := range []string{"sqlite", "redis"} {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, quietLogs, withStore(backend), withTokens)
			// A second server whose request timeout is short, for slow bodies.
			slow := newEnv(t, quietLogs, withStore(backend), withTokens, withRequestTimeout(300*time.Millisecond))
			const study = stressMRT
			p, other, noneID := badInputSetup(t, e, study)
			var cases []hostileCase
			for _, c := range badInputCases(study, p, other, noneID) {
				cases = append(cases, hostileCase{name: c.name, method: c.method, path: c.path, body: c.body, header: c.header, status: c.status, field: c.field})
			}
			cases = append(cases, extremeTimeCases(study, p)...)
			cases = append(cases, hostileCases(e, study, p)...)
			counts := map[int]int{}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := c.send(t, e, slow)
					if r.Status >= 500 && r.Status != c.status {
						t.Fatalf("status %d: %.300s", r.Status, r.Body)
					}
					checkProblem(t, r, c.status, c.field)
					counts[r.Status]++
				})
			}
			// The ends of the accepted range are accepted.
			for _, since := range []string{"2000-01-01T00:00:00Z", "2199-12-31T23:59:59.999999999Z"} {
				e.do(req{Method: "GET", Path: "/v1/studies/" + study + "/decisions?since=" + since}).expect(t, http.StatusOK)
			}
			checkOnlySetupWritten(t, e, study, p, noneID)
			t.Logf("%s: %d hostile requests, every one a problem+json; by status: %v", backend, len(cases), counts)
		})
	}
}

// hostileCase is one hostile request: through the HTTP client (method,
// path, body, header), or as raw bytes on a fresh connection (wire).
type hostileCase struct {
	name   string
	method string
	path   string
	body   raw
	header map[string]string
	wire   string
	// slow sends wire to the server with the short request timeout.
	slow   bool
	status int
	field  string
}

func (c hostileCase) send(t *testing.T, e, slow *env) response {
	if c.wire != "" {
		if c.slow { // the same request with the slow server's token
			return slow.wire(t, strings.ReplaceAll(c.wire, e.tokens["admin"], slow.tokens["admin"]))
		}
		return e.wire(t, c.wire)
	}
	m := c.method
	if m == "" {
		m = "POST"
	}
	var body any
	if c.body != "" || m == "POST" {
		body = c.body
	}
	return e.do(req{Method: m, Path: c.path, Body: body, Header: c.header})
}

// extremeTimeCases are times outside 2000-01-01 to 2200-01-01 (no store
// holds all of them exactly) and a decision time far from the server's
// clock, in every place the API takes a time: each is 422 naming it.
func extremeTimeCases(study, p string) []hostileCase {
	D, E := decisionsPath(study, p), eventsPath(study, p)
	L := "/v1/studies/" + study + "/decisions?since="
	var cs []hostileCase
	for _, tm := range []string{"0001-01-01T00:00:00Z", "1600-06-01T12:00:00Z", "1677-09-21T00:12:43Z", "1999-12-31T23:59:59Z",
		"2200-01-01T00:00:00Z", "2262-04-11T23:47:17Z", "2300-01-01T00:00:00Z", "9999-12-31T23:59:59Z"} {
		cs = append(cs,
			hostileCase{name: "decide at " + tm, path: D, body: raw(`{"decision_point":"on_demand","time":"` + tm + `"}`), status: 422, field: "time"},
			hostileCase{name: "event at " + tm, path: E, body: raw(`{"events":[{"id":"ev-x","type":"ema","time":"` + tm + `","data":{"stress":5}}]}`), status: 422, field: "events[0].time"},
			hostileCase{name: "list since " + tm, method: "GET", path: L + tm, status: 422, field: "since"},
			hostileCase{name: "snooze until " + tm, path: E, body: raw(`{"events":[{"id":"ev-x","type":"preference","time":"` + rfc(at(0, 21, 30)) + `","data":{"snooze_until":"` + tm + `"}}]}`), status: 422, field: "events[0].data.snooze_until"},
		)
	}
	skewed := func(d time.Duration) string { return rfc(at(0, 21, 30).Add(d)) }
	cs = append(cs,
		hostileCase{name: "decide an hour after now", path: D, body: raw(`{"decision_point":"on_demand","time":"` + skewed(time.Hour) + `"}`), status: 422, field: "time"},
		hostileCase{name: "decide an hour before now", path: D, body: raw(`{"decision_point":"on_demand","time":"` + skewed(-time.Hour) + `"}`), status: 422, field: "time"},
		hostileCase{name: "decide a year after now", path: D, body: raw(`{"decision_point":"on_demand","time":"` + skewed(365*24*time.Hour) + `"}`), status: 422, field: "time"},
		hostileCase{name: "event two days after now", path: E, body: raw(`{"events":[{"id":"ev-x","type":"ema","time":"` + skewed(48*time.Hour) + `","data":{"stress":5}}]}`), status: 422, field: "events[0].time"},
		hostileCase{name: "cursor in year 9999", method: "GET", path: "/v1/studies/" + study + "/decisions?cursor=" + cursorOf("9999-12-31T23:59:59Z", "x"), status: 422, field: "cursor"},
		hostileCase{name: "cursor in year 1600", method: "GET", path: "/v1/studies/" + study + "/decisions?cursor=" + cursorOf("1600-01-01T00:00:00Z", "x"), status: 422, field: "cursor"},
	)
	return cs
}

// cursorOf is a list cursor as the server encodes one.
func cursorOf(t, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t + "|" + id))
}

// hostileCases are requests built to break the edge: JSON tricks, types,
// numbers, unicode, paths, methods, tokens, sizes and malformed HTTP.
func hostileCases(e *env, study, p string) []hostileCase {
	D, E, P := decisionsPath(study, p), eventsPath(study, p), participantsPath(study)
	okTime := rfc(at(0, 21, 30))
	ev := func(inner string) raw { return raw(`{"events":[` + inner + `]}`) }
	withBody := func(method, path, ct, body string, extra ...string) string {
		return method + " " + path + " HTTP/1.1\r\nHost: jitai\r\nContent-Type: " + ct + "\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n" + strings.Join(extra, "") + "\r\n" + body
	}
	bearer := "Authorization: Bearer " + e.tokens["admin"] + "\r\n"
	get := func(target string, extra ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: jitai\r\n" + bearer + strings.Join(extra, "") + "\r\n"
	}
	return []hostileCase{
		// Malformed JSON.
		{name: "json lone brace", path: D, body: `{`, status: 400},
		{name: "json lone close", path: D, body: `}`, status: 400},
		{name: "json bare word", path: D, body: `nul`, status: 400},
		{name: "json a string", path: D, body: `"decide"`, status: 400},
		{name: "json a number", path: D, body: `123`, status: 400},
		{name: "json missing value", path: D, body: `{"decision_point":}`, status: 400},
		{name: "json single quotes", path: D, body: `{'decision_point':'evening'}`, status: 400},
		{name: "json comment", path: D, body: raw(`{"decision_point":"evening", /* now */ "time":"` + okTime + `"}`), status: 400},
		{name: "json trailing comma", path: D, body: raw(`{"decision_point":"evening","time":"` + okTime + `",}`), status: 400},
		{name: "json NaN", path: D, body: raw(`{"decision_point":"evening","time":"` + okTime + `","context":{"x":NaN}}`), status: 400},
		{name: "json byte order mark", path: D, body: raw("\ufeff" + `{"decision_point":"evening","time":"` + okTime + `"}`), status: 400},
		{name: "json bad escape", path: D, body: `{"decision_point":"\q"}`, status: 400},
		{name: "json control character", path: D, body: raw("{\"decision_point\":\"a\x01b\"}"), status: 400},
		{name: "json too deep", path: D, body: raw(`{"context":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`), status: 400, field: "context"},
		{name: "events 100000 deep", path: E, body: raw(`{"events":` + strings.Repeat(`[`, 100000) + `}`), status: 400, field: "events"},

		// Duplicate keys: the last one would win silently.
		{name: "duplicate decision_point", path: D, body: raw(`{"decision_point":"morning","decision_point":"on_demand","time":"` + okTime + `"}`), status: 400, field: "decision_point"},
		{name: "duplicate key escaped", path: D, body: raw(`{"decision_point":"on_demand","time":"` + okTime + `","\u0074ime":"` + okTime + `"}`), status: 400, field: "time"},
		{name: "duplicate key in context", path: D, body: raw(`{"decision_point":"on_demand","time":"` + okTime + `","context":{"location":"home","location":"work"}}`), status: 400, field: "context.location"},
		{name: "duplicate key in event data", path: E, body: ev(`{"id":"ev-d","type":"ema","time":"` + okTime + `","data":{"stress":1,"stress":9}}`), status: 400, field: "events[0].data.stress"},
		{name: "duplicate key in second event", path: E, body: ev(`{"id":"ev-d1","type":"ema","time":"` + okTime + `","data":{"stress":1}},{"id":"ev-d2","id":"ev-d3","type":"ema","time":"` + okTime + `","data":{"stress":1}}`), status: 400, field: "events[1].id"},
		{name: "duplicate participant_id", path: P, body: `{"participant_id":"p-a","participant_id":"p-b"}`, status: 400, field: "participant_id"},
		{name: "duplicate events", path: E, body: raw(`{"events":[],"events":[` + `{"id":"ev-d","type":"ema","time":"` + okTime + `","data":{"stress":1}}]}`), status: 400, field: "events"},

		// Wrong types and huge numbers.
		{name: "time an object", path: D, body: `{"decision_point":"on_demand","time":{"unix":1}}`, status: 400, field: "time"},
		{name: "decision_point null-ish array", path: D, body: raw(`{"decision_point":["on_demand"],"time":"` + okTime + `"}`), status: 400, field: "decision_point"},
		{name: "events array of numbers", path: E, body: `{"events":[1,2,3]}`, status: 400, field: "events[0]"},
		{name: "strata a list", path: P, body: `{"participant_id":"p-new","strata":["a"]}`, status: 400, field: "strata"},
		{name: "timezone a number", path: P, body: `{"participant_id":"p-new","timezone":0}`, status: 400, field: "timezone"},
		{name: "stress 1e400", path: E, body: ev(`{"id":"ev-h","type":"ema","time":"` + okTime + `","data":{"stress":1e400}}`), status: 422, field: "events[0].data.stress"},
		{name: "stress 400 digits", path: E, body: ev(`{"id":"ev-h","type":"ema","time":"` + okTime + `","data":{"stress":` + strings.Repeat("9", 400) + `}}`), status: 422, field: "events[0].data.stress"},
		{name: "rating 1e309", path: E, body: ev(`{"id":"ev-h","type":"engagement","time":"` + okTime + `","data":{"decision_id":"01KAAAAAAAAAAAAAAAAAAAAAAA","status":"rated","rating":1e309}}`), status: 422, field: "events[0].data"},
		{name: "snooze_minutes 2^64", path: E, body: ev(`{"id":"ev-h","type":"preference","time":"` + okTime + `","data":{"snooze_minutes":18446744073709551616}}`), status: 422, field: "events[0].data"},
		{name: "limit 2^64", method: "GET", path: "/v1/studies/" + study + "/decisions?limit=18446744073709551616", status: 422, field: "limit"},
		{name: "limit negative", method: "GET", path: "/v1/studies/" + study + "/decisions?limit=-1", status: 422, field: "limit"},

		// Unicode and odd ids.
		{name: "id with umlaut", path: P, body: `{"participant_id":"p-ü"}`, status: 422, field: "participant_id"},
		{name: "id with NUL", path: P, body: `{"participant_id":"p-\u0000"}`, status: 422, field: "participant_id"},
		{name: "id with right-to-left override", path: P, body: raw(`{"participant_id":"p-` + "\u202e" + `1"}`), status: 422, field: "participant_id"},
		{name: "id with zero-width space", path: P, body: raw(`{"participant_id":"p-` + "\u200b" + `1"}`), status: 422, field: "participant_id"},
		{name: "id of 129 characters", path: P, body: raw(`{"participant_id":"` + strings.Repeat("p", 129) + `"}`), status: 422, field: "participant_id"},
		{name: "id with markup", path: P, body: `{"participant_id":"<script>alert(1)</script>"}`, status: 422, field: "participant_id"},
		{name: "id invalid UTF-8", path: P, body: raw("{\"participant_id\":\"p-\xff\xfe\"}"), status: 422, field: "participant_id"},
		{name: "decision point with accent", path: D, body: raw(`{"decision_point":"évening","time":"` + okTime + `"}`), status: 422, field: "decision_point"},
		{name: "ema variable with accent", path: E, body: ev(`{"id":"ev-u","type":"ema","time":"` + okTime + `","data":{"stréss":5}}`), status: 422, field: "events[0].data.stréss"},
		{name: "event id emoji", path: E, body: ev(`{"id":"ev-😀","type":"ema","time":"` + okTime + `","data":{"stress":5}}`), status: 422, field: "events[0].id"},
		{name: "unknown study with unicode", method: "GET", path: "/v1/studies/%C3%A9tude/decisions", status: 404, field: "study"},

		// Unknown fields.
		{name: "patch unknown field", method: "PATCH", path: P + "/" + p, body: `{"timezone":"Europe/Paris","name":"Alice"}`, status: 400, field: "name"},
		{name: "device unknown field", method: "PUT", path: P + "/" + p + "/devices/d1", body: `{"platform":"fcm","token":"t","phone":"+44"}`, status: 400, field: "phone"},
		{name: "event data field in the wrong place", path: E, body: ev(`{"id":"ev-f","type":"ema","time":"` + okTime + `","stress":5}`), status: 400, field: "events[0].stress"},

		// Paths: traversal and non-canonical forms.
		{name: "dot-dot in path", method: "GET", path: "/v1/studies/../../etc/passwd", status: 400, field: "path"},
		{name: "encoded dot-dot", method: "GET", path: "/v1/studies/%2e%2e/%2e%2e/etc/passwd", status: 400, field: "path"},
		{name: "encoded slash traversal", method: "GET", path: P + "/..%2F..%2F..%2Fetc", status: 400, field: "path"},
		{name: "double slash", method: "GET", path: "//v1/studies", status: 400, field: "path"},
		{name: "dot segment", method: "GET", path: "/v1/studies/./" + study, status: 400, field: "path"},
		{name: "trailing slash", method: "GET", path: "/v1/studies/", status: 404},
		{name: "no such route", method: "GET", path: "/v2/studies", status: 404},
		{name: "unknown participant in path", method: "GET", path: P + "/p-nobody-here", status: 404, field: "participant"},

		// Bad query strings.
		{name: "bad escape in since", method: "GET", path: "/v1/studies/" + study + "/decisions?since=%zz", status: 400, field: "since"},
		{name: "bad escape in limit", method: "GET", path: "/v1/studies/" + study + "/decisions?limit=1%G0", status: 400, field: "limit"},
		{name: "bad escape in a name", method: "GET", path: "/v1/studies/" + study + "/decisions?%zz=1", status: 400, field: "%zz"},
		{name: "semicolon separator", method: "GET", path: "/v1/studies/" + study + "/decisions?limit=1;since=x", status: 400, field: "limit=1;since=x"},

		// Wrong methods.
		{name: "PUT studies", method: "PUT", path: "/v1/studies", body: `{}`, status: 405, field: "method"},
		{name: "DELETE decisions list", method: "DELETE", path: "/v1/studies/" + study + "/decisions", status: 405, field: "method"},
		{name: "GET events", method: "GET", path: E, status: 405, field: "method"},
		{name: "GET participants", method: "GET", path: P, status: 405, field: "method"},
		{name: "PATCH healthz", method: "PATCH", path: "/healthz", body: `{}`, status: 405, field: "method"},
		{name: "POST metrics", method: "POST", path: "/metrics", body: `{}`, status: 405, field: "method"},
		{name: "PUT decision", method: "PUT", path: D, body: `{}`, status: 405, field: "method"},

		// Authentication and authorisation.
		{name: "no token", method: "GET", path: "/v1/studies", header: map[string]string{"Authorization": ""}, status: 401, field: "Authorization"},
		{name: "basic auth", method: "GET", path: "/v1/studies", header: map[string]string{"Authorization": "Basic YWRtaW46YWRtaW4="}, status: 401, field: "Authorization"},
		{name: "unknown token", method: "GET", path: "/v1/studies", header: map[string]string{"Authorization": "Bearer jitai_notarealtoken"}, status: 401, field: "Authorization"},
		{name: "empty bearer", method: "GET", path: "/v1/studies", header: map[string]string{"Authorization": "Bearer "}, status: 401, field: "Authorization"},
		{name: "token of 8 KiB", method: "GET", path: "/v1/studies", header: map[string]string{"Authorization": "Bearer jitai_" + strings.Repeat("A", 8<<10)}, status: 401, field: "Authorization"},
		{name: "no token on unknown route", method: "GET", path: "/v1/secret", header: map[string]string{"Authorization": ""}, status: 401, field: "Authorization"},
		{name: "app token exports", method: "GET", path: "/v1/studies/" + study + "/export", header: map[string]string{"Authorization": "Bearer " + e.tokens["app"]}, status: 403},
		{name: "app token other study", path: decisionsPath(moodMOST, p), body: `{}`, header: map[string]string{"Authorization": "Bearer " + e.tokens["app"]}, status: 403, field: "study"},
		{name: "app token erases", method: "DELETE", path: P + "/" + p, header: map[string]string{"Authorization": "Bearer " + e.tokens["app"]}, status: 403},
		{name: "bound analyst on metrics", method: "GET", path: "/metrics", header: map[string]string{"Authorization": "Bearer " + e.tokens["analyst"]}, status: 403, field: "Authorization"},

		// Sizes.
		{name: "chunked body over 1 MiB", wire: "POST " + E + " HTTP/1.1\r\nHost: jitai\r\n" + bearer + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 2<<20, strings.Repeat(" ", 2<<20)), status: 413},
		{name: "Expect 100-continue with 10 MB", wire: "POST " + E + " HTTP/1.1\r\nHost: jitai\r\n" + bearer + "Content-Type: application/json\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n", status: 413, field: "Content-Length"},
		{name: "declared 1 MiB and a byte", wire: "POST " + D + " HTTP/1.1\r\nHost: jitai\r\n" + bearer + "Content-Type: application/json\r\nContent-Length: 1048577\r\n\r\n{", status: 413, field: "Content-Length"},
		{name: "slow body", slow: true, wire: "POST " + E + " HTTP/1.1\r\nHost: jitai\r\n" + bearer + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"events\":", status: 408},
		{name: "header of 2 MB", wire: get("/healthz", "X-Flood: "+strings.Repeat("a", 2<<20)+"\r\n"), status: 431, field: "headers"},
		{name: "10000 headers", wire: get("/healthz", strings.Repeat("X-Many: a\r\n", 10000)), status: 431, field: "headers"},

		// Malformed HTTP, answered by net/http itself (see api.ProblemListener).
		{name: "bad escape in path", wire: get("/v1/studies/%zz"), status: 400},
		{name: "garbage request line", wire: "GARBAGE\r\n\r\n", status: 400},
		{name: "space in target", wire: "GET /v1/studies x HTTP/1.1\r\nHost: jitai\r\n\r\n", status: 400},
		{name: "header without colon", wire: get("/healthz", "NoColonHere\r\n"), status: 400},
		{name: "no Host header", wire: "GET /healthz HTTP/1.1\r\n\r\n", status: 400},
		{name: "two Content-Lengths", wire: withBody("POST", D, "application/json", "{}", "Content-Length: 5\r\n"), status: 400},
		{name: "negative Content-Length", wire: "POST " + D + " HTTP/1.1\r\nHost: jitai\r\nContent-Length: -1\r\n\r\n", status: 400},
		{name: "gzip transfer encoding", wire: "POST " + D + " HTTP/1.1\r\nHost: jitai\r\nTransfer-Encoding: gzip\r\n\r\n", status: 501, field: "Transfer-Encoding"},
		{name: "HTTP/9.9", wire: "GET /healthz HTTP/9.9\r\nHost: jitai\r\n\r\n", status: 505},
		{name: "form body raw", wire: withBody("POST", P, "application/x-www-form-urlencoded", "participant_id=p-x", bearer), status: 415, field: "Content-Type"},
	}
}

// wire sends raw bytes on a new connection and reads one response. The
// request is written while the answer is read, since the server may answer
// (and close) before reading all of it; the connection's deadline only
// turns a hung server into a failure.
func (e *env) wire(t testing.TB, raw string) response {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	go func() { _, _ = io.WriteString(c, raw) }()
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// withStore runs the env on the named store: "sqlite" (the default) or
// "redis" (see redisURL).
func withStore(name string) envOption {
	return func(c *envConfig) {
		if name != "redis" {
			return
		}
		c.open = func(t testing.TB, log *zap.Logger) trial.Store {
			url := redisURL(t)
			prefix := fmt.Sprintf("jitai-apitest-%d-%d:", os.Getpid(), time.Now().UnixNano())
			st, err := redisstore.Open(context.Background(), url, redisstore.Options{KeyPrefix: prefix}, log)
			if err != nil {
				t.Fatalf("opening the Redis store at %s: %v", url, err)
			}
			t.Cleanup(func() { deleteRedisKeys(t, url, prefix) })
			return st
		}
	}
}

// withRequestTimeout sets the server's request timeout.
func withRequestTimeout(d time.Duration) envOption {
	return func(c *envConfig) { c.requestTimeout = d }
}

// withTokens turns token authentication on (setTokens).
func withTokens(c *envConfig) { c.tokens = true }

// setTokens makes an admin, an app and an analyst token (the latter two
// bound to stress-mrt) and turns authentication on; it returns the
// plaintext tokens by name.
func setTokens(t testing.TB, a *api.Server) map[string]string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tokens.json")
	toks := map[string]string{}
	for name, role := range map[string]auth.Role{"admin": auth.RoleAdmin, "app": auth.RoleApp, "analyst": auth.RoleAnalyst} {
		var studies []string
		if role != auth.RoleAdmin {
			studies = []string{stressMRT}
		}
		plain, _, err := auth.Create(file, name, role, studies, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		toks[name] = plain
	}
	v, err := auth.NewVerifier(file)
	if err != nil {
		t.Fatal(err)
	}
	a.SetAuth(api.AuthOptions{Tokens: v})
	return toks
}

// redisURL is the Redis the tests use: JITAI_TEST_REDIS_URL, else a server
// on the default local port if one answers, else a private redis-server on
// a Unix socket, stopped when t ends. Without redis-server the test fails
// under CI and is skipped elsewhere.
func redisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("JITAI_TEST_REDIS_URL"); u != "" {
		return u
	}
	const local = "redis://127.0.0.1:6379/0"
	if redisAnswers(local, 2*time.Second) {
		return local
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not found on PATH (CI is set, so this fails instead of skipping)")
		}
		t.Skip("redis-server not found on PATH and no Redis at " + local)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "unix://" + sock
	if !redisAnswers(url, time.Minute) {
		t.Fatalf("redis-server on %s does not answer", sock)
	}
	return url
}

// redisAnswers says whether the server at url answers PING within wait
// (go-redis retries the dial until then).
func redisAnswers(url string, wait time.Duration) bool {
	o, err := redis.ParseURL(url)
	if err != nil {
		return false
	}
	o.MaxRetries, o.MinRetryBackoff, o.MaxRetryBackoff = 1000, 10*time.Millisecond, 100*time.Millisecond
	c := redis.NewClient(o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

// deleteRedisKeys deletes the keys under prefix.
func deleteRedisKeys(t testing.TB, url, prefix string) {
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Errorf("cleaning up Redis keys: %v", err)
		return
	}
	c := redis.NewClient(o)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("cleaning up Redis keys: %v", err)
	}
}
