package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	httpsignatures "github.com/99designs/httpsignatures-go"
	"github.com/drone/drone-go/drone"
	"github.com/drone/drone-go/plugin/registry"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

const testDroneSecret = "0123456789abcdef0123456789abcdef"

// syncBuffer is a bytes.Buffer safe for a server goroutine to write while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// droneServer is a drone-registry run in-process for a test.
type droneServer struct {
	endpoint string
	log      *syncBuffer
	stop     context.CancelFunc
	done     chan error
}

var listeningAddr = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startDrone runs drone-registry with args on a free loopback port and
// waits until it logs the address it listens on.
func startDrone(t *testing.T, args ...string) *droneServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &droneServer{log: &syncBuffer{}, stop: cancel, done: make(chan error, 1)}
	args = append([]string{"--bind", "127.0.0.1:0"}, args...)
	go func() { s.done <- droneRegistry(ctx, args, IO{In: strings.NewReader(""), Out: io.Discard, Err: s.log}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			t.Error("drone-registry did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningAddr.FindStringSubmatch(s.log.String()); m != nil {
			s.endpoint = "http://" + m[1]
			return s
		}
		select {
		case err := <-s.done:
			t.Fatalf("drone-registry exited early: %v\nlog:\n%s", err, s.log)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("drone-registry never logged its address; log:\n%s", s.log)
	return nil
}

// droneEnv is serveEnv with the Drone settings cleared, then DRONE_SECRET set.
func droneEnv(t *testing.T, secret string) (*fake.Google, string) {
	t.Helper()
	g, email := serveEnv(t)
	t.Setenv("DRONE_BIND", "")
	t.Setenv("DRONE_SECRET", secret)
	return g, email
}

func droneRequest() *registry.Request {
	return &registry.Request{
		Repo:  drone.Repo{Slug: "octocat/hello-world", Namespace: "octocat", Name: "hello-world"},
		Build: drone.Build{Number: 42},
	}
}

func listCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDroneRegistryServesTokensForDefaultHosts(t *testing.T) {
	g, email := droneEnv(t, testDroneSecret)
	s := startDrone(t)

	regs, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), droneRequest())
	if err != nil {
		t.Fatalf("List: %v\nlog:\n%s", err, s.log)
	}
	var hosts []string
	for _, r := range regs {
		hosts = append(hosts, r.Address)
		if r.Username != "oauth2accesstoken" {
			t.Errorf("%s: username %q, want oauth2accesstoken", r.Address, r.Username)
		}
		issued, ok := g.Issued(r.Password)
		if !ok {
			t.Errorf("%s: password is not a token the fake Google endpoint issued", r.Address)
		} else if issued.Principal != email {
			t.Errorf("%s: token minted for %q, want %q", r.Address, issued.Principal, email)
		}
		if strings.Contains(s.log.String(), r.Password) {
			t.Errorf("the log contains the token")
		}
	}
	if !slices.Equal(hosts, helper.DefaultRegistries) {
		t.Errorf("hosts = %v, want %v", hosts, helper.DefaultRegistries)
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d token mints for one request over %d hosts, want 1", n, len(hosts))
	}
	log := s.log.String()
	for _, want := range []string{"repo=octocat/hello-world", "build=42", "hosts=" + strings.Join(helper.DefaultRegistries, ",")} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestDroneRegistryServesChosenHosts(t *testing.T) {
	g, _ := droneEnv(t, "")
	s := startDrone(t, "--secret-file", writeSecretFile(t, "  "+testDroneSecret+"\n"), "--registries", "EU.GCR.IO,europe-docker.pkg.dev")

	regs, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), droneRequest())
	if err != nil {
		t.Fatalf("List: %v\nlog:\n%s", err, s.log)
	}
	var hosts []string
	for _, r := range regs {
		hosts = append(hosts, r.Address)
		if _, ok := g.Issued(r.Password); !ok {
			t.Errorf("%s: password is not an issued token", r.Address)
		}
	}
	if want := []string{"eu.gcr.io", "europe-docker.pkg.dev"}; !slices.Equal(hosts, want) {
		t.Errorf("hosts = %v, want %v", hosts, want)
	}
}

func TestDroneRegistryRejectsWrongSecret(t *testing.T) {
	g, _ := droneEnv(t, testDroneSecret)
	s := startDrone(t)

	regs, err := registry.Client(s.endpoint, "not-the-secret-not-the-secret", false).List(listCtx(t), droneRequest())
	if err == nil {
		t.Fatalf("List with a wrong secret succeeded: %+v", regs)
	}
	var derr *drone.Error
	if !errors.As(err, &derr) || derr.Code != http.StatusBadRequest {
		t.Errorf("error = %v, want a 400 from the extension", err)
	}
	for _, r := range regs {
		if r.Password != "" {
			t.Errorf("a password was returned for %s", r.Address)
		}
	}
	if n := g.Count("jwt"); n != 0 {
		t.Errorf("%d tokens minted for a request with a wrong secret, want 0", n)
	}
	if !strings.Contains(s.log.String(), "rejected request") {
		t.Errorf("the rejection is not logged:\n%s", s.log)
	}
}

func TestDroneRegistryRejectsReplayedRequest(t *testing.T) {
	g, _ := droneEnv(t, testDroneSecret)
	s := startDrone(t)

	// Correctly signed requests whose signed Date is an hour old, as a
	// replay of a captured request would be, or is no date at all, so it
	// could be replayed forever.
	for _, date := range []string{
		time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat),
		"not-a-date",
		time.Now().UTC().Format(time.RFC3339),
		"2001-01-01T00:00:00Z",
	} {
		req, err := http.NewRequest(http.MethodPost, s.endpoint, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", registry.V1)
		req.Header.Set("Date", date)
		if err := httpsignatures.DefaultSha256Signer.AuthRequest("hmac-key", testDroneSecret, req); err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("Date %q: status %d (%s), want 400", date, res.StatusCode, body)
		}
	}
	if n := g.Count("jwt"); n != 0 {
		t.Errorf("%d tokens minted for replayable requests, want 0", n)
	}
}

func TestDroneGuardRefusesUndatedRequest(t *testing.T) {
	// The signature check behind the guard refuses a request without a
	// Date today, but only as a side effect of the signing library; the
	// guard must refuse it on its own.
	var log syncBuffer
	called := false
	var traced []string
	guard := droneGuard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }), slog.New(slog.NewTextHandler(&log, nil)),
		func(_, why string) { traced = append(traced, why) })
	for _, date := range []string{"", "not-a-date"} {
		called = false
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
		if date != "" {
			req.Header.Set("Date", date)
		}
		rec := httptest.NewRecorder()
		guard.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || called {
			t.Errorf("Date %q: status %d, handler called %v; want 400 before the handler", date, rec.Code, called)
		}
		if !strings.Contains(rec.Body.String(), "Date") {
			t.Errorf("Date %q: the refusal %q does not name the Date header", date, rec.Body)
		}
	}
	if len(traced) != 2 || !strings.Contains(traced[0], "Date") {
		t.Errorf("refusals traced: %q, want both, naming the Date header", traced)
	}
	// What drone-go's client sends, and the signing library's own default.
	for _, date := range []string{time.Now().UTC().Format(http.TimeFormat), time.Now().UTC().Format(time.RFC1123)} {
		called = false
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
		req.Header.Set("Date", date)
		guard.ServeHTTP(httptest.NewRecorder(), req)
		if !called {
			t.Errorf("Date %q: refused, want it passed on to the signature check", date)
		}
	}
}

func TestDroneRegistryConcurrentRequestsMintOnce(t *testing.T) {
	g, _ := droneEnv(t, testDroneSecret)
	s := startDrone(t)

	const n = 50
	client := registry.Client(s.endpoint, testDroneSecret, false)
	ctx := listCtx(t)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			regs, err := client.List(ctx, droneRequest())
			if err == nil && (len(regs) == 0 || regs[0].Password == "") {
				err = fmt.Errorf("no credentials in %+v", regs)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("List: %v", err)
		}
	}
	if got := g.Count("jwt"); got != 1 {
		t.Errorf("%d concurrent requests minted %d tokens, want 1", n, got)
	}
}

func TestDroneRegistryMintsPer1000Requests(t *testing.T) {
	g, _ := droneEnv(t, testDroneSecret)
	s := startDrone(t)

	const requests, workers = 1000, 8
	client := registry.Client(s.endpoint, testDroneSecret, false)
	ctx := listCtx(t)
	work := make(chan int)
	var failed sync.Map
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := client.List(ctx, droneRequest()); err != nil {
					failed.Store(i, err)
				}
			}
		}()
	}
	start := time.Now()
	for i := range requests {
		work <- i
	}
	close(work)
	wg.Wait()
	failed.Range(func(k, v any) bool {
		t.Errorf("request %v: %v", k, v)
		return false
	})
	mints := g.Count("jwt")
	t.Logf("%d Drone registry requests (%d hosts each) in %s: %d token mint(s)", requests, len(helper.DefaultRegistries), time.Since(start).Round(time.Millisecond), mints)
	if mints > 1 {
		t.Errorf("%d mints per %d requests, want <= 1", mints, requests)
	}
}

func TestDroneRegistryTokenErrorIsReportedNotLeaked(t *testing.T) {
	g, _ := droneEnv(t, testDroneSecret)
	s := startDrone(t)

	g.FailNext(1, http.StatusBadRequest, nil, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	regs, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), droneRequest())
	if err == nil {
		t.Fatalf("List succeeded with a failing token endpoint: %+v", regs)
	}
	if !strings.Contains(s.log.String(), "registry request failed") {
		t.Errorf("the failure is not logged:\n%s", s.log)
	}

	// The next request mints and succeeds.
	if _, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), droneRequest()); err != nil {
		t.Errorf("List after the endpoint recovered: %v", err)
	}
}

func TestDroneRegistryHealthz(t *testing.T) {
	droneEnv(t, testDroneSecret)
	s := startDrone(t)

	res, err := http.Get(s.endpoint + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\"", res.StatusCode, body)
	}
}

func TestDroneRegistryStopsCleanly(t *testing.T) {
	droneEnv(t, testDroneSecret)
	s := startDrone(t)

	s.stop()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("drone-registry returned %v on shutdown, want nil", err)
		}
		s.done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("drone-registry did not stop")
	}
	if _, err := http.Get(s.endpoint + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

func TestDroneRegistryRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		args   []string
		want   string
	}{
		{name: "no secret", want: "DRONE_SECRET is not set"},
		{name: "short secret", secret: "too-short", want: "shorter than 16"},
		{name: "short secret file", secret: testDroneSecret, args: []string{"--secret-file", "SHORT"}, want: "shorter than 16"},
		{name: "missing secret file", secret: testDroneSecret, args: []string{"--secret-file", "/nonexistent/secret"}, want: "reading the secret file"},
		{name: "foreign registry", secret: testDroneSecret, args: []string{"--registries", "gcr.io,gcr.io.evil.com"}, want: "not a Google registry"},
		{name: "bad bind", secret: testDroneSecret, args: []string{"--bind", "127.0.0.1:99999"}, want: "listening on"},
		{name: "unknown flag", secret: testDroneSecret, args: []string{"--nope"}, want: "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := droneEnv(t, tt.secret)
			args := slices.Clone(tt.args)
			for i, a := range args {
				if a == "SHORT" {
					args[i] = writeSecretFile(t, "short\n")
				}
			}
			var stderr syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := droneRegistry(ctx, args, IO{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
			if n := g.Count("jwt"); n != 0 {
				t.Errorf("%d tokens minted, want 0", n)
			}
		})
	}
}

func TestDroneRegistryHelp(t *testing.T) {
	droneEnv(t, "")
	var stdout syncBuffer
	if err := DroneRegistry([]string{"--help"}, IO{In: strings.NewReader(""), Out: &stdout, Err: io.Discard}); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"DRONE_SECRET", "DRONE_BIND", "--registries", "--secret-file", "--bind", "DRONE_REGISTRY_PLUGIN_ENDPOINT"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func writeSecretFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "drone-secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// drone-go signs the Digest header but never compares it with the body, so
// without a check a captured request's body could be swapped at will.
func TestDroneRegistryRejectsBodyNotMatchingDigest(t *testing.T) {
	g, _ := droneEnv(t, testDroneSecret)
	s := startDrone(t)

	const signed = `{"repo":{"slug":"octocat/hello-world"},"build":{"number":42}}`
	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"matching body", signed, http.StatusOK},
		{"swapped body", `{"repo":{"slug":"mallory/forged"},"build":{"number":1}}`, http.StatusBadRequest},
	} {
		res, err := http.DefaultClient.Do(fake.DroneRequest(t, s.endpoint, testDroneSecret, signed, tt.body))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.want {
			t.Errorf("%s: status %d (%s), want %d", tt.name, res.StatusCode, body, tt.want)
		}
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d token mints, want 1 (for the matching body only)", n)
	}
	if log := s.log.String(); strings.Contains(log, "mallory/forged") || !strings.Contains(log, "does not match the signed Digest") {
		t.Errorf("the swapped body was served or its rejection not logged:\n%s", log)
	}
}

// Without a usable token cache (DOCKER_CREDENTIAL_GCP_NO_CACHE, or a
// read-only container without HOME) a request still mints once for all
// the hosts it answers, not once per host.
func TestDroneRegistryMintsOncePerRequestWithoutCache(t *testing.T) {
	g, _ := droneEnv(t, testDroneSecret)
	t.Setenv("DOCKER_CREDENTIAL_GCP_NO_CACHE", "1")
	s := startDrone(t)

	regs, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), droneRequest())
	if err != nil {
		t.Fatalf("List: %v\nlog:\n%s", err, s.log)
	}
	if len(regs) != len(helper.DefaultRegistries) {
		t.Fatalf("%d registries, want %d", len(regs), len(helper.DefaultRegistries))
	}
	for _, r := range regs {
		if r.Password != regs[0].Password {
			t.Errorf("%s got another token than %s", r.Address, regs[0].Address)
		}
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d token mints for one request over %d hosts without a cache, want 1", n, len(regs))
	}
}
