package ratelimit

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestMemoryGCRA(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	m := NewMemory(c.now)
	ctx := context.Background()
	l := Limit{Rate: 10, Burst: 5, Period: time.Second} // one every 100ms, bursts of 5
	for i := 0; i < 5; i++ {
		r, _ := m.AllowN(ctx, "k", l, 1)
		if r.Allowed != 1 || r.Remaining != 4-i {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	r, _ := m.AllowN(ctx, "k", l, 1)
	if r.Allowed != 0 || r.RetryAfter != 100*time.Millisecond {
		t.Fatalf("over the burst: %+v", r)
	}
	if r2, _ := m.AllowN(ctx, "other", l, 1); r2.Allowed != 1 {
		t.Fatal("keys are not independent")
	}
	c.add(100 * time.Millisecond)
	if r, _ := m.AllowN(ctx, "k", l, 1); r.Allowed != 1 || r.Remaining != 0 {
		t.Fatalf("after one emission interval: %+v", r)
	}
	c.add(time.Second)
	if r, _ := m.AllowN(ctx, "k", l, 1); r.Allowed != 1 || r.Remaining != 4 {
		t.Fatalf("after a full reset: %+v", r)
	}
}

// The in-process and Redis limiters agree on the same sequence of calls.
func TestMemoryMatchesRedisRate(t *testing.T) {
	addr := os.Getenv("JITAI_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s is required in CI: %v", addr, err)
		}
		t.Skipf("no Redis at %s: %v", addr, err)
	}
	rl := NewRedis(rdb)
	mem := NewMemory(nil)
	key := fmt.Sprintf("jitai-test:ratelimit:%d", time.Now().UnixNano())
	defer rdb.Del(ctx, "rate:"+key)
	l := Limit{Rate: 5, Burst: 3, Period: time.Minute} // slow enough that test time does not matter
	for i := 0; i < 6; i++ {
		a, err := rl.AllowN(ctx, key, l, 1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := mem.AllowN(ctx, key, l, 1)
		if a.Allowed != b.Allowed || a.Remaining != b.Remaining {
			t.Fatalf("call %d: redis %+v, memory %+v", i, a, b)
		}
	}
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := NewMemory(nil)
	l := PerSecond(1000000, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_, _ = m.AllowN(ctx, fmt.Sprint(i%100), l, 1)
			i++
		}
	})
}
