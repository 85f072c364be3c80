package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/oauth2"
)

// countingMint is an in-process token source that counts its mints and
// hands out tokens valid for a chosen time.
type countingMint struct {
	validity time.Duration
	delay    time.Duration
	clock    *fakeClock // nil: time.Now
	mints    atomic.Int64
	mu       sync.Mutex
	err      error
}

// fakeClock is a settable clock for FileCache.now and countingMint.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// clockedCache is a cache in a fresh dir whose clock is clock.
func clockedCache(t testing.TB, clock *fakeClock) *FileCache {
	c := NewFileCache(t.TempDir())
	c.now = clock.Now
	return c
}

func (m *countingMint) Token() (*oauth2.Token, error) {
	n := m.mints.Add(1)
	time.Sleep(m.delay)
	m.mu.Lock()
	err := m.err
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	tok := &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", n), TokenType: "Bearer"}
	if m.validity != 0 {
		now := time.Now()
		if m.clock != nil {
			now = m.clock.Now()
		}
		tok.Expiry = now.Add(m.validity)
	}
	return tok, nil
}

func (m *countingMint) fail(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

func cacheCred(identity string, m oauth2.TokenSource) *Credential {
	return &Credential{Source: "test", Kind: "service_account", Identity: identity, Cacheable: true, TokenSource: m}
}

func mustToken(t testing.TB, ts oauth2.TokenSource) *oauth2.Token {
	t.Helper()
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok
}

func readEntry(t *testing.T, path string) cacheEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading cache entry: %v", err)
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("cache entry %q: %v", data, err)
	}
	return e
}

func TestCacheSequentialCallsMintOnce(t *testing.T) {
	c := NewFileCache(t.TempDir())
	m := &countingMint{validity: time.Hour}
	first := mustToken(t, c.TokenSource(cacheCred("id-a", m)))
	for range 5 {
		// A new TokenSource each time, like a new docker-credential-gcp process.
		if got := mustToken(t, c.TokenSource(cacheCred("id-a", m))); got.AccessToken != first.AccessToken {
			t.Fatalf("token = %q, want cached %q", got.AccessToken, first.AccessToken)
		}
	}
	if n := m.mints.Load(); n != 1 {
		t.Errorf("mints = %d, want 1", n)
	}
	e := readEntry(t, c.path("id-a"))
	if e.Version != cacheFormatVersion || e.Identity != "id-a" || e.AccessToken != first.AccessToken || !e.Expiry.Equal(first.Expiry) || e.TokenType != "Bearer" {
		t.Errorf("entry = %+v", e)
	}
}

// A cached token is reused while it has at least
// min(M, max(¾·life, min(5 min, 0.9·life))) left, life being what it had
// when obtained, and minted anew after.
func TestCacheReusePolicy(t *testing.T) {
	tests := []struct {
		name        string
		minLifetime time.Duration
		life        time.Duration
		reusedUntil time.Duration // after obtaining
	}{
		{"60-minute tokens keep 45 min", DefaultMinLifetime, time.Hour, 15 * time.Minute},
		{"expires_in 120 is reused for 12 s (0.9 of it kept)", DefaultMinLifetime, 120 * time.Second, 12 * time.Second},
		{"5-minute tokens are reused for 30 s", DefaultMinLifetime, 5 * time.Minute, 30 * time.Second},
		{"6-minute tokens keep 5 min", DefaultMinLifetime, 6 * time.Minute, time.Minute},
		{"8-minute tokens keep 3/4 of their life", DefaultMinLifetime, 8 * time.Minute, 2 * time.Minute},
		{"M=2m gets M with 5-minute tokens", 2 * time.Minute, 5 * time.Minute, 3 * time.Minute},
		{"20-minute tokens are reused for 5 min", DefaultMinLifetime, 20 * time.Minute, 5 * time.Minute},
		{"M=10m keeps 60-minute tokens 50 min", 10 * time.Minute, time.Hour, 50 * time.Minute},
		{"M=2h is capped at 3/4 of the life", 2 * time.Hour, time.Hour, 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, at := range []struct {
				after     time.Duration
				wantMints int64
			}{{tt.reusedUntil - time.Second, 1}, {tt.reusedUntil + time.Second, 2}} {
				clock := newFakeClock()
				c := clockedCache(t, clock)
				c.SetMinLifetime(tt.minLifetime)
				m := &countingMint{validity: tt.life, clock: clock}
				first := mustToken(t, c.TokenSource(cacheCred("id", m)))
				clock.Advance(at.after)
				// A new cache on the same dir, as the next process sees it.
				next := NewFileCache(c.dir)
				next.now = clock.Now
				next.SetMinLifetime(tt.minLifetime)
				got := mustToken(t, next.TokenSource(cacheCred("id", m)))
				if n := m.mints.Load(); n != at.wantMints {
					t.Errorf("%v after obtaining: %d mints, want %d", at.after, n, at.wantMints)
				}
				if reused := got.AccessToken == first.AccessToken; reused != (at.wantMints == 1) {
					t.Errorf("%v after obtaining: reused = %v", at.after, reused)
				}
			}
		})
	}
}

// Continuous gets of 3600-second tokens never hand one out with under M
// left, and mint about every quarter hour; 20-minute tokens, whose life is
// under M, are minted again after a quarter of their life.
func TestCacheNeverHandsOutUnderMinLifetime(t *testing.T) {
	for _, tt := range []struct {
		life      time.Duration
		wantLeft  time.Duration
		wantMints int64 // over 4 simulated hours
	}{
		{time.Hour, DefaultMinLifetime, 16},
		{20 * time.Minute, 15 * time.Minute, 48},
	} {
		t.Run(tt.life.String(), func(t *testing.T) {
			clock := newFakeClock()
			c := clockedCache(t, clock)
			m := &countingMint{validity: tt.life, clock: clock}
			start := clock.Now()
			for clock.Now().Sub(start) < 4*time.Hour {
				tok := mustToken(t, c.TokenSource(cacheCred("id", m)))
				if left := tok.Expiry.Sub(clock.Now()); left < tt.wantLeft {
					t.Fatalf("at %v a token with %v left was handed out, want ≥ %v", clock.Now().Sub(start), left, tt.wantLeft)
				}
				clock.Advance(7 * time.Second)
			}
			if n := m.mints.Load(); n < tt.wantMints || n > tt.wantMints+1 {
				t.Errorf("%d mints in 4 hours, want %d", n, tt.wantMints)
			}
		})
	}
}

func TestParseMinLifetime(t *testing.T) {
	for in, want := range map[string]time.Duration{"45m": 45 * time.Minute, " 1h30m ": 90 * time.Minute, "90s": 90 * time.Second} {
		if got, err := ParseMinLifetime(in); err != nil || got != want {
			t.Errorf("ParseMinLifetime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "45", "soon", "-5m", "0s", "45 minutes"} {
		if _, err := ParseMinLifetime(in); err == nil || !strings.Contains(err.Error(), "positive Go duration") {
			t.Errorf("ParseMinLifetime(%q) error = %v, want one asking for a positive Go duration", in, err)
		}
	}
}

func TestCacheSeparatesIdentities(t *testing.T) {
	dir := t.TempDir()
	c := NewFileCache(dir)
	m := &countingMint{validity: time.Hour}
	a := mustToken(t, c.TokenSource(cacheCred("key:/a.json|scope", m)))
	b := mustToken(t, c.TokenSource(cacheCred("key:/b.json|scope", m)))
	if a.AccessToken == b.AccessToken {
		t.Fatalf("two identities share token %q", a.AccessToken)
	}
	if again := mustToken(t, c.TokenSource(cacheCred("key:/a.json|scope", m))); again.AccessToken != a.AccessToken {
		t.Errorf("identity a got %q, want %q", again.AccessToken, a.AccessToken)
	}
	if c.path("key:/a.json|scope") == c.path("key:/b.json|scope") {
		t.Fatal("two identities share a file")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != 2 {
		t.Errorf("cache files = %v, want 2", files)
	}
	if n := m.mints.Load(); n != 2 {
		t.Errorf("mints = %d, want 2", n)
	}
}

func TestCacheNotCacheable(t *testing.T) {
	dir := t.TempDir()
	c := NewFileCache(dir)
	m := &countingMint{validity: time.Hour}
	cred := cacheCred("id", m)
	cred.Cacheable = false
	if ts := c.TokenSource(cred); ts != oauth2.TokenSource(m) {
		t.Fatalf("TokenSource = %T, want the credential's own source", ts)
	}
	mustToken(t, c.TokenSource(cred))
	mustToken(t, c.TokenSource(cred))
	if n := m.mints.Load(); n != 2 {
		t.Errorf("mints = %d, want 2", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("cache dir holds %d files, want none", len(entries))
	}
}

func TestCacheSkipsTokenWithoutExpiry(t *testing.T) {
	dir := t.TempDir()
	c := NewFileCache(dir)
	m := &countingMint{} // Expiry zero
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	if n := m.mints.Load(); n != 2 {
		t.Errorf("mints = %d, want 2", n)
	}
	if _, err := os.Stat(c.path("id")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("entry written for a token without expiry: %v", err)
	}
}

func TestCacheIgnoresBadEntries(t *testing.T) {
	fresh := time.Now().Add(time.Hour).Format(time.RFC3339Nano)
	obtained := time.Now().Add(-time.Minute).Format(time.RFC3339Nano)
	valid := fmt.Sprintf(`{"version":2,"identity":"id","access_token":"planted","token_type":"Bearer","obtained_at":%q,"expiry":%q}`, obtained, fresh)
	tests := map[string]string{
		"corrupt":          "not json at all",
		"truncated":        valid[:len(valid)/2],
		"empty":            "",
		"foreign identity": strings.Replace(valid, `"identity":"id"`, `"identity":"other"`, 1),
		"old version":      strings.Replace(valid, `"version":2`, `"version":1`, 1),
		"no version":       strings.Replace(valid, `"version":2,`, ``, 1),
		"no obtained_at":   strings.Replace(valid, fmt.Sprintf(`"obtained_at":%q,`, obtained), ``, 1),
		"obtained later":   strings.Replace(valid, obtained, time.Now().Add(2*time.Hour).Format(time.RFC3339Nano), 1),
		"no token":         strings.Replace(valid, `"access_token":"planted"`, `"access_token":""`, 1),
		"no expiry":        strings.Replace(valid, fmt.Sprintf(`,"expiry":%q`, fresh), ``, 1),
		"expired":          strings.Replace(valid, fresh, time.Now().Add(-time.Hour).Format(time.RFC3339Nano), 1),
		"bad expiry":       strings.Replace(valid, fresh, "tomorrow", 1),
		"json array":       "[1,2,3]",
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			c := NewFileCache(t.TempDir())
			if err := os.WriteFile(c.path("id"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			m := &countingMint{validity: time.Hour}
			tok := mustToken(t, c.TokenSource(cacheCred("id", m)))
			if tok.AccessToken != "tok-1" || m.mints.Load() != 1 {
				t.Fatalf("token = %q after %d mints, want a fresh mint", tok.AccessToken, m.mints.Load())
			}
			if e := readEntry(t, c.path("id")); e.AccessToken != "tok-1" || e.Identity != "id" {
				t.Errorf("entry not replaced: %+v", e)
			}
		})
	}
	t.Run("control: valid planted entry is served", func(t *testing.T) {
		c := NewFileCache(t.TempDir())
		if err := os.WriteFile(c.path("id"), []byte(valid), 0o600); err != nil {
			t.Fatal(err)
		}
		m := &countingMint{validity: time.Hour}
		if tok := mustToken(t, c.TokenSource(cacheCred("id", m))); tok.AccessToken != "planted" || m.mints.Load() != 0 {
			t.Errorf("token = %q after %d mints, want planted and none", tok.AccessToken, m.mints.Load())
		}
	})
}

func TestCacheUnusableDir(t *testing.T) {
	parentFile := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parentFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		// Root-proof: no mode bits involved.
		"parent is a file": filepath.Join(parentFile, "cache"),
		"dir is a file":    parentFile,
	}
	for name, dir := range tests {
		t.Run(name, func(t *testing.T) {
			c := NewFileCache(dir)
			m := &countingMint{validity: time.Hour}
			mustToken(t, c.TokenSource(cacheCred("id", m)))
			mustToken(t, c.TokenSource(cacheCred("id", m)))
			if n := m.mints.Load(); n != 1 {
				t.Errorf("mints = %d, want 1 (kept in this process's memory)", n)
			}
			// Another process (a new FileCache) finds nothing on disk.
			other := NewFileCache(dir)
			if _, ok := other.Lookup("id"); ok {
				t.Error("Lookup found an entry in an unusable dir")
			}
			mustToken(t, other.TokenSource(cacheCred("id", m)))
			if n := m.mints.Load(); n != 2 {
				t.Errorf("mints = %d, want 2 (nothing shared through the unusable dir)", n)
			}
		})
	}
}

func TestCacheReadOnlyDir(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Skip("needs Unix permissions enforced (not root); TestCacheUnusableDir covers root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	c := NewFileCache(dir)
	m := &countingMint{validity: time.Hour}
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	if n := m.mints.Load(); n != 2 {
		t.Errorf("mints = %d, want 2 (no caching)", n)
	}
}

func TestCacheStaleIfError(t *testing.T) {
	mintErr := errors.New("token endpoint: 503")
	tests := []struct {
		left       time.Duration // of a 60-minute token, when minting fails
		wantCached bool
	}{
		{5 * time.Minute, true},
		{2 * time.Minute, true},
		{1 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.left.String(), func(t *testing.T) {
			clock := newFakeClock()
			c := clockedCache(t, clock)
			m := &countingMint{validity: time.Hour, clock: clock}
			cached := mustToken(t, c.TokenSource(cacheCred("id", m)))
			clock.Advance(time.Hour - tt.left)
			m.fail(mintErr)
			tok, err := c.TokenSource(cacheCred("id", m)).Token()
			if n := m.mints.Load(); n != 2 {
				t.Errorf("mints = %d, want 2 (the cached token is not fresh)", n)
			}
			if tt.wantCached {
				if err != nil || tok.AccessToken != cached.AccessToken {
					t.Errorf("Token = %v, %v; want cached %q", tok, err, cached.AccessToken)
				}
				return
			}
			if !errors.Is(err, mintErr) {
				t.Errorf("Token error = %v, want the mint's error", err)
			}
		})
	}
}

// A refusal (4xx but 408 and 429) is not cured by waiting: it is reported,
// not papered over with the cached token; a failure that may pass is.
func TestCacheStaleNotServedOnRefusal(t *testing.T) {
	retrieve := func(status int) error {
		return &mintError{msg: "minting failed", err: &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}}}
	}
	tests := []struct {
		name       string
		err        error
		wantCached bool
	}{
		{"token endpoint 400", retrieve(http.StatusBadRequest), false},
		{"token endpoint 401", retrieve(http.StatusUnauthorized), false},
		{"IAM 403", fmt.Errorf("wrapped: %w", &statusError{status: http.StatusForbidden, msg: "IAM refused"}), false},
		{"token endpoint 429", retrieve(http.StatusTooManyRequests), true},
		{"token endpoint 503", retrieve(http.StatusServiceUnavailable), true},
		{"metadata 500", &statusError{status: http.StatusInternalServerError, msg: "HTTP 500"}, true},
		{"network", errors.New("dial tcp: connection refused"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			c := clockedCache(t, clock)
			m := &countingMint{validity: time.Hour, clock: clock}
			cached := mustToken(t, c.TokenSource(cacheCred("id", m)))
			clock.Advance(55 * time.Minute)
			m.fail(tt.err)
			tok, err := c.TokenSource(cacheCred("id", m)).Token()
			if tt.wantCached {
				if err != nil || tok.AccessToken != cached.AccessToken {
					t.Errorf("Token = %v, %v; want cached %q", tok, err, cached.AccessToken)
				}
				return
			}
			if err == nil || !errors.Is(err, tt.err) {
				t.Errorf("Token = %v, %v; want the refusal", tok, err)
			}
		})
	}
}

func TestCacheFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes on Windows")
	}
	dir := filepath.Join(t.TempDir(), "a", "docker-credential-gcp")
	c := NewFileCache(dir)
	mustToken(t, c.TokenSource(cacheCred("id", &countingMint{validity: time.Hour})))
	checkMode := func(path string, want os.FileMode) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", path, got, want)
		}
	}
	checkMode(dir, 0o700)
	checkMode(c.path("id"), 0o600)
	checkMode(strings.TrimSuffix(c.path("id"), ".json")+".lock", 0o600)
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

func TestCacheDropAndLookup(t *testing.T) {
	c := NewFileCache(t.TempDir())
	if err := c.Drop("id"); err != nil {
		t.Errorf("Drop of a missing entry: %v", err)
	}
	if _, ok := c.Lookup("id"); ok {
		t.Error("Lookup found an entry in an empty cache")
	}
	m := &countingMint{validity: time.Hour}
	tok := mustToken(t, c.TokenSource(cacheCred("id", m)))
	cached, ok := c.Lookup("id")
	if !ok || !cached.Expiry.Equal(tok.Expiry) || !cached.Reusable || cached.ReuseUntil.Sub(cached.ObtainedAt).Round(time.Second) != 15*time.Minute {
		t.Errorf("Lookup = %+v, %v; want expiry %v, reusable for 15 min", cached, ok, tok.Expiry)
	}
	if _, ok := c.Lookup("other"); ok {
		t.Error("Lookup found an entry for another identity")
	}
	if err := c.Drop("id"); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	if _, err := os.Stat(c.path("id")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("entry still there after Drop: %v", err)
	}
	if _, ok := c.Lookup("id"); ok {
		t.Error("Lookup found a dropped entry")
	}
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	if n := m.mints.Load(); n != 2 {
		t.Errorf("mints = %d, want 2 (Drop forces a mint)", n)
	}
}

func TestCacheLookupExpired(t *testing.T) {
	c := NewFileCache(t.TempDir())
	mustToken(t, c.TokenSource(cacheCred("id", &countingMint{validity: -time.Minute})))
	if _, ok := c.Lookup("id"); ok {
		t.Error("Lookup reports an expired entry")
	}
}

func TestCacheLockTimeoutMintsAnyway(t *testing.T) {
	c := NewFileCache(t.TempDir())
	c.lockWait = 50 * time.Millisecond
	held := flock.New(strings.TrimSuffix(c.path("id"), ".json") + ".lock")
	if ok, err := held.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	defer held.Unlock()
	m := &countingMint{validity: time.Hour}
	start := time.Now()
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Token took %v with the lock held elsewhere", d)
	}
	if n := m.mints.Load(); n != 1 {
		t.Errorf("mints = %d, want 1", n)
	}
}

func TestCacheDefaultDir(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("XDG_CACHE_HOME and HOME drive os.UserCacheDir on Linux")
	}
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if dir, err := DefaultCacheDir(); err != nil || dir != "/xdg/docker-credential-gcp" {
		t.Errorf("DefaultCacheDir = %q, %v", dir, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if dir, err := DefaultCacheDir(); err == nil {
		t.Errorf("DefaultCacheDir with HOME unset = %q, want an error", dir)
	}
}

func TestCacheConcurrentGoroutinesMintOnce(t *testing.T) {
	for name, dir := range map[string]string{
		"writable dir": t.TempDir(),
		// Without a disk the goroutines still share one flight.
		"unusable dir": filepath.Join(t.TempDir(), "missing\x00"),
	} {
		t.Run(name, func(t *testing.T) {
			c := NewFileCache(dir)
			m := &countingMint{validity: time.Hour, delay: 200 * time.Millisecond}
			start := make(chan struct{})
			var wg sync.WaitGroup
			tokens := make([]string, 50)
			errs := make([]error, 50)
			for i := range tokens {
				wg.Go(func() {
					<-start
					tok, err := c.TokenSource(cacheCred("id", m)).Token()
					errs[i] = err
					if err == nil {
						tokens[i] = tok.AccessToken
					}
				})
			}
			close(start)
			wg.Wait()
			for i := range tokens {
				if errs[i] != nil || tokens[i] != "tok-1" {
					t.Fatalf("goroutine %d: %q, %v", i, tokens[i], errs[i])
				}
			}
			if n := m.mints.Load(); n != 1 {
				t.Errorf("mints = %d, want 1", n)
			}
		})
	}
}

// TestCacheChildProcess is one of the processes TestCacheConcurrentProcesses
// starts; run directly it does nothing.
func TestCacheChildProcess(t *testing.T) {
	if os.Getenv("TOKEN_CACHE_CHILD") != "1" {
		return
	}
	// Wait for the parent to release every child at once.
	io.Copy(io.Discard, os.Stdin)
	m := &appendingMint{counter: os.Getenv("TOKEN_CACHE_COUNTER")}
	c := NewFileCache(os.Getenv("TOKEN_CACHE_DIR"))
	tok, err := c.TokenSource(cacheCred("shared-identity", m)).Token()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print("TOKEN=" + tok.AccessToken + "\n")
}

// appendingMint counts mints across processes with one O_APPEND line each.
type appendingMint struct{ counter string }

func (m *appendingMint) Token() (*oauth2.Token, error) {
	f, err := os.OpenFile(m.counter, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	f.Close()
	time.Sleep(100 * time.Millisecond) // widen the race
	return &oauth2.Token{AccessToken: fmt.Sprintf("tok-pid-%d", os.Getpid()), Expiry: time.Now().Add(time.Hour)}, nil
}

func TestCacheConcurrentProcessesMintOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 32 processes")
	}
	const n = 32
	work := t.TempDir()
	counter := filepath.Join(work, "mints")
	dir := filepath.Join(work, "cache") // cold: not even created yet
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   bytes.Buffer
	}
	children := make([]*child, n)
	for i := range children {
		ch := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestCacheChildProcess$", "-test.count=1")}
		ch.cmd.Env = append(os.Environ(), "TOKEN_CACHE_CHILD=1", "TOKEN_CACHE_DIR="+dir, "TOKEN_CACHE_COUNTER="+counter)
		ch.cmd.Stdout = &ch.out
		ch.cmd.Stderr = &ch.out
		var err error
		if ch.stdin, err = ch.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := ch.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = ch
	}
	for _, ch := range children {
		ch.stdin.Close()
	}
	tokens := map[string]int{}
	for i, ch := range children {
		if err := ch.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, ch.out.String())
		}
		_, tok, ok := strings.Cut(ch.out.String(), "TOKEN=")
		if !ok {
			t.Fatalf("child %d printed no token:\n%s", i, ch.out.String())
		}
		tok, _, _ = strings.Cut(tok, "\n")
		tokens[tok]++
	}
	data, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if mints := strings.Count(string(data), "\n"); mints != 1 {
		t.Errorf("%d processes minted %d times, want 1", n, mints)
	}
	if len(tokens) != 1 {
		t.Errorf("processes got %d different tokens, want 1: %v", len(tokens), tokens)
	}
}

// noopMint returns a token that is never fresh enough to be served from
// the cache, so every call takes the miss path.
type noopMint struct{}

func (noopMint) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: "tok", TokenType: "Bearer", Expiry: time.Now().Add(5 * time.Minute)}, nil
}

// BenchmarkCacheHit is the hit of a fresh process (docker's `get`): a new
// FileCache each time, so the entry is read from disk.
func BenchmarkCacheHit(b *testing.B) {
	dir := b.TempDir()
	m := &countingMint{validity: time.Hour}
	cred := cacheCred("bench", m)
	mustToken(b, NewFileCache(dir).TokenSource(cred))
	for b.Loop() {
		mustToken(b, NewFileCache(dir).TokenSource(cred))
	}
	if n := m.mints.Load(); n != 1 {
		b.Fatalf("%d mints, want 1", n)
	}
}

// BenchmarkCacheHitInMemory is the hit of a long-running process.
func BenchmarkCacheHitInMemory(b *testing.B) {
	c := NewFileCache(b.TempDir())
	cred := cacheCred("bench", &countingMint{validity: time.Hour})
	mustToken(b, c.TokenSource(cred))
	for b.Loop() {
		mustToken(b, c.TokenSource(cred))
	}
}

func BenchmarkCacheMiss(b *testing.B) {
	c := NewFileCache(b.TempDir())
	cred := cacheCred("bench", noopMint{})
	for b.Loop() {
		mustToken(b, c.TokenSource(cred))
	}
}

func BenchmarkNoCache(b *testing.B) {
	cred := cacheCred("bench", noopMint{})
	for b.Loop() {
		mustToken(b, cred.TokenSource)
	}
}

func TestCacheMemoryOnly(t *testing.T) {
	c := NewFileCache("")
	m := &countingMint{validity: time.Hour}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mustToken(t, c.TokenSource(cacheCred("id", m)))
		}()
	}
	wg.Wait()
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	if n := m.mints.Load(); n != 1 {
		t.Errorf("mints = %d, want 1 for 51 calls in one process", n)
	}
	if cached, ok := c.Lookup("id"); !ok || time.Until(cached.Expiry) < 50*time.Minute {
		t.Errorf("Lookup = %+v, %v; want the minted token's expiry", cached, ok)
	}
	if err := c.Drop("id"); err != nil {
		t.Fatal(err)
	}
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	if n := m.mints.Load(); n != 2 {
		t.Errorf("mints = %d after Drop, want 2", n)
	}

	clock := newFakeClock()
	c.now = clock.Now
	short := &countingMint{validity: 5 * time.Minute, clock: clock}
	mustToken(t, c.TokenSource(cacheCred("short", short)))
	clock.Advance(80 * time.Second)
	mustToken(t, c.TokenSource(cacheCred("short", short)))
	if n := short.mints.Load(); n != 2 {
		t.Errorf("a 5-minute token was reused from memory past a quarter of its life (%d mints, want 2)", n)
	}
}
