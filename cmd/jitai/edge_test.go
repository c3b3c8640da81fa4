package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeEdge: the jitai binary answers what net/http reads itself (a
// bad escape in the path, a header flood), an oversized declared body with
// Expect: 100-continue, and a slow body, as problem+json: serve wires the
// API's http.Server and problem listener.
func TestServeEdge(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--request-timeout", "500ms")
	addr := strings.TrimPrefix(srv.base, "http://")
	events := "/v1/studies/stress-mrt/participants/p-1/events"
	for _, c := range []struct {
		name, wire, slug string
		status           int
	}{
		{"bad escape in path", "GET /v1/studies/%zz HTTP/1.1\r\nHost: x\r\n\r\n", "malformed-request", 400},
		{"header of 2 MB", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", "headers-too-large", 431},
		{"Expect 100-continue with 10 MB", "POST " + events + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n", "body-too-large", 413},
		{"slow body", "POST " + events + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n{\"events\":", "body-timeout", 408},
		{"duplicate key", "POST " + events + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n{\"events\":[],\"events\":[]}", "duplicate-key", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(time.Minute)) // a hung server fails instead of hanging
			go func() { _, _ = io.WriteString(conn, c.wire) }()
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var p struct {
				Type   string `json:"type"`
				Status int    `json:"status"`
				Detail string `json:"detail"`
			}
			if res.StatusCode != c.status || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s, want %d application/problem+json", res.StatusCode, res.Header.Get("Content-Type"), c.status)
			}
			if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
				t.Fatalf("the body is not a problem: %v", err)
			}
			if p.Type != "urn:jitai:problem:"+c.slug || p.Status != c.status || p.Detail == "" {
				t.Errorf("problem %+v, want %s with status %d and a detail", p, c.slug, c.status)
			}
		})
	}
}
