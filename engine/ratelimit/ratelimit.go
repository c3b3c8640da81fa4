// Package ratelimit limits request rates per key with GCRA (the generic
// cell rate algorithm), in process or in Redis through redis_rate: both
// give the same answers for the same limit, so a server behaves the same on
// either store.
package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limit is Rate events per Period with bursts of up to Burst.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// PerSecond is rate events a second with the given burst.
func PerSecond(rate, burst int) Limit { return Limit{Rate: rate, Burst: burst, Period: time.Second} }

// IsZero reports whether no limit is set.
func (l Limit) IsZero() bool { return l == Limit{} }

// Result is the outcome of one check.
type Result struct {
	Limit Limit
	// Allowed is how many of the requested events may happen now (0 or n).
	Allowed int
	// Remaining is how many more events could be allowed right now.
	Remaining int
	// RetryAfter is how long until the next event is allowed (-1 if allowed).
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to its initial state.
	ResetAfter time.Duration
}

// Limiter checks and consumes events against a limit per key.
type Limiter interface {
	AllowN(ctx context.Context, key string, limit Limit, n int) (*Result, error)
}

// Memory is an in-process Limiter. It is safe for concurrent use.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [64]shard
}

type shard struct {
	mu    sync.Mutex
	tat   map[string]time.Time // theoretical arrival time per key
	calls int
}

// NewMemory returns an in-process limiter; now is the clock (time.Now if nil).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	m := &Memory{now: now, seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].tat = map[string]time.Time{}
	}
	return m
}

// AllowN consumes n events for key if the limit allows all of them now.
func (m *Memory) AllowN(_ context.Context, key string, l Limit, n int) (*Result, error) {
	sh := &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
	now := m.now()
	emission := l.Period / time.Duration(l.Rate)
	increment := emission * time.Duration(n)
	burstOffset := emission * time.Duration(l.Burst)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.calls++
	if sh.calls%4096 == 0 { // forget keys that are back to their initial state
		for k, t := range sh.tat {
			if !t.After(now) {
				delete(sh.tat, k)
			}
		}
	}
	tat, ok := sh.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	newTat := tat.Add(increment)
	allowAt := newTat.Add(-burstOffset)
	diff := now.Sub(allowAt)
	if diff < 0 {
		return &Result{Limit: l, Allowed: 0, Remaining: 0, RetryAfter: -diff, ResetAfter: tat.Sub(now)}, nil
	}
	sh.tat[key] = newTat
	return &Result{Limit: l, Allowed: n, Remaining: int(math.Floor(float64(diff) / float64(emission))), RetryAfter: -1, ResetAfter: newTat.Sub(now)}, nil
}

// Redis is a Limiter shared by every engine on one Redis (or Redis Cluster).
type Redis struct {
	l *redis_rate.Limiter
}

// NewRedis returns a limiter on the given client.
func NewRedis(rdb redis.UniversalClient) *Redis { return &Redis{l: redis_rate.NewLimiter(rdb)} }

// AllowN consumes n events for key if the limit allows all of them now.
func (r *Redis) AllowN(ctx context.Context, key string, l Limit, n int) (*Result, error) {
	res, err := r.l.AllowN(ctx, key, redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: l.Period}, n)
	if err != nil {
		return nil, err
	}
	return &Result{Limit: l, Allowed: res.Allowed, Remaining: res.Remaining, RetryAfter: res.RetryAfter, ResetAfter: res.ResetAfter}, nil
}
