package dnsfilter

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/internal/dnstest"
)

func TestTheCacheDropsTheLeastRecentlyUsedAnswerFirst(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	c := newCache(2)
	e := func() *entry { return &entry{stored: now, expires: now.Add(time.Minute)} }
	a, b, d := key{"a.example.", dns.TypeA}, key{"b.example.", dns.TypeA}, key{"d.example.", dns.TypeA}
	c.put(a, e(), 0)
	c.put(b, e(), 0)
	c.get(a, now) // a is now the most recently used
	c.put(d, e(), 0)
	if c.get(b, now) != nil {
		t.Error("b, the least recently used, is still cached")
	}
	if c.get(a, now) == nil || c.get(d, now) == nil {
		t.Error("a or d was dropped")
	}
	if c.lru.Len() != 2 || len(c.m) != 2 {
		t.Errorf("cache holds %d (map %d), want 2", c.lru.Len(), len(c.m))
	}

	if c.get(a, now.Add(time.Minute)) != nil {
		t.Error("an entry is served at its expiry")
	}
	if c.lru.Len() != 1 {
		t.Errorf("an expired entry stays in the cache")
	}
	c.put(key{"zero.example.", dns.TypeA}, &entry{stored: now, expires: now}, 0)
	if c.lru.Len() != 1 {
		t.Error("an entry with a TTL of 0 was cached")
	}
	gen := c.generation()
	c.flush()
	if c.lru.Len() != 0 || len(c.m) != 0 || c.get(d, now) != nil {
		t.Error("flush left entries")
	}
	// An answer looked up across a flush was opened in what the flush
	// stands for (a firewall since replaced): it is not cached.
	c.put(a, e(), gen)
	if c.get(a, now) != nil {
		t.Error("an entry from before the flush was cached")
	}
	c.put(a, e(), c.generation())
	if c.get(a, now) == nil {
		t.Error("an entry from after the flush was not cached")
	}
}

func TestTheCacheIsBoundedThroughTheHandler(t *testing.T) {
	up := startUpstream(t, nil, func(q dns.Question) dnstest.Reply {
		return dnstest.Reply{Answer: []string{q.Name + " 300 IN A " + pub4a}}
	})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}, CacheSize: 3})
	for _, name := range []string{"a", "b", "c", "d", "a"} {
		ask(t, "udp", f.addr, name+".allowed.test", dns.TypeA)
	}
	// a was dropped when d came in, so it was asked twice.
	if n := up.Queries(); n != 5 {
		t.Errorf("upstream asked %d times, want 5", n)
	}
	if n := f.h.cache.size(); n != 3 {
		t.Errorf("cache holds %d answers, want 3", n)
	}
}

// size is the number of cached answers, read under the cache's lock.
func (c *cache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
