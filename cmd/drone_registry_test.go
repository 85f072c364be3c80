package cmd

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

func octocatRequest() *registry.Request {
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

	regs, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), octocatRequest())
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

	regs, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), octocatRequest())
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

	regs, err := registry.Client(s.endpoint, "not-the-secret-not-the-secret", false).List(listCtx(t), octocatRequest())
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

// droneDo sends req and returns the status, the Content-Encoding and the body.
func droneDo(t *testing.T, req *http.Request) (int, string, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Content-Encoding"), body
}

// octocatBody is octocatRequest as Drone posts it.
const octocatBody = `{"repo":{"slug":"octocat/hello-world"},"build":{"number":42}}`

func TestDroneRegistryRejectsReplayedRequest(t *testing.T) {
	g, _ := droneEnv(t, testDroneSecret)
	s := startDrone(t)

	// Correctly signed requests whose signed Date is an hour old, as a
	// replay of a captured request would be, or is no date at all, so it
	// could be replayed forever.
	for _, date := range []string{
		time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat),
		time.Now().Add(time.Hour).UTC().Format(http.TimeFormat),
		"not-a-date",
		time.Now().UTC().Format(time.RFC3339),
		"2001-01-01T00:00:00Z",
	} {
		req := fake.DroneRequest(t, s.endpoint, testDroneSecret, octocatBody, octocatBody)
		req.Header.Set("Date", date)
		fake.SignDroneRequest(t, req, testDroneSecret, fake.DroneSignedHeaders...)
		if code, _, body := droneDo(t, req); code != http.StatusBadRequest || !strings.Contains(string(body), "Date") {
			t.Errorf("Date %q: status %d (%s), want 400 naming the Date", date, code, body)
		}
	}
	// What drone-go's client sends, and the signing library's own default.
	for _, date := range []string{time.Now().UTC().Format(http.TimeFormat), time.Now().UTC().Format(time.RFC1123)} {
		req := fake.DroneRequest(t, s.endpoint, testDroneSecret, octocatBody, octocatBody)
		req.Header.Set("Date", date)
		fake.SignDroneRequest(t, req, testDroneSecret, fake.DroneSignedHeaders...)
		if code, _, body := droneDo(t, req); code != http.StatusOK {
			t.Errorf("Date %q: status %d (%s), want 200", date, code, body)
		}
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d tokens minted, want 1 (for the requests of today only)", n)
	}
}

// Only a request signed with the secret, by HMAC-SHA256, over its Date and
// Digest (and whatever else it lists), as received, is answered; each
// refusal says why, and no token is looked up for it.
func TestDroneRegistryChecksSignature(t *testing.T) {
	g, _ := droneEnv(t, testDroneSecret)
	s := startDrone(t)

	signed := func(headers ...string) func(*http.Request) {
		return func(req *http.Request) { fake.SignDroneRequest(t, req, testDroneSecret, headers...) }
	}
	sigHeader := func(value string) func(*http.Request) {
		return func(req *http.Request) { req.Header.Set("Signature", value) }
	}
	cases := []struct {
		name   string
		change func(*http.Request)
		want   string // "" for a 200
	}{
		{"as drone-go signs", func(*http.Request) {}, ""},
		{"in the Authorization header", func(req *http.Request) {
			sig := req.Header.Get("Signature")
			req.Header.Del("Signature")
			req.Header.Set("Authorization", "Signature "+sig)
		}, ""},
		{"also over (request-target)", signed(append([]string{"(request-target)"}, fake.DroneSignedHeaders...)...), ""},
		{"not signed", func(req *http.Request) { req.Header.Del("Signature") }, "not signed"},
		{"wrong secret", func(req *http.Request) {
			fake.SignDroneRequest(t, req, "not-the-secret-not-the-secret", fake.DroneSignedHeaders...)
		}, "invalid signature"},
		{"a signed header changed", func(req *http.Request) { req.Header.Set("Accept", "text/plain") }, "invalid signature"},
		{"a signed header removed", func(req *http.Request) { req.Header.Del("Content-Type") }, "missing"},
		{"Date not signed", signed("accept", "digest"), "does not cover the date header"},
		{"Digest not signed", signed("accept", "date"), "does not cover the digest header"},
		{"hmac-sha1", func(req *http.Request) {
			req.Header.Del("Signature")
			if err := httpsignatures.NewSigner(httpsignatures.AlgorithmHmacSha1, fake.DroneSignedHeaders...).SignRequest("hmac-key", testDroneSecret, req); err != nil {
				t.Fatal(err)
			}
		}, "not hmac-sha256"},
		{"signature not base64", sigHeader(`keyId="hmac-key",algorithm="hmac-sha256",headers="date digest",signature="%%%"`), "not base64"},
		{"unknown parameter", sigHeader(`keyId="hmac-key",algorithm="hmac-sha256",headers="date digest",signature="AAAA",extra="x"`), "malformed"},
		{"parameter twice", sigHeader(`keyId="hmac-key",algorithm="hmac-sha256",headers="date",headers="date digest",signature="AAAA"`), "malformed"},
		{"unquoted", sigHeader(`keyId=hmac-key,algorithm=hmac-sha256`), "malformed"},
		{"unterminated", sigHeader(`keyId="hmac-key",algorithm="hmac-sha256`), "malformed"},
		{"junk between", sigHeader(`keyId="hmac-key" algorithm="hmac-sha256"`), "malformed"},
	}
	refused := 0
	for _, tt := range cases {
		if tt.want != "" {
			refused++
		}
		req := fake.DroneRequest(t, s.endpoint, testDroneSecret, octocatBody, octocatBody)
		tt.change(req)
		before := g.Count("any")
		code, _, body := droneDo(t, req)
		switch {
		case tt.want == "" && code != http.StatusOK:
			t.Errorf("%s: status %d (%s), want 200", tt.name, code, body)
		case tt.want != "" && (code != http.StatusBadRequest || !strings.Contains(string(body), tt.want)):
			t.Errorf("%s: status %d (%s), want 400 saying %q", tt.name, code, body, tt.want)
		case tt.want != "" && g.Count("any") != before:
			t.Errorf("%s: a refused request caused %d token requests", tt.name, g.Count("any")-before)
		}
	}
	if n := strings.Count(s.log.String(), "rejected request"); n != refused {
		t.Errorf("%d rejections logged, want %d:\n%s", n, refused, s.log)
	}
}

// A request that asks for an encrypted answer (Accept-Encoding: aesgcm)
// gets one, sealed as drone-go's handler seals it, which only the secret
// opens; with a secret too short to key AES-256 it gets an error, never
// the tokens in the clear.
func TestDroneRegistryEncryptsOnRequest(t *testing.T) {
	for _, secret := range []string{testDroneSecret, testDroneSecret[:20]} {
		g, _ := droneEnv(t, secret)
		s := startDrone(t)
		req := fake.DroneRequest(t, s.endpoint, secret, octocatBody, octocatBody)
		req.Header.Set("Accept-Encoding", "aesgcm")
		fake.SignDroneRequest(t, req, secret, fake.DroneSignedHeaders...)
		code, encoding, body := droneDo(t, req)
		if len(secret) < 32 {
			if code != http.StatusInternalServerError || !strings.Contains(string(body), "at least 32 bytes") || strings.Contains(string(body), "ya29.") {
				t.Errorf("%d-byte secret: status %d (%s), want 500 saying the secret is too short", len(secret), code, body)
			}
			continue
		}
		if code != http.StatusOK || encoding != "aesgcm" || strings.Contains(string(body), "gcr.io") {
			t.Fatalf("status %d, Content-Encoding %q, body %q; want 200, aesgcm, sealed", code, encoding, body)
		}
		block, err := aes.NewCipher([]byte(secret[:32]))
		if err != nil {
			t.Fatal(err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := gcm.Open(nil, body[:gcm.NonceSize()], body[gcm.NonceSize():], nil)
		if err != nil {
			t.Fatalf("opening the answer with the secret: %v", err)
		}
		var regs []drone.Registry
		if err := json.Unmarshal(plain, &regs); err != nil || len(regs) != len(helper.DefaultRegistries) {
			t.Fatalf("opened answer %q: %v, want %d registries", plain, err, len(helper.DefaultRegistries))
		}
		if _, ok := g.Issued(regs[0].Password); !ok {
			t.Errorf("%s: the password is not an issued token", regs[0].Address)
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
			regs, err := client.List(ctx, octocatRequest())
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
				if _, err := client.List(ctx, octocatRequest()); err != nil {
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
	regs, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), octocatRequest())
	if err == nil {
		t.Fatalf("List succeeded with a failing token endpoint: %+v", regs)
	}
	if !strings.Contains(s.log.String(), "registry request failed") {
		t.Errorf("the failure is not logged:\n%s", s.log)
	}

	// The next request mints and succeeds.
	if _, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), octocatRequest()); err != nil {
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
		if code, _, body := droneDo(t, fake.DroneRequest(t, s.endpoint, testDroneSecret, signed, tt.body)); code != tt.want {
			t.Errorf("%s: status %d (%s), want %d", tt.name, code, body, tt.want)
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

	regs, err := registry.Client(s.endpoint, testDroneSecret, false).List(listCtx(t), octocatRequest())
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
