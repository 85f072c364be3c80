package token

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// What the cache did reaches the Report of the context it was asked under:
// a cold call mints, a warm one hits, a failed mint served from a cached
// token is a stale fallback; a credential the cache does not hold, or a
// context without a Report, records nothing.
func TestReportCacheResult(t *testing.T) {
	clock := newFakeClock()
	c := clockedCache(t, clock)
	m := &countingMint{validity: time.Hour, clock: clock}
	get := func() CacheResult {
		t.Helper()
		var r Report
		mustToken(t, c.TokenSourceContext(WithReport(context.Background(), &r), cacheCred("id", m)))
		return r.Cache()
	}
	if got := get(); got != CacheMinted {
		t.Errorf("cold call: %q, want %q", got, CacheMinted)
	}
	if got := get(); got != CacheHit {
		t.Errorf("warm call: %q, want %q", got, CacheHit)
	}
	clock.Advance(55 * time.Minute)
	m.fail(errors.New("token endpoint: 503"))
	if got := get(); got != CacheStale {
		t.Errorf("failed mint with 5 min left: %q, want %q", got, CacheStale)
	}

	var r Report
	uncached := cacheCred("ready", m)
	uncached.Cacheable = false
	m.fail(nil)
	mustToken(t, c.TokenSourceContext(WithReport(context.Background(), &r), uncached))
	if got := r.Cache(); got != Uncached {
		t.Errorf("a credential the cache does not hold: %q, want uncached", got)
	}
	mustToken(t, c.TokenSourceContext(context.Background(), cacheCred("id2", m)))
}

// A Report that sees several results keeps the most telling: one mint
// among hits makes the call "minted".
func TestReportKeepsMostTellingResult(t *testing.T) {
	var r Report
	for _, c := range []CacheResult{CacheHit, CacheMinted, CacheHit, Uncached} {
		r.cached(c)
	}
	if got := r.Cache(); got != CacheMinted {
		t.Errorf("Cache = %q, want %q", got, CacheMinted)
	}
	var nilReport *Report
	nilReport.cached(CacheHit)
	nilReport.requested()
}

// Every attempt the retrying transport makes under a context carrying a
// Report is counted, retries included; requests without one are not.
func TestReportCountsRequests(t *testing.T) {
	s := &scriptedServer{statuses: []int{503, 503, 200}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var r Report
	req, err := http.NewRequestWithContext(WithReport(context.Background(), &r), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := quickRetryClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := r.Requests(); got != 3 {
		t.Errorf("Requests = %d, want 3 (two 503s, then 200)", got)
	}
	resp, err = quickRetryClient().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := r.Requests(); got != 3 {
		t.Errorf("Requests = %d after a request without the Report, want 3", got)
	}
}
