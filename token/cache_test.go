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
	mints    atomic.Int64
	mu       sync.Mutex
	err      error
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
		tok.Expiry = time.Now().Add(m.validity)
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

func TestCacheFreshnessThreshold(t *testing.T) {
	tests := []struct {
		validity  time.Duration
		wantMints int64
	}{
		{9 * time.Minute, 2},
		{11 * time.Minute, 1},
	}
	for _, tt := range tests {
		t.Run(tt.validity.String(), func(t *testing.T) {
			c := NewFileCache(t.TempDir())
			m := &countingMint{validity: tt.validity}
			mustToken(t, c.TokenSource(cacheCred("id", m)))
			mustToken(t, c.TokenSource(cacheCred("id", m)))
			if n := m.mints.Load(); n != tt.wantMints {
				t.Errorf("mints = %d, want %d", n, tt.wantMints)
			}
		})
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
	valid := fmt.Sprintf(`{"version":1,"identity":"id","access_token":"planted","token_type":"Bearer","expiry":%q}`, fresh)
	tests := map[string]string{
		"corrupt":          "not json at all",
		"truncated":        valid[:len(valid)/2],
		"empty":            "",
		"foreign identity": strings.Replace(valid, `"identity":"id"`, `"identity":"other"`, 1),
		"wrong version":    strings.Replace(valid, `"version":1`, `"version":2`, 1),
		"no version":       strings.Replace(valid, `"version":1,`, ``, 1),
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
		cachedValidity time.Duration
		wantCached     bool
	}{
		{5 * time.Minute, true},
		{1 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.cachedValidity.String(), func(t *testing.T) {
			c := NewFileCache(t.TempDir())
			m := &countingMint{validity: tt.cachedValidity}
			cached := mustToken(t, c.TokenSource(cacheCred("id", m)))
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
			c := NewFileCache(t.TempDir())
			m := &countingMint{validity: 5 * time.Minute}
			cached := mustToken(t, c.TokenSource(cacheCred("id", m)))
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
	expiry, ok := c.Lookup("id")
	if !ok || !expiry.Equal(tok.Expiry) {
		t.Errorf("Lookup = %v, %v; want %v, true", expiry, ok, tok.Expiry)
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
	if exp, ok := c.Lookup("id"); !ok || time.Until(exp) < 50*time.Minute {
		t.Errorf("Lookup = %v, %v; want the minted token's expiry", exp, ok)
	}
	if err := c.Drop("id"); err != nil {
		t.Fatal(err)
	}
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	if n := m.mints.Load(); n != 2 {
		t.Errorf("mints = %d after Drop, want 2", n)
	}

	short := &countingMint{validity: 5 * time.Minute}
	mustToken(t, c.TokenSource(cacheCred("short", short)))
	mustToken(t, c.TokenSource(cacheCred("short", short)))
	if n := short.mints.Load(); n != 2 {
		t.Errorf("a token with 5 min left was reused from memory (%d mints, want 2)", n)
	}
}
