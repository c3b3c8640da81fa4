package memstore

import (
	"container/heap"
	"time"
)

// queue is a min-heap of keys by time with lookup by key: the trial
// clock's schedule and the outbox. Its methods need the caller's lock.
type queue[K comparable] struct {
	h   qheap[K]
	pos map[K]*qitem[K]
}

type qitem[K comparable] struct {
	k  K
	at time.Time
	i  int
}

func newQueue[K comparable]() queue[K] { return queue[K]{pos: map[K]*qitem[K]{}} }

// set inserts k at at or moves it there.
func (q *queue[K]) set(k K, at time.Time) {
	if it := q.pos[k]; it != nil {
		it.at = at
		heap.Fix(&q.h, it.i)
		return
	}
	it := &qitem[K]{k: k, at: at}
	q.pos[k] = it
	heap.Push(&q.h, it)
}

// has reports whether k is queued.
func (q *queue[K]) has(k K) bool { return q.pos[k] != nil }

// remove takes k out of the queue, if it is in.
func (q *queue[K]) remove(k K) {
	if it := q.pos[k]; it != nil {
		heap.Remove(&q.h, it.i)
		delete(q.pos, k)
	}
}

// first returns the earliest key and its time.
func (q *queue[K]) first() (K, time.Time, bool) {
	if len(q.h) == 0 {
		var zero K
		return zero, time.Time{}, false
	}
	return q.h[0].k, q.h[0].at, true
}

type qheap[K comparable] []*qitem[K]

func (h qheap[K]) Len() int           { return len(h) }
func (h qheap[K]) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h qheap[K]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].i, h[j].i = i, j
}
func (h *qheap[K]) Push(x any) {
	it := x.(*qitem[K])
	it.i = len(*h)
	*h = append(*h, it)
}
func (h *qheap[K]) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
