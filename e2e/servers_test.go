package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drone/drone-go/drone"
	"github.com/drone/drone-go/plugin/registry"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// srvSecret is a DRONE_SECRET of the length `openssl rand -hex 16` gives.
const srvSecret = "0123456789abcdef0123456789abcdef"

// srvProc is a long-running docker-credential-gcp (drone-registry,
// dockerconfig --refresh) whose stderr log is collected line by line.
type srvProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited

	mu    sync.Mutex
	lines []string
	code  int
}

// srvStart starts the binary with args in e; t.Cleanup kills it if the
// test has not stopped it.
func srvStart(t *testing.T, e *Env, args ...string) *srvProc {
	t.Helper()
	p := &srvProc{cmd: e.Command(binary, args...), done: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		err := p.cmd.Wait()
		p.mu.Lock()
		p.code = p.cmd.ProcessState.ExitCode()
		if err != nil && p.code == 0 {
			p.code = -1
		}
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// log is everything the process wrote to stderr so far.
func (p *srvProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLines waits until at least n stderr lines match re and returns the
// submatches of the n-th one.
func (p *srvProc) waitLines(t *testing.T, re *regexp.Regexp, n int, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		var matches [][]string
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				matches = append(matches, m)
			}
		}
		p.mu.Unlock()
		if len(matches) >= n {
			return matches[n-1]
		}
		select {
		case <-p.done:
			t.Fatalf("process exited (code %d) before logging %q #%d:\n%s", p.exitCode(), re, n, p.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q #%d within %s:\n%s", re, n, timeout, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *srvProc) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// stop sends SIGTERM and returns the exit code and how long the exit took.
func (p *srvProc) stop(t *testing.T, limit time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("still running %s after SIGTERM:\n%s", limit, p.log())
	}
	return p.exitCode(), time.Since(start)
}

// srvRunBounded runs the binary to completion, killing it after limit
// (a server that should have refused to start would otherwise serve forever).
func srvRunBounded(t *testing.T, e *Env, limit time.Duration, args ...string) Result {
	t.Helper()
	c := e.Command(binary, args...)
	var out, errOut strings.Builder
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(limit, func() { c.Process.Kill() })
	defer timer.Stop()
	err := c.Wait()
	r := Result{Stdout: out.String(), Stderr: errOut.String(), Code: c.ProcessState.ExitCode()}
	if err != nil && r.Code == -1 {
		t.Fatalf("%v did not exit within %s: %v\n%s", args, limit, err, r.Stderr)
	}
	return r
}

var srvListening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// srvDrone starts drone-registry on a free loopback port and returns it
// with its endpoint URL.
func srvDrone(t *testing.T, e *Env, args ...string) (*srvProc, string) {
	t.Helper()
	p := srvStart(t, e, append([]string{"drone-registry"}, args...)...)
	addr := p.waitLines(t, srvListening, 1, 10*time.Second)[1]
	return p, "http://" + addr
}

func srvDroneRequest(n int) *registry.Request {
	return &registry.Request{
		Repo:  drone.Repo{Slug: "octocat/hello-world", Namespace: "octocat", Name: "hello-world"},
		Build: drone.Build{Number: int64(n), Event: "push"},
	}
}

func TestSrvDroneRegistry(t *testing.T) {
	t.Parallel()
	const email = "drone@proj.iam.gserviceaccount.com"
	g := fake.NewGoogle(t)
	e := NewEnv(t)
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(t, t.TempDir(), email))
	e.Set("DRONE_SECRET", srvSecret)
	p, endpoint := srvDrone(t, e, "--bind", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The runner's own client with the wrong secret gets nothing, and
	// nothing is minted for it.
	if regs, err := registry.Client(endpoint, "ffffffffffffffffffffffffffffffff", false).List(ctx, srvDroneRequest(1)); err == nil {
		t.Errorf("wrong secret: got %d registries, want an error", len(regs))
	}
	if n := g.Count("any"); n != 0 {
		t.Errorf("wrong secret: %d token requests", n)
	}

	// 50 concurrent cold requests, as a busy runner sends them: one mint.
	client := registry.Client(endpoint, srvSecret, false)
	const concurrent = 50
	results := make([][]*drone.Registry, concurrent)
	errs := make([]error, concurrent)
	var wg sync.WaitGroup
	for i := range concurrent {
		wg.Go(func() { results[i], errs[i] = client.List(ctx, srvDroneRequest(i)) })
	}
	wg.Wait()
	var tok string
	for i, regs := range results {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		var hosts []string
		for _, r := range regs {
			hosts = append(hosts, r.Address)
			if r.Username != "oauth2accesstoken" {
				t.Errorf("%s: username %q", r.Address, r.Username)
			}
			if tok == "" {
				tok = r.Password
				cmdsIssued(t, g, tok, email)
			} else if r.Password != tok {
				t.Errorf("%s: a different token in one cache lifetime", r.Address)
			}
		}
		slices.Sort(hosts)
		if want := slices.Sorted(slices.Values(cmdsDefaultHosts)); !slices.Equal(hosts, want) {
			t.Fatalf("request %d: hosts %v, want %v", i, hosts, want)
		}
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d concurrent cold requests made %d jwt grants, want 1", concurrent, n)
	}

	// A busy hour: 1000 more requests, 50 at a time, still that one mint.
	const total = 1000
	start := time.Now()
	jobs := make(chan int)
	var failed sync.Map
	for range concurrent {
		wg.Go(func() {
			for i := range jobs {
				if _, err := client.List(ctx, srvDroneRequest(i)); err != nil {
					failed.Store(i, err)
				}
			}
		})
	}
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("request %v: %v", k, v); return false })
	t.Logf("drone-registry: %d requests (%d concurrent) in %s: %d jwt grant(s) in total with the first %d", total, concurrent, time.Since(start).Round(time.Millisecond), g.Count("jwt"), concurrent)
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d jwt grants after %d requests, want 1", n, total+concurrent)
	}

	resp, err := http.Get(endpoint + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %s", resp.Status)
	}

	code, took := p.stop(t, 5*time.Second)
	t.Logf("drone-registry stopped %s after SIGTERM", took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0:\n%s", code, p.log())
	}
	if took > 2*time.Second {
		t.Errorf("took %s to stop", took)
	}
	log := p.log()
	if strings.Contains(log, tok) {
		t.Error("the log contains the token")
	}
	for _, want := range []string{"principal=" + email, "repo=octocat/hello-world", "msg=\"rejected request\"", "msg=\"shutting down\""} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%.2000s", want, log)
		}
	}
}

func TestSrvDroneRegistryConfig(t *testing.T) {
	t.Parallel()
	t.Run("refuses a short or missing secret", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		e.Set("DRONE_BIND", "127.0.0.1:0")
		for secret, want := range map[string]string{"short-secret": "shorter than 16", "": "DRONE_SECRET is not set"} {
			e.Set("DRONE_SECRET", secret)
			r := srvRunBounded(t, e, 10*time.Second, "drone-registry")
			if r.Code != 1 || !strings.Contains(r.Stderr, want) {
				t.Errorf("DRONE_SECRET=%q: exit %d, stderr %q", secret, r.Code, r.Stderr)
			}
			if secret != "" && strings.Contains(r.Stderr, secret) {
				t.Error("the error quotes the secret")
			}
		}
	})
	t.Run("DRONE_BIND and --secret-file", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		e.Set("DRONE_BIND", "127.0.0.1:0")
		secretFile := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(secretFile, []byte(srvSecret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p, endpoint := srvDrone(t, e, "--secret-file", secretFile, "--registries", "europe-west4-docker.pkg.dev")
		if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
			t.Errorf("DRONE_BIND ignored: %s", endpoint)
		}
		// No credentials anywhere: the request fails (Drone then pulls
		// anonymously) and the server keeps running.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := registry.Client(endpoint, srvSecret, false).List(ctx, srvDroneRequest(1)); err == nil {
			t.Error("a request without credentials succeeded")
		}
		if code, _ := p.stop(t, 5*time.Second); code != 0 {
			t.Errorf("exit %d", code)
		}
		if !strings.Contains(p.log(), "no usable Google credentials yet") {
			t.Errorf("startup does not warn about missing credentials:\n%s", p.log())
		}
	})
}

// srvKubeletResponse mirrors credentialprovider.kubelet.k8s.io/v1
// CredentialProviderResponse as the API reference documents it, decoded
// strictly so an extra or misspelt field fails.
type srvKubeletResponse struct {
	APIVersion    string `json:"apiVersion"`
	Kind          string `json:"kind"`
	CacheKeyType  string `json:"cacheKeyType"`
	CacheDuration string `json:"cacheDuration,omitempty"`
	Auth          map[string]struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auth"`
}

func srvKubelet(t *testing.T, e *Env, image string) srvKubeletResponse {
	t.Helper()
	return podRun(t, e, `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"`+image+`"}`)
}

func TestSrvKubeletCredentialProvider(t *testing.T) {
	t.Parallel()
	const email = "node@proj.iam.gserviceaccount.com"
	g := fake.NewGoogle(t)
	e := NewEnv(t)
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(t, t.TempDir(), email))

	// A registry that is not Google's: empty auth, exit 0, nothing minted.
	for _, image := range []string{"docker.io/library/alpine", "alpine:3", "quay.io/p/i", "gcr.io.evil.com/p/i"} {
		if resp := srvKubelet(t, e, image); len(resp.Auth) != 0 {
			t.Errorf("%s: auth for %v", image, resp.Auth)
		}
	}
	if n := g.Count("any"); n != 0 {
		t.Errorf("%d token requests for non-Google images", n)
	}

	for image, host := range map[string]string{
		"gcr.io/p/i:t":                "gcr.io",
		"europe-docker.pkg.dev/p/r/i": "europe-docker.pkg.dev",
	} {
		resp := srvKubelet(t, e, image)
		a, ok := resp.Auth[host]
		if len(resp.Auth) != 1 || !ok {
			t.Errorf("%s: auth %v, want one entry for %s", image, resp.Auth, host)
			continue
		}
		if a.Username != "oauth2accesstoken" {
			t.Errorf("%s: username %q", image, a.Username)
		}
		cmdsIssued(t, g, a.Password, email)
		d, err := time.ParseDuration(resp.CacheDuration)
		if err != nil || d < 50*time.Minute || d >= time.Hour {
			t.Errorf("%s: cacheDuration %q (%v), want a little under the token's hour", image, resp.CacheDuration, err)
		}
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d jwt grants for two images, want 1", n)
	}

	for name, req := range map[string]string{
		"not JSON":      "image: gcr.io/p/i",
		"empty":         "",
		"wrong version": `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1","kind":"CredentialProviderRequest","image":"gcr.io/p/i"}`,
		"no image":      `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest"}`,
	} {
		r := e.Run(req, "kubelet-credential-provider")
		if r.Code != 1 || r.Stdout != "" {
			t.Errorf("%s: exit %d, stdout %q", name, r.Code, r.Stdout)
		}
		if msg := strings.TrimSpace(r.Stderr); msg == "" || strings.Contains(msg, "\n") {
			t.Errorf("%s: stderr is not one line: %q", name, r.Stderr)
		}
	}
}

var srvWrote = regexp.MustCompile(`^wrote (\S+); token expires`)

// srvRefreshEnv starts `dockerconfig --output FILE --refresh` against a
// fake issuing two-minute tokens and waits for the first file.
func srvRefreshEnv(t *testing.T, email string) (*fake.Google, *srvProc, string, []byte) {
	t.Helper()
	g := fake.NewGoogle(t)
	g.SetLifetime(120 * time.Second)
	e := NewEnv(t)
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(t, t.TempDir(), email))
	out := filepath.Join(t.TempDir(), "drone", "config.json")
	p := srvStart(t, e, "dockerconfig", "--output", out, "--refresh", "--registries", "gcr.io,europe-docker.pkg.dev")
	p.waitLines(t, srvWrote, 1, 10*time.Second)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if m := cmdsMode(t, out); m != 0o600 {
		t.Errorf("mode %o, want 0600", m)
	}
	return g, p, out, data
}

// srvRefreshToken is the one token a refreshed config holds.
func srvRefreshToken(t *testing.T, g *fake.Google, data []byte, email string) string {
	t.Helper()
	auths := cmdsDockerConfigAuths(t, data)
	if len(auths) != 2 || auths["gcr.io"] != auths["europe-docker.pkg.dev"] {
		t.Fatalf("auths %v", auths)
	}
	tok, _ := strings.CutPrefix(auths["gcr.io"], "oauth2accesstoken:")
	cmdsIssued(t, g, tok, email)
	return tok
}

// TestSrvDockerConfigRefresh relies on the schedule following the token's
// expiry: a two-minute token is due for renewal at once, so the loop
// rewrites after its minimum wait (30 s) without any test-only knob.
func TestSrvDockerConfigRefresh(t *testing.T) {
	t.Parallel()
	const email = "refresh@proj.iam.gserviceaccount.com"
	g, p, out, first := srvRefreshEnv(t, email)
	tok1 := srvRefreshToken(t, g, first, email)

	p.waitLines(t, srvWrote, 2, 60*time.Second)
	second, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	tok2 := srvRefreshToken(t, g, second, email)
	if tok2 == tok1 {
		t.Error("the rewritten file holds the same token")
	}
	if m := cmdsMode(t, out); m != 0o600 {
		t.Errorf("mode after rewrite %o, want 0600", m)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Errorf("stray files next to the config: %v", entries)
	}
	if code, took := p.stop(t, 5*time.Second); code != 0 || took > 2*time.Second {
		t.Errorf("SIGTERM: exit %d after %s", code, took)
	}
	if log := p.log(); strings.Contains(log, tok1) || strings.Contains(log, tok2) {
		t.Error("the log contains a token")
	}
}

func TestSrvDockerConfigRefreshFailureKeepsFile(t *testing.T) {
	t.Parallel()
	const email = "refresh-fail@proj.iam.gserviceaccount.com"
	g, p, out, first := srvRefreshEnv(t, email)
	srvRefreshToken(t, g, first, email)
	g.FailNext(1, http.StatusBadRequest, nil, `{"error":"invalid_grant","error_description":"simulated outage"}`)

	p.waitLines(t, regexp.MustCompile(`refreshing .* failed, keeping the previous file, retrying in`), 1, 60*time.Second)
	if now, err := os.ReadFile(out); err != nil || string(now) != string(first) {
		t.Errorf("a failed refresh changed the file (%v)", err)
	}
	if m := cmdsMode(t, out); m != 0o600 {
		t.Errorf("mode %o", m)
	}
	if code, _ := p.stop(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}
