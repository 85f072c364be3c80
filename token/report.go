package token

import (
	"context"
	"sync"
)

// CacheResult says how the cache answered one call for a token.
type CacheResult string

// The cache's answers, from the least to the most telling: a Report that
// sees several keeps the most telling one.
const (
	// Uncached: no cache was consulted (cache off, or a ready-made token).
	Uncached CacheResult = ""
	// CacheHit: a cached token the policy lets us reuse was handed out.
	CacheHit CacheResult = "hit"
	// CacheMinted: a new token was minted (and cached).
	CacheMinted CacheResult = "minted"
	// CacheStale: minting failed for a reason that may pass, and a cached
	// token with a few minutes left was handed out instead.
	CacheStale CacheResult = "stale fallback"
)

// rank orders results so that a Report keeps the most telling one.
var rank = map[CacheResult]int{Uncached: 0, CacheHit: 1, CacheMinted: 2, CacheStale: 3}

// Report gathers, for the caller of one command, how its tokens were
// obtained: what the cache did and how many network requests were sent.
// The token package fills it through the context (WithReport) and never
// writes it anywhere itself; it never holds a secret. Safe for concurrent use.
type Report struct {
	mu       sync.Mutex
	cache    CacheResult
	requests int
}

// WithReport returns ctx carrying r: token requests sent under it are
// counted in r, and FileCache.TokenSourceContext records in r what the
// cache did.
func WithReport(ctx context.Context, r *Report) context.Context {
	return context.WithValue(ctx, reportKey{}, r)
}

type reportKey struct{}

// reportFrom is the Report ctx carries, or nil.
func reportFrom(ctx context.Context) *Report {
	if ctx == nil {
		return nil
	}
	r, _ := ctx.Value(reportKey{}).(*Report)
	return r
}

// Cache is what the cache did: the most telling of the results recorded.
func (r *Report) Cache() CacheResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cache
}

// Requests is how many HTTP requests (retries included) were attempted.
func (r *Report) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// cached records a cache result; nil r records nothing.
func (r *Report) cached(c CacheResult) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rank[c] > rank[r.cache] {
		r.cache = c
	}
}

// requested counts one HTTP request attempt; nil r counts nothing.
func (r *Report) requested() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
}
