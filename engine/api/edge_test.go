package api_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDuplicateKeyPaths: a member given twice is refused wherever it is,
// named by its path through objects and arrays; the same name in different
// objects, or as a value, is not a duplicate.
func TestDuplicateKeyPaths(t *testing.T) {
	e := newEnv(t, quietLogs)
	E := eventsPath(stressMRT, "p-dup")
	okTime := rfc(at(0, 8, 0))
	ema := func(id, data string) string {
		return `{"id":"` + id + `","type":"ema","time":"` + okTime + `","data":` + data + `}`
	}
	for _, c := range []struct{ body, field string }{
		{`{"events":[` + ema("e1", `{"stress":1}`) + `,` + ema("e2", `{"stress":1}`) + `,` + ema("e3", `{"mood":1,"sleep":2,"mood":3}`) + `]}`, "events[2].data.mood"},
		{`{"events":[` + ema("e1", `{"stress":1}`) + `],"events":[]}`, "events"},
		{`{"events":[[{"a":1}],[{"a":1,"a":2}]]}`, "events[1][0].a"},
		{`{"events":[{"id":"e1","id":"e1"}]}`, "events[0].id"},
		{`{"events":[` + ema("e1", `{"st\u0072ess":1,"stress":2}`) + `]}`, "events[0].data.stress"},
	} {
		r := e.do(req{Method: "POST", Path: E, Body: raw(c.body)})
		p := checkProblem(t, r, http.StatusBadRequest, c.field)
		if p.Type != "urn:jitai:problem:duplicate-key" {
			t.Errorf("%s: problem %+v, want duplicate-key", c.body, p)
		}
	}
	// Not duplicates: the same name in sibling objects, and as a value.
	e.enrol(stressMRT, "p-dup")
	r := e.do(req{Method: "POST", Path: E, Body: raw(`{"events":[` + ema("e1", `{"stress":1}`) + `,` + ema("e2", `{"stress":2}`) + `]}`)})
	r.expect(t, http.StatusAccepted)
	r = e.do(req{Method: "POST", Path: participantsPath(stressMRT), Body: raw(`{"participant_id":"participant_id"}`)})
	r.expect(t, http.StatusCreated)
}

// TestMethodNotAllowedSaysAllow: a route's path with another method is 405
// listing the methods it has.
func TestMethodNotAllowedSaysAllow(t *testing.T) {
	e := newEnv(t, quietLogs)
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/v1/studies", "GET"},
		{"POST", participantsPath(stressMRT) + "/p-1", "GET, PATCH, DELETE"},
		{"GET", eventsPath(stressMRT, "p-1"), "POST"},
	} {
		r := e.do(req{Method: c.method, Path: c.path})
		checkProblem(t, r, http.StatusMethodNotAllowed, "method")
		if got := r.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
}

// TestSlowBodyClosesTheConnection: a body that does not arrive within the
// request timeout is answered 408 and the connection is closed, not kept
// for the rest of the body.
func TestSlowBodyClosesTheConnection(t *testing.T) {
	slow := newEnv(t, quietLogs, withRequestTimeout(200*time.Millisecond))
	c, err := net.Dial("tcp", strings.TrimPrefix(slow.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute)) // a hung server fails instead of hanging
	if _, err := io.WriteString(c, "POST "+eventsPath(stressMRT, "p-1")+" HTTP/1.1\r\nHost: jitai\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{\"ev"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := checkProblem(t, response{Status: res.StatusCode, Header: res.Header, Body: body}, http.StatusRequestTimeout, "")
	if p.Type != "urn:jitai:problem:body-timeout" {
		t.Errorf("problem %+v, want body-timeout", p)
	}
	if !res.Close {
		t.Error("the 408 does not say Connection: close")
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the 408 the connection gave %d bytes, %v; want it closed (EOF)", n, err)
	}
}
