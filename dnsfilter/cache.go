package dnsfilter

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
)

// cache holds up to max answers and drops the least recently used first.
type cache struct {
	mu  sync.Mutex
	max int
	lru list.List // of *cached, most recently used first
	m   map[key]*list.Element
	gen uint64 // flushes so far
}

type cached struct {
	k key
	e *entry
}

func newCache(max int) *cache {
	return &cache{max: max, m: make(map[key]*list.Element)}
}

// get returns the entry for k, or nil when there is none or it has expired
// at now.
func (c *cache) get(k key, now time.Time) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[k]
	if !ok {
		return nil
	}
	e := el.Value.(*cached).e
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.m, k)
		return nil
	}
	c.lru.MoveToFront(el)
	return e
}

// generation identifies the cache's contents between flushes.
func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores e under k unless it expires at once, or the cache was flushed
// since generation gen: an entry opened before a flush may be lost with
// what the flush stands for.
func (c *cache) put(k key, e *entry, gen uint64) {
	if !e.expires.After(e.stored) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if el, ok := c.m[k]; ok {
		el.Value.(*cached).e = e
		c.lru.MoveToFront(el)
		return
	}
	c.m[k] = c.lru.PushFront(&cached{k, e})
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*cached).k)
	}
}

func (c *cache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Init()
	clear(c.m)
	c.gen++
}

// flights lets concurrent queries for one key share one fetch.
type flights struct {
	mu sync.Mutex
	m  map[key]*flight
}

type flight struct {
	done chan struct{}
	e    *entry
	err  error
}

// do runs fetch for k unless a fetch for k is under way; then it waits for
// that one's result (or for ctx).
func (f *flights) do(ctx context.Context, k key, fetch func() (*entry, error)) (*entry, error) {
	f.mu.Lock()
	if fl, ok := f.m[k]; ok {
		f.mu.Unlock()
		select {
		case <-fl.done:
			return fl.e, fl.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.m == nil {
		f.m = make(map[key]*flight)
	}
	// The error stands until fetch returns, so waiters never see a nil
	// entry without one, even if fetch panics.
	fl := &flight{done: make(chan struct{}), err: errors.New("lookup did not finish")}
	f.m[k] = fl
	f.mu.Unlock()

	defer func() {
		f.mu.Lock()
		delete(f.m, k)
		f.mu.Unlock()
		close(fl.done)
	}()
	fl.e, fl.err = fetch()
	return fl.e, fl.err
}
