package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// benchLatency is the round trip injected at the fake token endpoint for
// cold gets: the order of a real call to oauth2.googleapis.com.
const benchLatency = 100 * time.Millisecond

// benchKeyEnv is an isolated user with a service-account key in
// GOOGLE_APPLICATION_CREDENTIALS, minting at a fresh fake.
func benchKeyEnv(b *testing.B) (*Env, *fake.Google) {
	b.Helper()
	e := NewEnv(b)
	g := fake.NewGoogle(b)
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(b, e.Home, "bench@proj.iam.gserviceaccount.com"))
	return e, g
}

// benchRun runs the binary once and fails the benchmark unless it succeeds.
func benchRun(b *testing.B, e *Env, stdin string, args ...string) time.Duration {
	b.Helper()
	r := e.Run(stdin, args...)
	if r.Code != 0 {
		b.Fatalf("%v: exit %d, stdout %q, stderr %q", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Elapsed
}

// benchColdGet runs one get on an empty cache and returns its duration.
func benchColdGet(b *testing.B, e *Env) time.Duration {
	b.Helper()
	e.Set("XDG_CACHE_HOME", b.TempDir())
	return benchRun(b, e, "gcr.io", "get")
}

// benchMs is d in milliseconds, for ReportMetric.
func benchMs(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// benchMedian is the median of ds, leaving ds as it was.
func benchMedian(ds []time.Duration) time.Duration {
	return protoMedian(slices.Clone(ds))
}

// BenchmarkVersion is the floor: starting the process and printing a line.
func BenchmarkVersion(b *testing.B) {
	e := NewEnv(b)
	for b.Loop() {
		benchRun(b, e, "", "version")
	}
}

// BenchmarkWarmGet is docker's common case: a whole get process answered
// from the token cache.
func BenchmarkWarmGet(b *testing.B) {
	e, g := benchKeyEnv(b)
	benchRun(b, e, "gcr.io", "get")
	for b.Loop() {
		benchRun(b, e, "gcr.io", "get")
	}
	if n := g.Count("jwt"); n != 1 {
		b.Fatalf("warm gets minted %d times, want 1", n)
	}
}

// BenchmarkColdGet is a whole get process that must mint, with benchLatency
// injected at the token endpoint: the cost the cache saves.
func BenchmarkColdGet(b *testing.B) {
	e, g := benchKeyEnv(b)
	g.SetLatency(benchLatency)
	for b.Loop() {
		benchColdGet(b, e)
	}
}

// BenchmarkProcessTimings is SPEC §7's bar, measured as `make bench` runs
// it (-benchtime 60x): interleaved whole-process runs of `version` and of a
// warm `get`, so both see the same machine state, reported as medians and
// their ratio (bar: ≤1.3, warm get ≤5 ms); plus the median cold get with
// benchLatency at the token endpoint.
func BenchmarkProcessTimings(b *testing.B) {
	e, g := benchKeyEnv(b)
	benchRun(b, e, "gcr.io", "get")
	benchRun(b, e, "", "version")
	var versions, warms []time.Duration
	i := 0
	for b.Loop() {
		// Alternate the order so neither always runs right after the other.
		if i%2 == 0 {
			versions = append(versions, benchRun(b, e, "", "version"))
			warms = append(warms, benchRun(b, e, "gcr.io", "get"))
		} else {
			warms = append(warms, benchRun(b, e, "gcr.io", "get"))
			versions = append(versions, benchRun(b, e, "", "version"))
		}
		i++
	}
	if n := g.Count("jwt"); n != 1 {
		b.Fatalf("warm gets minted %d times, want 1", n)
	}

	const coldRuns = 9
	cacheHome := e.CacheHome
	g.SetLatency(benchLatency)
	var colds []time.Duration
	for range coldRuns {
		colds = append(colds, benchColdGet(b, e))
	}
	e.Set("XDG_CACHE_HOME", cacheHome)

	version, warm, cold := benchMedian(versions), benchMedian(warms), benchMedian(colds)
	ratio := float64(warm) / float64(version)
	b.ReportMetric(benchMs(version), "version-ms")
	b.ReportMetric(benchMs(warm), "warm-get-ms")
	b.ReportMetric(ratio, "warm/version")
	b.ReportMetric(benchMs(cold), "cold-get-ms")
	b.ReportMetric(0, "ns/op")
	sv, sw := slices.Sorted(slices.Values(versions)), slices.Sorted(slices.Values(warms))
	p90 := func(s []time.Duration) time.Duration { return s[len(s)*9/10] }
	b.Logf("%d interleaved pairs: version median %v (min %v, p90 %v); warm get median %v (min %v, p90 %v); ratio %.2f (bar ≤1.30), warm get bar ≤5 ms; cold get (%v injected) median of %d: %v",
		len(versions), version, sv[0], p90(sv), warm, sw[0], p90(sw), ratio, benchLatency, coldRuns, cold)
}
