package api

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

// recordConn is a net.Conn that keeps what is written to it.
type recordConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordConn) Write(b []byte) (int, error) { return c.buf.Write(b) }

// TestProblemConnRewritesOnlyGoErrors: the answers net/http writes itself
// become problems with the same status; a handler's response, even a
// text/plain one that closes the connection, passes byte for byte.
func TestProblemConnRewritesOnlyGoErrors(t *testing.T) {
	for _, c := range []struct {
		in      string
		rewrite bool
		status  string
	}{
		{"HTTP/1.1 431 Request Header Fields Too Large" + goErrorHeaders + "431 Request Header Fields Too Large", true, "431"},
		{"HTTP/1.1 400 Bad Request: malformed HTTP request \"GARBAGE\"" + goErrorHeaders + "400 Bad Request: malformed HTTP request \"GARBAGE\"", true, "400"},
		{"HTTP/1.1 400 Bad Request: malformed HTTP request \"" + strings.Repeat("G", 60000) + "\"" + goErrorHeaders + "400 Bad Request: malformed HTTP request \"" + strings.Repeat("G", 60000) + "\"", true, "400"},
		{"HTTP/1.1 501 Not Implemented" + goErrorHeaders + "Unsupported transfer encoding", true, "501"},
		{"HTTP/1.1 200 OK\r\nDate: Tue, 08 Dec 2026 01:00:00 GMT\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nok", false, ""},
		{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}", false, ""},
		{"{\"a\":1}", false, ""},
	} {
		rc := &recordConn{}
		pc := &problemConn{Conn: rc}
		n, err := pc.Write([]byte(c.in))
		if err != nil || n != len(c.in) {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(c.in))
		}
		out := rc.buf.String()
		if !c.rewrite {
			if out != c.in {
				t.Errorf("a handler's bytes were changed:\n%q\nbecame\n%q", c.in, out)
			}
			continue
		}
		if !strings.HasPrefix(out, "HTTP/1.1 "+c.status+" ") || !strings.Contains(out, "\r\nContent-Type: application/problem+json\r\n") ||
			!strings.Contains(out, `"status":`+c.status) {
			t.Errorf("%.200q was rewritten as\n%.400q\nwant a %s problem+json", c.in, out, c.status)
		}
		if len(out) > 1000 {
			t.Errorf("the problem is %d bytes: it echoes the request", len(out))
		}
	}
}
