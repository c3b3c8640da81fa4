package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis tests start private redis-server processes on free loopback
// ports and kill them when the test ends. Without redis-server they fail
// when CI is set and skip otherwise.

// redisBinary returns the path of redis-server, failing under CI and
// skipping elsewhere when it is missing.
func redisBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found on PATH (CI is set, so this fails instead of skipping; install redis-server)")
		}
		t.Skip("redis-server not found on PATH; skipping (it fails when CI is set)")
	}
	return p
}

// redisProc is a private redis-server on a loopback port.
type redisProc struct {
	t       *testing.T
	bin     string
	port    int
	dir     string
	durable bool // AOF with fsync on every write
	cmd     *exec.Cmd
	done    chan struct{}
}

// startRedis starts a private redis-server, killed when t ends. durable
// turns on the append-only file with appendfsync always, so that a restart
// over the same directory keeps every acknowledged write.
func startRedis(t *testing.T, durable bool) *redisProc {
	t.Helper()
	r := &redisProc{t: t, bin: redisBinary(t), port: freeLoopbackPort(t), dir: t.TempDir(), durable: durable}
	t.Cleanup(func() { r.stop(syscall.SIGKILL) })
	r.start()
	return r
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }
func (r *redisProc) url() string  { return "redis://" + r.addr() + "/0" }

// start (re)starts the server on its port and directory and waits until it
// answers PING (after loading its data).
func (r *redisProc) start() {
	r.t.Helper()
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--dir", r.dir,
		"--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log"), "--maxmemory-policy", "noeviction"}
	if r.durable {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		r.cmd = exec.Command(r.bin, args...)
		if err = r.cmd.Start(); err != nil {
			r.t.Fatalf("starting redis-server: %v", err)
		}
		done := make(chan struct{})
		r.done = done
		go func() { _ = r.cmd.Wait(); close(done) }()
		if err = waitRedis(r.addr(), done, 10*time.Second); err == nil {
			return
		}
		_ = r.cmd.Process.Kill()
		<-done
		r.cmd = nil
		// The port may still be held by the previous process' sockets in
		// TIME_WAIT or by a listener that has not gone yet: try again.
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	r.t.Fatalf("redis-server on %s: %v\n%s", r.addr(), err, tail(string(log), 2000))
}

// stop ends the server with sig (SIGTERM: a clean shutdown; SIGKILL: a
// crash) and waits until it has exited.
func (r *redisProc) stop(sig syscall.Signal) {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(sig)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// waitRedis waits until addr answers PING with PONG.
func waitRedis(addr string, exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited during start-up")
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client returns a go-redis client for direct checks, closed when t ends.
func (r *redisProc) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1, DialTimeout: time.Second})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

// startRedisEngine starts `jitai serve --store redis` on the private Redis.
func startRedisEngine(t *testing.T, r *redisProc, extra ...string) *server {
	t.Helper()
	args := append([]string{"--store", "redis", "--redis-url", r.url()}, extra...)
	return startServer(t, t.TempDir(), args...)
}

// participantKey is the Redis key prefix of one participant's keys in the
// store's layout (default key prefix; the ids used here need no escaping).
func participantKey(participant string) string {
	return "jitai:{" + study + ":" + participant + "}"
}

// readyStatus asks /readyz once.
func readyStatus(ctx context.Context, base string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return 0
	}
	res, err := readyClient.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

var readyClient = &http.Client{Timeout: 3 * time.Second}
