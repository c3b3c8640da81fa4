package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// ProblemListener wraps a plain-TCP listener so that the few answers
// net/http writes itself, before any handler runs, are problem+json like
// every other error of the API: a malformed request line or header, a bad
// %-escape in the path (400), a header block over MaxHeaderBytes (431), an
// unsupported Transfer-Encoding (501) or HTTP version (505). net/http
// writes each of them with one Write straight to the connection, with a
// fixed text/plain header block right after the status line, which a
// handler's response never has (net/http starts those with Date or
// Content-Length, and the API always sets a JSON Content-Type); the wrapper
// recognises that shape and writes the problem instead. Everything else
// passes unchanged.
//
// It cannot help under TLS: net/http then writes into the TLS connection,
// below which only ciphertext passes, and above it the server would no
// longer see a *tls.Conn. With TLS those answers stay text/plain. Errors
// net/http handles without answering (a connection closed mid-request)
// have nothing to shape.
func ProblemListener(ln net.Listener) net.Listener { return problemListener{ln} }

type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &problemConn{Conn: c}, nil
}

// problemConn is a server connection whose net/http-made error answers
// are rewritten as problems.
type problemConn struct{ net.Conn }

// maxEcho bounds how much of net/http's text (which may quote the
// client's request line) goes into the problem's detail.
const maxEcho = 200

// goErrorHeaders is the header block of the answers net/http makes itself
// (net/http/server.go, conn.serve).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *problemConn) Write(b []byte) (int, error) {
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 ")) {
		return c.Conn.Write(b)
	}
	// The header block follows the status line at once: a handler's
	// response has a Date or Content-Length first.
	i := bytes.Index(b, []byte(goErrorHeaders))
	if i < len("HTTP/1.1 000") || bytes.Contains(b[:i], []byte("\r\n")) {
		return c.Conn.Write(b)
	}
	status, err := strconv.Atoi(string(b[len("HTTP/1.1 "):len("HTTP/1.1 000")]))
	if err != nil {
		return c.Conn.Write(b)
	}
	text := string(b[i+len(goErrorHeaders):])
	if len(text) > maxEcho {
		text = strings.ToValidUTF8(text[:maxEcho], "") + "..." // it may quote the request line
	}
	if _, err := c.Conn.Write(transportProblem(status, text)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite half-closes the connection when the underlying one can, as
// net/http does after a 431 so that the client reads the answer.
func (c *problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// transportProblem is the whole HTTP response for an answer net/http made
// itself, with text (its plain-text body) as the detail.
func transportProblem(status int, text string) []byte {
	var p *Problem
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		p = problem(status, "headers-too-large", "Request headers too large",
			fmt.Sprintf("the request line and headers are over %d bytes", MaxHeaderBytes), "headers")
	case http.StatusNotImplemented:
		p = problem(status, "unsupported-transfer-encoding", "Unsupported transfer encoding",
			"send the body with Content-Length or Transfer-Encoding: chunked", "Transfer-Encoding")
	case http.StatusHTTPVersionNotSupported:
		p = problem(status, "unsupported-http-version", "HTTP version not supported", "use HTTP/1.1 or HTTP/2", "")
	default:
		p = problem(status, "malformed-request", "Malformed request",
			"the request line or a header is not valid HTTP (a bad %-escape in the path, a space in the target, a header without a colon...): "+text, "")
	}
	body, _ := json.Marshal(p)
	body = append(body, '\n')
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/problem+json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		status, http.StatusText(status), len(body))
	return append([]byte(head), body...)
}
