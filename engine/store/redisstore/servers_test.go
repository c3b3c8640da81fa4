package redisstore

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The tests run against real Redis servers: the one JITAI_TEST_REDIS_URL
// names (default redis://127.0.0.1:6379/0, else a private redis-server),
// and private servers and a three-master cluster they start on loopback
// ports. Without them the tests fail when CI is set and skip otherwise.

// missing fails the test under CI and skips it elsewhere.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this fails instead of skipping; install redis-server and redis-cli)", msg)
	}
	t.Skipf("%s; skipping (it fails when CI is set)", msg)
}

// findBinary finds a Redis binary or calls missing.
func findBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not found on PATH", name)
	}
	return p
}

// uniquePrefix returns a key prefix no other test uses.
func uniquePrefix(name string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "jitaitest:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

// freePort returns a loopback port that is free, as is port+10000 (the
// cluster bus port).
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port > 55000 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free port pair found")
	return 0
}

// server is a private redis-server on a loopback port, without persistence.
type server struct {
	t     testing.TB
	bin   string
	port  int
	dir   string
	extra []string
	cmd   *exec.Cmd
	done  chan struct{}
}

// startServer starts a private redis-server that is killed when t ends.
// extra returns more arguments given the server's port and directory. A
// server that exits during start-up (another test took its port between
// freePort and the server's bind) is started again on another port.
func startServer(t testing.TB, extra func(port int, dir string) []string) *server {
	t.Helper()
	s := &server{t: t, bin: findBinary(t, "redis-server"), dir: t.TempDir()}
	t.Cleanup(s.stop) // registered first, so a failed start is cleaned up too
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		if extra != nil {
			s.extra = extra(s.port, s.dir)
		}
		err := s.tryStart()
		if err == nil {
			return s
		}
		if !errors.Is(err, errExited) || attempt == 3 {
			t.Fatal(err)
		}
	}
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start (re)starts the server on its port and waits until it answers.
func (s *server) start() {
	s.t.Helper()
	if err := s.tryStart(); err != nil {
		s.t.Fatal(err)
	}
}

// errExited is the error of a server that exited during start-up.
var errExited = errors.New("exited during start-up")

// tryStart starts the server on its port and waits until it answers.
func (s *server) tryStart() error {
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"),
	}
	if len(s.extra) > 0 && !strings.HasPrefix(s.extra[0], "--") {
		// A config file must be the first argument.
		args = append([]string{s.extra[0]}, append(args, s.extra[1:]...)...)
	} else {
		args = append(args, s.extra...)
	}
	s.cmd = exec.Command(s.bin, args...)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return fmt.Errorf("starting redis-server: %w", err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { _ = s.cmd.Wait(); close(done) }()
	if err := waitAnswers(s.addr(), done); err != nil {
		s.stop()
		return err
	}
	return nil
}

// stop kills the server (SIGKILL: as abrupt as a crash) and waits for it.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// waitAnswers waits until a server answers PING (or NOAUTH), for up to a
// minute (a loaded machine starts processes slowly); it fails wrapping
// errExited if the process exits.
func waitAnswers(addr string, exited <-chan struct{}) error {
	const limit = time.Minute
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s: %w", addr, errExited)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer within %s", addr, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// singleURL returns the URL of a single Redis server for the tests: the one
// JITAI_TEST_REDIS_URL names, else the one on 127.0.0.1:6379 if it answers,
// else a private one.
func singleURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("JITAI_TEST_REDIS_URL"); u != "" {
		return u
	}
	const local = "redis://127.0.0.1:6379/0"
	o, _ := redis.ParseURL(local)
	o.DialTimeout, o.MaxRetries = 5*time.Second, -1
	c := redis.NewClient(o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.Ping(ctx).Err() == nil {
		return local
	}
	s := startServer(t, nil)
	return "redis://" + s.addr() + "/0"
}

// cluster is a three-master Redis Cluster on loopback ports.
type cluster struct {
	nodes []*server
}

// startCluster starts three cluster-enabled servers, joins them with
// redis-cli --cluster create and waits for cluster_state:ok. The servers
// are killed when t ends. A master that goes down leaves the others
// serving their slots (cluster-require-full-coverage no), however long
// after the failure a test looks.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	cli := findBinary(t, "redis-cli")
	c := &cluster{}
	var addrs []string
	for range 3 {
		n := startServer(t, func(port int, dir string) []string {
			return []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", port)), "--cluster-node-timeout", "5000", "--cluster-require-full-coverage", "no"}
		})
		c.nodes = append(c.nodes, n)
		addrs = append(addrs, n.addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(time.Minute)
	for _, a := range addrs {
		nc := nodeClient(a)
		for {
			info, err := nc.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_assigned:16384") {
				break
			}
			if time.Now().After(deadline) {
				nc.Close()
				t.Fatalf("cluster node %s not ok after a minute: %v\n%s", a, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		nc.Close()
	}
	return c
}

// nodeClient is a throwaway client for one node.
func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 10 * time.Second})
}

func (c *cluster) url() string {
	var addrs []string
	for _, n := range c.nodes {
		addrs = append(addrs, n.addr())
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// deleteKeys removes every key starting with prefix, on every master.
func deleteKeys(t testing.TB, rawURL, prefix string) {
	t.Helper()
	rdb, _, err := newClient(rawURL, Options{})
	if err != nil {
		t.Errorf("cleaning up: %v", err)
		return
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Unlink(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *redis.Client:
		err = del(ctx, c)
	}
	if err != nil {
		t.Errorf("cleaning up keys %s*: %v", prefix, err)
	}
}
