package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"
)

// cacheHangLimit is how long any single run may take before a test calls it
// a hang; the helper's own bound on a get is 30 s.
const cacheHangLimit = 20 * time.Second

// cacheDir is where the token cache of e lives.
func cacheDir(e *Env) string {
	return filepath.Join(e.CacheHome, "docker-credential-gcp")
}

// cacheGet runs get for serverURL, expects success and returns the token.
func cacheGet(t *testing.T, e *Env, serverURL string) string {
	t.Helper()
	return protoExpectCreds(t, e.Run(serverURL, "get"), serverURL)
}

// cacheFiles lists the regular files in the cache dir (none if it is missing).
func cacheFiles(t *testing.T, e *Env) []string {
	t.Helper()
	entries, err := os.ReadDir(cacheDir(e))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, de := range entries {
		if de.Type().IsRegular() {
			out = append(out, filepath.Join(cacheDir(e), de.Name()))
		}
	}
	return out
}

// cacheEntries lists the cache files that hold a token (JSON entries), not
// lock files.
func cacheEntries(t *testing.T, e *Env) []string {
	t.Helper()
	var out []string
	for _, f := range cacheFiles(t, e) {
		if data, err := os.ReadFile(f); err == nil && bytes.Contains(data, []byte("access_token")) {
			out = append(out, f)
		}
	}
	return out
}

// cacheAge rewrites every cache entry of e as if ago had passed since:
// its token obtained and expiring that much earlier.
func cacheAge(t *testing.T, e *Env, ago time.Duration) {
	t.Helper()
	entries := cacheEntries(t, e)
	if len(entries) == 0 {
		t.Fatal("no cache entry to age")
	}
	for _, f := range entries {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("cache entry %s: %v", f, err)
		}
		for _, field := range []string{"obtained_at", "expiry"} {
			at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m[field]))
			if err != nil {
				t.Fatalf("cache entry %s: %s: %v", f, field, err)
			}
			m[field] = at.Add(-ago).Format(time.RFC3339Nano)
		}
		if data, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// cacheRunBounded runs get like e.Run but kills the process if it runs
// past cacheHangLimit, so a hang fails the test instead of stalling it.
func cacheRunBounded(t *testing.T, e *Env, serverURL string) Result {
	t.Helper()
	c := e.Command(binary, "get")
	c.Stdin = strings.NewReader(serverURL)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	start := time.Now()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(cacheHangLimit, func() { _ = c.Process.Kill() })
	err := c.Wait()
	hung := !timer.Stop()
	r := Result{Stdout: out.String(), Stderr: errOut.String(), Elapsed: time.Since(start), Code: c.ProcessState.ExitCode()}
	if hung {
		t.Fatalf("get hung: killed after %v (err %v)", cacheHangLimit, err)
	}
	return r
}

func TestCacheSequentialGetsMintOnce(t *testing.T) {
	t.Parallel()
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	first := cacheGet(t, e, "gcr.io")
	protoExpectIssued(t, g, first, protoSAEmail, "jwt")
	for _, host := range []string{"gcr.io", "eu.gcr.io", "europe-west1-docker.pkg.dev", "https://gcr.io/v2/"} {
		if tok := cacheGet(t, e, host); tok != first {
			t.Fatalf("get %s returned another token than the cached one", host)
		}
	}
	if n := g.Count("jwt"); n != 1 {
		t.Fatalf("5 sequential gets made %d jwt grants, want 1", n)
	}
}

func TestCacheConcurrentColdGetsMintOnce(t *testing.T) {
	t.Parallel()
	const procs = 32
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	g.SetLatency(100 * time.Millisecond)
	type run struct {
		out, errOut bytes.Buffer
		err         error
	}
	runs := make([]*run, procs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range runs {
		r := &run{}
		runs[i] = r
		c := e.Command(binary, "get")
		c.Stdin = strings.NewReader("gcr.io\n")
		c.Stdout, c.Stderr = &r.out, &r.errOut
		wg.Go(func() {
			<-start
			r.err = c.Run()
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent cold gets took %v, %d jwt grants", procs, time.Since(began), g.Count("jwt"))
	var first string
	for i, r := range runs {
		if r.err != nil {
			t.Fatalf("get #%d: %v; stdout %q, stderr %q", i, r.err, r.out.String(), r.errOut.String())
		}
		var c credentials.Credentials
		if err := json.Unmarshal(r.out.Bytes(), &c); err != nil || c.Secret == "" {
			t.Fatalf("get #%d: stdout %q", i, r.out.String())
		}
		if first == "" {
			first = c.Secret
			protoExpectIssued(t, g, first, protoSAEmail, "jwt")
		} else if c.Secret != first {
			t.Errorf("get #%d returned another token than get #0", i)
		}
	}
	if n := g.Count("jwt"); n != 1 {
		t.Fatalf("%d concurrent cold gets made %d jwt grants, want exactly 1", procs, n)
	}
}

func TestCacheTwoKeyFilesTwoTokens(t *testing.T) {
	t.Parallel()
	const emailB = "other@proj.iam.gserviceaccount.com"
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	keyA := filepath.Join(e.Home, "key.json")
	keyB := g.WriteServiceAccountKey(t, t.TempDir(), emailB)

	tokA := cacheGet(t, e, "gcr.io")
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", keyB)
	tokB := cacheGet(t, e, "gcr.io")
	if tokA == tokB {
		t.Fatal("two key files got the same token")
	}
	protoExpectIssued(t, g, tokA, protoSAEmail, "jwt")
	protoExpectIssued(t, g, tokB, emailB, "jwt")
	if n := g.Count("jwt"); n != 2 {
		t.Fatalf("two key files made %d jwt grants, want 2", n)
	}
	for range 2 {
		e.Set("GOOGLE_APPLICATION_CREDENTIALS", keyA)
		if tok := cacheGet(t, e, "gcr.io"); tok != tokA {
			t.Fatal("key A got another token on repeat")
		}
		e.Set("GOOGLE_APPLICATION_CREDENTIALS", keyB)
		if tok := cacheGet(t, e, "gcr.io"); tok != tokB {
			t.Fatal("key B got another token on repeat")
		}
	}
	if n := g.Count("jwt"); n != 2 {
		t.Fatalf("repeated gets made %d jwt grants in all, want still 2", n)
	}
	// The same key under another path and through the impersonation
	// wrapper are different identities too.
	e.Set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", protoTargetEmail)
	e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
	tokImp := cacheGet(t, e, "gcr.io")
	if tokImp == tokB || tokImp == tokA {
		t.Fatal("impersonation got the base credential's cached token")
	}
	protoExpectIssued(t, g, tokImp, protoTargetEmail, "iam")
}

// A source of short tokens is asked again after a quarter of their life,
// never on every get; 60-minute tokens are handed out with ≥45 min left.
func TestCacheShortLifetimeRemints(t *testing.T) {
	t.Parallel()
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	g.SetLifetime(300 * time.Second)
	first := cacheGet(t, e, "gcr.io")
	for range 2 {
		if tok := cacheGet(t, e, "gcr.io"); tok != first {
			t.Fatal("a 5-minute token was not reused in its first 30 s")
		}
	}
	if n := g.Count("jwt"); n != 1 {
		t.Fatalf("3 gets of a fresh 5-minute token made %d grants, want 1", n)
	}
	// 80 s later it has 220 s left, under the 4 m 30 s (0.9 of its life)
	// the policy keeps of a 5-minute token.
	cacheAge(t, e, 80*time.Second)
	if tok := cacheGet(t, e, "gcr.io"); tok == first || g.Count("jwt") != 2 {
		t.Fatalf("a 5-minute token 80 s old was reused: %d grants", g.Count("jwt"))
	}

	g.SetLifetime(time.Hour)
	cacheAge(t, e, time.Hour)
	tok := cacheGet(t, e, "gcr.io")
	cacheAge(t, e, 14*time.Minute)
	if again := cacheGet(t, e, "gcr.io"); again != tok || g.Count("jwt") != 3 {
		t.Fatalf("a 1-hour token with 46 min left was not reused: %d grants", g.Count("jwt"))
	}
	cacheAge(t, e, 2*time.Minute)
	if again := cacheGet(t, e, "gcr.io"); again == tok || g.Count("jwt") != 4 {
		t.Fatalf("a 1-hour token with 44 min left was handed out: %d grants", g.Count("jwt"))
	}
}

// cacheCorruptions overwrite one cache file; other is the content of an
// entry of another identity.
var cacheCorruptions = []struct {
	name    string
	corrupt func(data, other []byte) []byte
}{
	{"empty", func([]byte, []byte) []byte { return nil }},
	{"truncated", func(data, _ []byte) []byte { return data[:len(data)/2] }},
	{"garbage", func([]byte, []byte) []byte { return []byte("\x00\xff garbage {{{ not json") }},
	{"wrong_shape_JSON", func([]byte, []byte) []byte { return []byte(`["access_token", 42, {"expiry": true}]`) }},
	{"future_version", func(data, _ []byte) []byte {
		return bytes.Replace(data, []byte(`"version":2`), []byte(`"version":99`), 1)
	}},
	{"expired", func(data, _ []byte) []byte {
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			return data
		}
		m["expiry"] = time.Now().Add(-time.Hour).Format(time.RFC3339)
		out, _ := json.Marshal(m)
		return out
	}},
	{"other_identity", func(_, other []byte) []byte { return other }},
}

func TestCacheCorruptFilesIgnored(t *testing.T) {
	t.Parallel()
	for _, c := range cacheCorruptions {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			const emailB = "other@proj.iam.gserviceaccount.com"
			e, g, _ := protoKeyEnv(t, protoSAEmail)
			keyA := filepath.Join(e.Home, "key.json")
			// An entry of another identity, captured and then removed.
			e.Set("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(t, t.TempDir(), emailB))
			cacheGet(t, e, "gcr.io")
			entries := cacheEntries(t, e)
			if len(entries) != 1 {
				t.Fatalf("one get left %d cache entries, want 1", len(entries))
			}
			other, err := os.ReadFile(entries[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(cacheDir(e)); err != nil {
				t.Fatal(err)
			}

			e.Set("GOOGLE_APPLICATION_CREDENTIALS", keyA)
			primed := cacheGet(t, e, "gcr.io")
			files := cacheFiles(t, e)
			if len(files) == 0 {
				t.Fatal("get left no cache files")
			}
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, c.corrupt(data, other), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			grants := g.Count("jwt")
			tok := cacheGet(t, e, "gcr.io")
			protoExpectIssued(t, g, tok, protoSAEmail, "jwt")
			if tok == primed || g.Count("jwt") != grants+1 {
				t.Fatalf("a corrupt entry was served (or not replaced by one mint): %d grants after, %d before", g.Count("jwt"), grants)
			}
			// The entry was repaired: the next get is a hit.
			grants = g.Count("jwt")
			if again := cacheGet(t, e, "gcr.io"); again != tok || g.Count("jwt") != grants {
				t.Fatalf("the corrupt entry was not replaced: next get minted again")
			}
		})
	}
}

func TestCacheUnusableDirStillGets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T, e *Env)
	}{
		{"XDG_CACHE_HOME_below_a_file", func(t *testing.T, e *Env) {
			file := protoWrite(t, t.TempDir(), "plain-file", []byte("x"))
			e.Set("XDG_CACHE_HOME", filepath.Join(file, "cache"))
		}},
		{"cache_dir_is_a_file", func(t *testing.T, e *Env) {
			protoWrite(t, e.CacheHome, "docker-credential-gcp", []byte("not a dir"))
		}},
		{"entries_are_dirs", func(t *testing.T, e *Env) {
			cacheGet(t, e, "gcr.io")
			for _, f := range cacheFiles(t, e) {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(f, 0o700); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"chmod_0500", func(t *testing.T, e *Env) {
			if os.Geteuid() == 0 {
				t.Skip("SKIP: root ignores directory permissions; the other cases cover this")
			}
			if err := os.MkdirAll(cacheDir(e), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cacheDir(e), 0o500); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(cacheDir(e), 0o700) })
		}},
		{"chmod_0000_entries", func(t *testing.T, e *Env) {
			if os.Geteuid() == 0 {
				t.Skip("SKIP: root ignores file permissions; the other cases cover this")
			}
			cacheGet(t, e, "gcr.io")
			for _, f := range cacheFiles(t, e) {
				if err := os.Chmod(f, 0); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, g, _ := protoKeyEnv(t, protoSAEmail)
			c.setup(t, e)
			for range 2 {
				r := cacheRunBounded(t, e, "gcr.io")
				protoExpectIssued(t, g, protoExpectCreds(t, r, "gcr.io"), protoSAEmail, "jwt")
			}
		})
	}
}

func TestCacheNoHomeNoXDG(t *testing.T) {
	t.Parallel()
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	for _, k := range []string{"HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"} {
		e.Set(k, "")
	}
	for i := range 2 {
		r := cacheRunBounded(t, e, "gcr.io")
		protoExpectIssued(t, g, protoExpectCreds(t, r, "gcr.io"), protoSAEmail, "jwt")
		if n := g.Count("jwt"); n != i+1 {
			t.Fatalf("without a cache dir, get #%d made %d grants in all; want one per get", i+1, n)
		}
	}
	// No cache anywhere must not mean a slow get either.
	if r := cacheRunBounded(t, e, "gcr.io"); r.Elapsed > 5*time.Second {
		t.Fatalf("get without HOME took %v", r.Elapsed)
	}
}

func TestCacheNoCacheEnv(t *testing.T) {
	t.Parallel()
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	e.Set("DOCKER_CREDENTIAL_GCP_NO_CACHE", "1")
	seen := map[string]bool{}
	for range 3 {
		seen[cacheGet(t, e, "gcr.io")] = true
	}
	if n := g.Count("jwt"); n != 3 || len(seen) != 3 {
		t.Fatalf("NO_CACHE=1: 3 gets made %d grants, %d distinct tokens; want 3 and 3", n, len(seen))
	}
	if f := cacheEntries(t, e); len(f) != 0 {
		t.Fatalf("NO_CACHE=1 still wrote %v", f)
	}
}

func TestCacheFileModes(t *testing.T) {
	t.Parallel()
	e, _, _ := protoKeyEnv(t, protoSAEmail)
	cacheGet(t, e, "gcr.io")
	fi, err := os.Stat(cacheDir(e))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("cache dir has mode %04o, want 0700", got)
	}
	files := cacheFiles(t, e)
	if len(cacheEntries(t, e)) != 1 {
		t.Fatalf("one get left %d entries in %v, want 1", len(cacheEntries(t, e)), files)
	}
	err = filepath.WalkDir(cacheDir(e), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if got := fi.Mode(); got != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", p, got)
		}
		if strings.Contains(d.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCacheEraseDropsToken(t *testing.T) {
	t.Parallel()
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	first := cacheGet(t, e, "gcr.io")
	if cacheGet(t, e, "gcr.io") != first || g.Count("jwt") != 1 {
		t.Fatal("second get was not served from the cache")
	}
	if r := e.Run("gcr.io", "erase"); r.Code != 0 || r.Stdout != "" {
		t.Fatalf("erase: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if f := cacheEntries(t, e); len(f) != 0 {
		t.Errorf("erase left cache entries %v", f)
	}
	if tok := cacheGet(t, e, "gcr.io"); tok == first || g.Count("jwt") != 2 {
		t.Fatalf("get after erase did not mint anew (%d grants)", g.Count("jwt"))
	}
	// erase of an evil host must not touch the cache or any endpoint.
	if r := e.Run("gcr.io.evil.com", "erase"); r.Code != 0 && r.Code != 1 {
		t.Fatalf("erase evil host: exit %d", r.Code)
	}
	if len(cacheEntries(t, e)) != 1 {
		t.Error("erase of a foreign host dropped our cached token")
	}
}

func TestCacheEnvTokenNeverCached(t *testing.T) {
	t.Parallel()
	const envTok = "ya29.c.injected-by-ci-do-not-cache"
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	e.Set("GOOGLE_OAUTH_ACCESS_TOKEN", envTok)
	for range 2 {
		protoExactCheck(envTok)(t, cacheGet(t, e, "gcr.io"))
	}
	// A stored access token is handed out as-is too, never copied.
	const storedTok = "ya29.stored-do-not-cache"
	protoStore(t, e, "eu.gcr.io", "oauth2accesstoken", storedTok)
	protoExactCheck(storedTok)(t, cacheGet(t, e, "eu.gcr.io"))
	if n := g.Count("any"); n != 0 {
		t.Errorf("ready tokens caused %d requests to the token endpoints", n)
	}
	err := filepath.WalkDir(e.CacheHome, func(p string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, tok := range []string{envTok, storedTok} {
			if bytes.Contains(data, []byte(tok)) {
				t.Errorf("%s holds a ready-made token", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCacheStaleIfError(t *testing.T) {
	t.Parallel()
	t.Run("serves_token_with_5_min_left", func(t *testing.T) {
		t.Parallel()
		e, g, _ := protoKeyEnv(t, protoSAEmail)
		cached := cacheGet(t, e, "gcr.io")
		cacheAge(t, e, 55*time.Minute) // 5 min left: minted anew
		g.FailNext(10, http.StatusServiceUnavailable, nil, `{"error":"backendError"}`)
		grants := g.Count("jwt")
		r := cacheRunBounded(t, e, "gcr.io")
		t.Logf("stale-if-error get took %v", r.Elapsed)
		if tok := protoExpectCreds(t, r, "gcr.io"); tok != cached {
			t.Fatalf("with the token endpoint failing, get did not serve the cached token")
		}
		if g.Count("jwt") == grants {
			t.Error("a token with 5 min left was served without trying to mint")
		}
	})
	t.Run("fails_with_90_s_left", func(t *testing.T) {
		t.Parallel()
		e, g, key := protoKeyEnv(t, protoSAEmail)
		cached := cacheGet(t, e, "gcr.io")
		cacheAge(t, e, time.Hour-90*time.Second)
		g.FailNext(10, http.StatusServiceUnavailable, nil, `{"error":"backendError"}`)
		r := cacheRunBounded(t, e, "gcr.io")
		protoExpectError(t, r, append(protoKeySecrets(t, key), cached), "503")
	})
}

// A cached token is served in place of a failed mint only when the failure
// may pass (network, 5xx). When the token endpoint refuses the key (revoked
// or deleted: 400 invalid_grant, 401, 403) get must say so, as SPEC §3
// demands, rather than hand out the old token.
func TestCacheRefusalNotServedStale(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		status int
		want   string
	}{
		{"400 invalid_grant", 0, "invalid_grant"},
		{"401", http.StatusUnauthorized, "HTTP 401"},
		{"403", http.StatusForbidden, "HTTP 403"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, g, key := protoKeyEnv(t, protoSAEmail)
			cached := cacheGet(t, e, "gcr.io")
			cacheAge(t, e, 55*time.Minute) // 5 min left: the next get tries to mint
			g.RevokeWith(protoSAEmail, c.status)
			r := cacheRunBounded(t, e, "gcr.io")
			protoExpectError(t, r, append(protoKeySecrets(t, key), cached), "GOOGLE_APPLICATION_CREDENTIALS", "token endpoint refused the key", c.want)
		})
	}
}
