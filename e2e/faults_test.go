package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// The fault matrix: what `get` does when the token endpoint, the metadata
// server, the disk or other processes misbehave. Every figure is logged.

const (
	faultSA = "builder@p.iam.gserviceaccount.com"
	// faultGetLimit is what a whole get process may take when the token
	// endpoint hangs: it must have answered and exited within 30 s of its
	// start (helper.getBudget is 25 s from the process's start, leaving
	// room for exec and exit on a loaded machine).
	faultGetLimit = 30 * time.Second
)

// faultKeyEnv is a user whose get mints from a service-account key at a
// fresh fake Google.
func faultKeyEnv(t *testing.T) (*Env, *fake.Google) {
	t.Helper()
	g := fake.NewGoogle(t)
	e := NewEnv(t)
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(t, t.TempDir(), faultSA))
	return e, g
}

// faultGet runs get gcr.io and returns the result and, on success, the token.
func faultGet(t *testing.T, e *Env) (Result, string) {
	t.Helper()
	r := badRun(t, e, []byte("gcr.io\n"), "get")
	if r.Code != 0 {
		return r, ""
	}
	var c struct{ ServerURL, Username, Secret string }
	if err := json.Unmarshal([]byte(r.Stdout), &c); err != nil || c.Username != "oauth2accesstoken" || c.Secret == "" {
		t.Fatalf("get answered %q (%v); want oauth2accesstoken and a token", r.Stdout, err)
	}
	return r, c.Secret
}

// faultWantToken checks a successful get whose token the fake Google issued.
func faultWantToken(t *testing.T, g *fake.Google, r Result, tok string) {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("get failed: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	if issued, ok := g.Issued(tok); !ok || issued.Principal != faultSA {
		t.Errorf("get returned a token the fake Google did not issue to %s", faultSA)
	}
}

func TestFaultTokenEndpoint(t *testing.T) {
	t.Parallel()

	t.Run("503 twice then OK", func(t *testing.T) {
		t.Parallel()
		e, g := faultKeyEnv(t)
		g.FailNext(2, http.StatusServiceUnavailable, nil, `{"error":"backend_error"}`)
		r, tok := faultGet(t, e)
		t.Logf("503×2 then OK: exit %d in %v after %d token requests", r.Code, r.Elapsed.Round(time.Millisecond), g.Count("jwt"))
		faultWantToken(t, g, r, tok)
		if n := g.Count("jwt"); n != 3 {
			t.Errorf("%d token requests, want 3 (two 503s retried)", n)
		}
	})

	t.Run("429 with Retry-After", func(t *testing.T) {
		t.Parallel()
		e, g := faultKeyEnv(t)
		g.FailNext(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, `{"error":"rate_limit_exceeded"}`)
		r, tok := faultGet(t, e)
		t.Logf("429 Retry-After: 1: exit %d in %v after %d token requests", r.Code, r.Elapsed.Round(time.Millisecond), g.Count("jwt"))
		faultWantToken(t, g, r, tok)
		if r.Elapsed < time.Second {
			t.Errorf("succeeded in %v: Retry-After: 1 was not honoured", r.Elapsed)
		}
	})

	// A revoked or deleted key: Google answers 400 invalid_grant, or 401
	// (invalid_client) for a key it no longer knows.
	refusals := []struct {
		name   string
		status int
		want   string
	}{
		{"400 invalid_grant", 0, "invalid_grant"},
		{"401", http.StatusUnauthorized, "HTTP 401"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, g := faultKeyEnv(t)
			g.RevokeWith(faultSA, c.status)
			r, _ := faultGet(t, e)
			badAssertOneLine(t, r, true, "GOOGLE_APPLICATION_CREDENTIALS", faultSA, "token endpoint refused the key", c.want)
			if strings.Contains(r.Stdout, "PRIVATE KEY") {
				t.Errorf("the error quotes the key: %q", r.Stdout)
			}
			if n := g.Count("jwt"); n != 1 {
				t.Errorf("%d token requests, want 1 (a refusal is not retried)", n)
			}
		})
	}

	t.Run("hang", func(t *testing.T) {
		t.Parallel()
		e, g := faultKeyEnv(t)
		g.SetHang(true)
		start := time.Now()
		r := faultRunWithin(t, e, faultGetLimit+10*time.Second, "gcr.io\n", "get")
		t.Logf("hung token endpoint: exit %d after %v (whole process, start to exit; limit %v)", r.Code, time.Since(start).Round(time.Millisecond), faultGetLimit)
		badAssertOneLine(t, r, true, "GOOGLE_APPLICATION_CREDENTIALS", "did not answer in time", "HTTPS_PROXY")
		if r.Elapsed >= faultGetLimit {
			t.Errorf("the get process ended %v after its start, want under %v", r.Elapsed, faultGetLimit)
		}
	})

	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		e, g := faultKeyEnv(t)
		g.SetMalformed(true) // an HTML page, as a proxy or captive portal answers
		r, _ := faultGet(t, e)
		badAssertOneLine(t, r, true, "GOOGLE_APPLICATION_CREDENTIALS", faultSA, "was an HTML page (HTTP 200)", "HTTPS_PROXY")
		if strings.Contains(r.Stdout, "invalid character") {
			t.Errorf("get shows the JSON decoder's complaint: %q", r.Stdout)
		}
	})

	// A token endpoint that redirects elsewhere (here to plain HTTP on
	// another port): Google's never does, and following it would send
	// the signed JWT assertion — a credential that buys tokens for an
	// hour — to whoever the redirect names. The helper must refuse, with
	// a clear error, and the other server must see nothing.
	t.Run("redirect to plain HTTP elsewhere", func(t *testing.T) {
		t.Parallel()
		e, g := faultKeyEnv(t)
		var mu sync.Mutex
		var seen []string
		elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.Path+" "+string(body))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"ya29.from-elsewhere","expires_in":3600,"token_type":"Bearer"}`)
		}))
		t.Cleanup(elsewhere.Close)
		g.SetRedirect(elsewhere.URL + "/token")
		r, tok := faultGet(t, e)
		mu.Lock()
		defer mu.Unlock()
		t.Logf("redirect to %s: exit %d in %v; the other server saw %d request(s)", elsewhere.URL, r.Code, r.Elapsed.Round(time.Millisecond), len(seen))
		for _, s := range seen {
			if strings.Contains(s, "assertion=") {
				t.Errorf("the signed JWT assertion leaked to the redirect target: %.120s…", s)
			}
		}
		if tok == "ya29.from-elsewhere" {
			t.Errorf("get handed docker a token from the redirect target")
		}
		badAssertOneLine(t, r, true, "GOOGLE_APPLICATION_CREDENTIALS", "redirect")
	})
}

// faultRunWithin runs the helper with a custom overall limit (for the
// hang case, which legitimately takes the helper's whole deadline).
func faultRunWithin(t *testing.T, e *Env, limit time.Duration, stdin string, args ...string) Result {
	t.Helper()
	c := exec.Command(binary, args...)
	c.Env = e.Environ()
	c.Dir = e.Home
	c.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	c.Stdout, c.Stderr = &out, &errOut
	start := time.Now()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		_ = c.Process.Kill()
		<-done
		t.Fatalf("%v did not end within %v (killed)", args, limit)
	}
	r := Result{Stdout: out.String(), Stderr: errOut.String(), Elapsed: time.Since(start)}
	if exit, ok := err.(*exec.ExitError); ok {
		r.Code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFaultMetadata(t *testing.T) {
	t.Parallel()
	const email = "node@p.iam.gserviceaccount.com"

	// Off Google Cloud, a docker pull of a public image must not wait for
	// a metadata server. A refused connection costs next to nothing: its
	// bar (<100 ms more than `version`, least of 9 runs each, so a loaded
	// machine's scheduling is not blamed on the helper) is
	// TestProtoNotFoundFastRefused's; here it must be the protocol's one line.
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		e.Set("GCE_METADATA_HOST", fake.RefusedHost(t))
		r := badRun(t, e, []byte("gcr.io\n"), "get")
		badAssertOneLine(t, r, true, "credentials not found in native keychain")
	})

	// A host that accepts and never answers costs the probe's budget: the
	// best of three whole processes must stay under 1.5 s.
	t.Run("blackhole", func(t *testing.T) {
		t.Parallel()
		const limit = 1500 * time.Millisecond
		e := NewEnv(t)
		e.Set("GCE_METADATA_HOST", fake.BlackholeHost(t))
		var times []time.Duration
		for range 3 {
			r := badRun(t, e, []byte("gcr.io\n"), "get")
			badAssertOneLine(t, r, true, "credentials not found in native keychain")
			times = append(times, r.Elapsed)
		}
		best := slices.Min(times)
		t.Logf("metadata blackholed: not found in %v (runs: %v), limit %v", best.Round(time.Millisecond), times, limit)
		if best > limit {
			t.Errorf("not found took %v, want at most %v", best, limit)
		}
	})

	t.Run("500", func(t *testing.T) {
		t.Parallel()
		m := fake.NewMetadata(t, email)
		m.FailWith(http.StatusInternalServerError)
		e := NewEnv(t)
		e.Set("GCE_METADATA_HOST", m.Host())
		r := badRun(t, e, []byte("gcr.io\n"), "get")
		t.Logf("metadata 500: exit %d in %v after %d request(s)", r.Code, r.Elapsed.Round(time.Millisecond), m.Count())
		badAssertOneLine(t, r, true, "metadata server", "500")
		if strings.Contains(r.Stdout, "credentials not found") {
			t.Errorf("a failing metadata server was reported as not found: %q", r.Stdout)
		}
	})

	t.Run("slow 500ms", func(t *testing.T) {
		t.Parallel()
		m := fake.NewMetadata(t, email)
		m.SetLatency(500 * time.Millisecond)
		e := NewEnv(t)
		e.Set("GCE_METADATA_HOST", m.Host())
		r, tok := faultGet(t, e)
		t.Logf("metadata with 500 ms latency: exit %d in %v after %d request(s)", r.Code, r.Elapsed.Round(time.Millisecond), m.Count())
		if r.Code != 0 || !m.Issued(tok) {
			t.Errorf("get via a slow metadata server: exit %d %q; want its token", r.Code, r.Stdout)
		}
	})
}

// faultReadOnly makes dir unwritable even for root: chmod 0500 as a normal
// user, the immutable attribute (chattr +i) as root. It skips the test if
// neither works here.
func faultReadOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("SKIP: running as root, which ignores chmod, and chattr +i failed (%v: %s); the read-only %s case did not run", err, strings.TrimSpace(string(out)), filepath.Base(dir))
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
	if f, err := os.CreateTemp(dir, "probe"); err == nil {
		f.Close()
		os.Remove(f.Name())
		t.Skipf("SKIP: %s stays writable despite chattr +i", dir)
	}
}

func TestFaultDisk(t *testing.T) {
	t.Parallel()

	cacheCases := []struct {
		name  string
		spoil func(t *testing.T, e *Env)
	}{
		{"cache home is a regular file", func(t *testing.T, e *Env) {
			if err := os.WriteFile(e.CacheHome, []byte("not a dir"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"cache dir is a regular file", func(t *testing.T, e *Env) {
			if err := os.MkdirAll(e.CacheHome, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(e.CacheHome, "docker-credential-gcp"), []byte("not a dir"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"cache dir is read-only", func(t *testing.T, e *Env) {
			dir := filepath.Join(e.CacheHome, "docker-credential-gcp")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			faultReadOnly(t, dir)
		}},
	}
	for _, c := range cacheCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, g := faultKeyEnv(t)
			c.spoil(t, e)
			for i := range 2 {
				r, tok := faultGet(t, e)
				t.Logf("%s: get %d: exit %d in %v", c.name, i+1, r.Code, r.Elapsed.Round(time.Millisecond))
				faultWantToken(t, g, r, tok)
				if r.Stderr != "" {
					t.Errorf("get printed to stderr: %q", r.Stderr)
				}
			}
			t.Logf("%s: %d token requests for 2 gets (no cache to share)", c.name, g.Count("jwt"))
		})
	}

	const entry = `{"ServerURL":"us.gcr.io","Username":"oauth2accesstoken","Secret":"ya29.new"}`
	t.Run("config dir is read-only: store", func(t *testing.T) {
		t.Parallel()
		e := badEnvWithStore(t)
		dir := filepath.Join(e.ConfigHome, "docker-credential-gcp")
		faultReadOnly(t, dir)
		before := badSnapshot(t, filepath.Dir(e.Home))
		r := badRun(t, e, []byte(entry), "store")
		badAssertOneLine(t, r, true, "credentials.json")
		badAssertUnchanged(t, before, badSnapshot(t, filepath.Dir(e.Home)))
		if list := e.Run("", "list"); strings.TrimSpace(list.Stdout) != `{"gcr.io":"oauth2accesstoken"}` {
			t.Errorf("list after the failed store = %q; want the existing entry only", list.Stdout)
		}
	})
	t.Run("config dir path runs through a regular file: store", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		if err := os.WriteFile(e.ConfigHome, []byte("a file, not a dir"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := badSnapshot(t, filepath.Dir(e.Home))
		r := badRun(t, e, []byte(entry), "store")
		badAssertOneLine(t, r, true, e.ConfigHome, "not a directory")
		badAssertUnchanged(t, before, badSnapshot(t, filepath.Dir(e.Home)))
	})
}

// TestFaultConcurrentStore starts 32 helper processes at once on one store
// file: stores of new hosts, erases of stored ones, gets of a stored token
// and gets that mint. No update may be lost, the file must stay valid JSON
// and the 8 minting gets must share one grant.
func TestFaultConcurrentStore(t *testing.T) {
	t.Parallel()
	e, g := faultKeyEnv(t)
	want := map[string]string{"keep.gcr.io": "oauth2accesstoken"}
	pre := []string{"keep.gcr.io"}
	for i := 1; i < 32; i += 4 {
		pre = append(pre, fmt.Sprintf("e%d.gcr.io", i))
	}
	for _, host := range pre {
		r := e.Run(`{"ServerURL":"`+host+`","Username":"oauth2accesstoken","Secret":"ya29.`+host+`"}`, "store")
		if r.Code != 0 {
			t.Fatalf("store %s: %q", host, r.Stdout)
		}
	}

	type job struct {
		action, stdin, host string
		cmd                 *exec.Cmd
		out                 strings.Builder
	}
	jobs := make([]*job, 32)
	for i := range jobs {
		j := &job{}
		switch i % 4 {
		case 0:
			j.action, j.host = "store", fmt.Sprintf("s%d.gcr.io", i)
			j.stdin = `{"ServerURL":"https://` + j.host + `","Username":"oauth2accesstoken","Secret":"ya29.` + j.host + `"}`
			want[j.host] = "oauth2accesstoken"
		case 1:
			j.action, j.host = "erase", fmt.Sprintf("e%d.gcr.io", i)
			j.stdin = j.host
		case 2:
			j.action, j.host = "get", "keep.gcr.io"
			j.stdin = j.host
		case 3:
			j.action, j.host = "get", "gcr.io"
			j.stdin = j.host
		}
		j.cmd = exec.Command(binary, j.action)
		j.cmd.Env = e.Environ()
		if j.action == "erase" {
			// erase also drops the cached token of the credential the
			// host would use; without a key here it has none to drop,
			// so the minting gets can show that they share one grant.
			j.cmd.Env = slices.DeleteFunc(j.cmd.Env, func(kv string) bool {
				return strings.HasPrefix(kv, "GOOGLE_APPLICATION_CREDENTIALS=")
			})
		}
		j.cmd.Stdin = strings.NewReader(j.stdin)
		j.cmd.Stdout, j.cmd.Stderr = &j.out, &j.out
		jobs[i] = j
	}
	start := time.Now()
	for _, j := range jobs {
		if err := j.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, j := range jobs {
		if err := j.cmd.Wait(); err != nil {
			t.Errorf("%s %s: %v: %s", j.action, j.host, err, j.out.String())
			continue
		}
		if j.action == "get" {
			var c struct{ Secret string }
			_ = json.Unmarshal([]byte(j.out.String()), &c)
			if j.host == "keep.gcr.io" && c.Secret != "ya29.keep.gcr.io" {
				t.Errorf("get keep.gcr.io = %q; want the stored token", j.out.String())
			}
			if _, ok := g.Issued(c.Secret); j.host == "gcr.io" && !ok {
				t.Errorf("get gcr.io = %q; want a minted token", j.out.String())
			}
		}
	}
	t.Logf("32 concurrent store/erase/get processes finished in %v; %d token request(s) for 8 cold gets", time.Since(start).Round(time.Millisecond), g.Count("jwt"))

	path := filepath.Join(e.ConfigHome, "docker-credential-gcp", "credentials.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Credentials map[string]struct{ Username, Secret string }
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("store file is not valid JSON after the storm: %v\n%s", err, data)
	}
	got := map[string]string{}
	for host, en := range file.Credentials {
		got[host] = en.Username
		if en.Secret != "ya29."+host {
			t.Errorf("entry %s holds secret %q, want ya29.%s", host, en.Secret, host)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("store holds %v\nwant        %v", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("store file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("8 concurrent cold gets made %d token requests, want 1", n)
	}
	r := e.Run("", "list")
	var listed map[string]string
	if err := json.Unmarshal([]byte(r.Stdout), &listed); err != nil || fmt.Sprint(listed) != fmt.Sprint(want) {
		t.Errorf("list = %q (%v), want %v", r.Stdout, err, want)
	}
}
