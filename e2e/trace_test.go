package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drone/drone-go/plugin/registry"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// traceFields are the keys every trace line carries (issue: time, pid,
// command, host, outcome, source, principal, binding, cache result,
// expiry, remaining life, requests, duration, error).
var traceFields = []string{"time", "pid", "command", "host", "outcome", "source", "principal", "binding",
	"cache", "expiry", "remaining_s", "requests", "duration_ms", "error"}

// traceLine is one parsed line of a trace, and the line as written.
type traceLine struct {
	fields map[string]any
	raw    string
}

func (l traceLine) str(key string) string  { s, _ := l.fields[key].(string); return s }
func (l traceLine) num(key string) float64 { n, _ := l.fields[key].(float64); return n }

// traceRead parses every line of the trace file at path; each must be one
// whole JSON object with every field.
func traceRead(t *testing.T, path string) []traceLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the trace: %v", err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("the trace does not end with a newline")
	}
	var out []traceLine
	for l := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("trace line is not one JSON object (%v): %q", err, l)
		}
		for _, f := range traceFields {
			if _, ok := m[f]; !ok {
				t.Errorf("trace line has no %q: %s", f, l)
			}
		}
		out = append(out, traceLine{fields: m, raw: l})
	}
	return out
}

// traceNotFound checks that r is the protocol's not-found answer.
func traceNotFound(t *testing.T, r Result) {
	t.Helper()
	if r.Code != 1 || !strings.Contains(r.Stdout, "credentials not found in native keychain") {
		t.Errorf("exit %d, stdout %q; want the protocol's not-found error", r.Code, r.Stdout)
	}
}

// traceEnv is cmdsKeyEnv tracing to a file in a private dir of its own.
func traceEnv(t *testing.T, email string) (*Env, *fake.Google, string, string) {
	t.Helper()
	e, g, key := cmdsKeyEnv(t, email)
	path := filepath.Join(t.TempDir(), "trace", "calls.jsonl")
	e.Set("DOCKER_CREDENTIAL_GCP_LOG", path)
	return e, g, key, path
}

// traceWant checks the fields of l that want names.
func traceWant(t *testing.T, what string, l traceLine, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got := l.fields[k]; got != v {
			t.Errorf("%s: %s = %v, want %v\n%s", what, k, got, v, l.raw)
		}
	}
}

// Every command writes one line with every field, telling the call's
// host, outcome, credential, cache result, expiry and requests; and none
// of the secrets any of them handled appears in the trace.
func TestTraceEveryCommandWritesItsLine(t *testing.T) {
	t.Parallel()
	const email = "tracer@proj.iam.gserviceaccount.com"
	e, g, key, path := traceEnv(t, email)
	e.Set("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", g.STSURL())
	e.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", podProvider)
	source := "GOOGLE_APPLICATION_CREDENTIALS (" + key + ")"
	var secrets []string

	secrets = append(secrets, cmdsGet(t, e, "gcr.io"))
	secrets = append(secrets, cmdsGet(t, e, "https://user:hunter2hunter2@gcr.io/v2/"))
	traceNotFound(t, e.Run("docker.io", "get"))
	storedKey := string(g.ServiceAccountKey(t, "stored@proj.iam.gserviceaccount.com"))
	storeIn, _ := json.Marshal(map[string]string{"ServerURL": "eu.gcr.io", "Username": "_json_key_base64", "Secret": base64.StdEncoding.EncodeToString([]byte(storedKey))})
	cmdsMustRun(t, e, string(storeIn), "store")
	cmdsMustRun(t, e, "", "list")
	cmdsMustRun(t, e, "eu.gcr.io", "erase")
	secrets = append(secrets, strings.TrimSpace(cmdsMustRun(t, e, "", "token").Stdout))
	auths := cmdsDockerConfigAuths(t, []byte(cmdsMustRun(t, e, "", "dockerconfig", "--registries", "gcr.io,eu.gcr.io").Stdout))
	for _, a := range auths {
		secrets = append(secrets, strings.TrimPrefix(a, "oauth2accesstoken:"))
	}
	resp := srvKubelet(t, e, "us.gcr.io/p/i:1")
	secrets = append(secrets, resp.Auth["us.gcr.io"].Password)
	podToken := podSAToken(g, "team-a", "builder")
	resp = podRun(t, e, podRequest(t, "europe-docker.pkg.dev/p/i:1", podToken, nil))
	secrets = append(secrets, podToken, resp.Auth["europe-docker.pkg.dev"].Password)

	e.Set("DRONE_SECRET", srvSecret)
	p, endpoint := srvDrone(t, e, "--bind", "127.0.0.1:0", "--registries", "gcr.io")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	regs, err := registry.Client(endpoint, srvSecret, false).List(ctx, srvDroneRequest(7))
	if err != nil || len(regs) != 1 {
		t.Fatalf("drone-registry: %d registries, %v", len(regs), err)
	}
	secrets = append(secrets, regs[0].Password)
	if _, err := registry.Client(endpoint, "ffffffffffffffffffffffffffffffff", false).List(ctx, srvDroneRequest(8)); err == nil {
		t.Error("drone-registry answered a request signed with the wrong secret")
	}
	p.stop(t, 5*time.Second)

	lines := traceRead(t, path)
	var commands []string
	for _, l := range lines {
		commands = append(commands, l.str("command"))
	}
	wantCommands := []string{"get", "get", "get", "store", "list", "erase", "token", "dockerconfig",
		"kubelet-credential-provider", "kubelet-credential-provider", "drone-registry", "drone-registry"}
	if strings.Join(commands, " ") != strings.Join(wantCommands, " ") {
		t.Fatalf("commands traced: %v, want %v", commands, wantCommands)
	}
	served := map[string]any{"outcome": "served", "source": source, "principal": email, "binding": "", "error": ""}
	traceWant(t, "cold get", lines[0], served)
	traceWant(t, "cold get", lines[0], map[string]any{"host": "gcr.io", "cache": "minted", "requests": 1.0})
	traceWant(t, "warm get", lines[1], served)
	traceWant(t, "warm get", lines[1], map[string]any{"host": "gcr.io", "cache": "hit", "requests": 0.0})
	for i, l := range lines[:2] {
		expiry, err := time.Parse(time.RFC3339, l.str("expiry"))
		if left := l.num("remaining_s"); err != nil || left < 50*60 || left > 3600 || time.Until(expiry) < 50*time.Minute {
			t.Errorf("get %d: expiry %q (%v), remaining_s %v; want about an hour", i, l.str("expiry"), err, left)
		}
		if l.num("pid") <= 0 || l.num("duration_ms") < 0 {
			t.Errorf("get %d: pid %v, duration_ms %v", i, l.fields["pid"], l.fields["duration_ms"])
		}
	}
	if lines[0].num("pid") == lines[1].num("pid") {
		t.Error("two get processes traced the same pid")
	}
	traceWant(t, "get docker.io", lines[2], map[string]any{"host": "docker.io", "outcome": "not ours", "source": "", "cache": "uncached", "requests": 0.0, "expiry": nil, "remaining_s": nil})
	traceWant(t, "store", lines[3], map[string]any{"host": "eu.gcr.io", "outcome": "served", "error": ""})
	traceWant(t, "list", lines[4], map[string]any{"outcome": "served", "entries": 1.0})
	traceWant(t, "erase", lines[5], map[string]any{"host": "eu.gcr.io", "outcome": "served"})
	traceWant(t, "token", lines[6], served)
	// erase dropped the cached token of the credential that serves
	// eu.gcr.io now: the same key as gcr.io's.
	traceWant(t, "token", lines[6], map[string]any{"host": "gcr.io", "cache": "minted", "requests": 1.0})
	traceWant(t, "dockerconfig", lines[7], served)
	traceWant(t, "dockerconfig", lines[7], map[string]any{"host": "gcr.io,eu.gcr.io", "cache": "hit"})
	traceWant(t, "kubelet, node", lines[8], served)
	traceWant(t, "kubelet, node", lines[8], map[string]any{"host": "us.gcr.io", "cache": "hit"})
	traceWant(t, "kubelet, pod", lines[9], map[string]any{"host": "europe-docker.pkg.dev", "outcome": "served",
		"principal": podPrincipal("team-a", "builder"), "cache": "minted", "requests": 1.0})
	traceWant(t, "drone-registry", lines[10], served)
	traceWant(t, "drone-registry", lines[10], map[string]any{"host": "gcr.io", "repo": "octocat/hello-world", "build": 7.0})
	traceWant(t, "drone-registry, wrong secret", lines[11], map[string]any{"host": "gcr.io", "outcome": "error", "source": "", "requests": 0.0})
	if !strings.Contains(lines[11].str("error"), "rejected request: invalid signature") || lines[11].str("remote") == "" {
		t.Errorf("the refused drone request's line does not say why and from where: %s", lines[11].raw)
	}

	data, _ := os.ReadFile(path)
	secrets = append(secrets, "hunter2hunter2", base64.StdEncoding.EncodeToString([]byte(storedKey)))
	secrets = append(secrets, protoKeySecrets(t, []byte(storedKey))...)
	secrets = append(secrets, cmdsPEMLines(t, key)...)
	cmdsAssertNoSecret(t, "the trace", string(data), secrets...)
	for _, s := range secrets {
		if leak := echoLeak(string(data), s); leak != "" {
			t.Errorf("the trace shows %q of a secret", leak)
		}
	}

	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("trace file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("trace dir: %v; want mode 0700", err)
	}
}

// A host with no credential anywhere is "not found", and a source that
// fails is an error with its line.
func TestTraceNotFoundAndError(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	path := filepath.Join(t.TempDir(), "t.jsonl")
	e.Set("DOCKER_CREDENTIAL_GCP_LOG", path)
	traceNotFound(t, e.Run("gcr.io", "get"))
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(e.Home, "missing.json"))
	if r := e.Run("gcr.io", "get"); r.Code != 1 {
		t.Fatalf("get with a missing credential file: exit %d", r.Code)
	}
	lines := traceRead(t, path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	traceWant(t, "no credentials", lines[0], map[string]any{"outcome": "not found", "host": "gcr.io", "cache": "uncached"})
	traceWant(t, "failing source", lines[1], map[string]any{"outcome": "error", "host": "gcr.io"})
	if !strings.Contains(lines[1].str("error"), "missing.json") {
		t.Errorf("the error line does not name the failing file: %s", lines[1].raw)
	}
}

// 32 concurrent gets leave 32 whole lines.
func TestTraceConcurrentGetsLeaveWholeLines(t *testing.T) {
	t.Parallel()
	e, _, _, path := traceEnv(t, "many@proj.iam.gserviceaccount.com")
	cmdsGet(t, e, "gcr.io")
	var wg sync.WaitGroup
	results := make([]Result, 32)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.Run("gcr.io", "get")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Code != 0 {
			t.Fatalf("get %d: exit %d: %s%s", i, r.Code, r.Stdout, r.Stderr)
		}
	}
	lines := traceRead(t, path)
	if len(lines) != 33 {
		t.Fatalf("%d lines, want 33", len(lines))
	}
	for _, l := range lines[1:] {
		traceWant(t, "concurrent get", l, map[string]any{"command": "get", "outcome": "served", "cache": "hit"})
	}
}

// A trace that cannot be written (below a regular file, in a dir others
// may write, a full device, a FIFO with or without a reader) never fails
// or hangs a get: one warning on stderr at most.
func TestTraceUnwritableNeverFailsAGet(t *testing.T) {
	t.Parallel()
	e, _, _, _ := traceEnv(t, "robust@proj.iam.gserviceaccount.com")
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	paths := []string{filepath.Join(file, "t.jsonl"), filepath.Join(shared, "t.jsonl"), "/dev/full"}
	fifo, withReader := filepath.Join(dir, "fifo"), filepath.Join(dir, "fifo-read")
	if traceMkfifo(fifo) == nil && traceMkfifo(withReader) == nil {
		reader, err := traceOpenReader(withReader)
		if err != nil {
			t.Fatal(err)
		}
		defer reader.Close()
		paths = append(paths, fifo, withReader)
	}
	want := cmdsGet(t, e, "gcr.io")
	for _, path := range paths {
		e.Set("DOCKER_CREDENTIAL_GCP_LOG", path)
		r := cacheRunBounded(t, e, "gcr.io")
		if r.Code != 0 || !strings.Contains(r.Stdout, want) {
			t.Errorf("trace %s: get exit %d, stdout %q; want the token", path, r.Code, r.Stdout)
		}
		if n := strings.Count(r.Stderr, "\n"); n != 1 || !strings.Contains(r.Stderr, path) {
			t.Errorf("trace %s: stderr %q; want one warning naming it", path, r.Stderr)
		}
	}
	if fi, err := os.Stat(withReader); err == nil && fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("%s was replaced: %v", withReader, fi.Mode())
	}
}

// The secret-leak corpus of the echo tests (an endpoint that quotes our
// request: refresh token and client secret, raw, URL-encoded, cut short)
// never reaches the trace, whose error line still says what failed.
func TestTraceNeverShowsEchoedSecrets(t *testing.T) {
	t.Parallel()
	g := fake.NewGoogle(t)
	e := NewEnv(t)
	path := filepath.Join(t.TempDir(), "t.jsonl")
	e.Set("DOCKER_CREDENTIAL_GCP_LOG", path)
	adc := protoWrite(t, t.TempDir(), "adc.json", g.AuthorizedUserJSON("echo.apps.googleusercontent.com", echoClientSecret, echoRefreshToken))
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", adc)
	for _, pad := range []int{0, 130, 225} {
		g.SetEcho(func(_ *http.Request, body []byte) (int, string) {
			form, _ := url.ParseQuery(string(body))
			desc, _ := json.Marshal(strings.Repeat("z", pad) + " got " + string(body) + " / " + url.PathEscape(form.Get("refresh_token")) +
				" / " + base64.StdEncoding.EncodeToString(body))
			return 400, `{"error":"invalid_request","error_description":` + string(desc) + `}`
		})
		e.Run("gcr.io", "get")
		e.Run("", "token")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{echoRefreshToken, echoClientSecret} {
		if leak := echoLeak(string(data), s); leak != "" {
			t.Errorf("the trace shows %q of a secret:\n%s", leak, data)
		}
	}
	lines := traceRead(t, path)
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6", len(lines))
	}
	for _, l := range lines {
		if l.str("outcome") != "error" || !strings.Contains(l.str("error"), "400") {
			t.Errorf("line does not say the endpoint refused: %s", l.raw)
		}
	}
}

// A line that would take the trace past 5 MiB first moves it to FILE.1.
func TestTraceRotatesAtTheCap(t *testing.T) {
	t.Parallel()
	e, _, _, path := traceEnv(t, "rotate@proj.iam.gserviceaccount.com")
	cmdsGet(t, e, "gcr.io")
	line, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 5 << 20
	full := bytes.Repeat(line, (limit-2*len(line))/len(line)+1)
	if err := os.WriteFile(path, full, 0o600); err != nil {
		t.Fatal(err)
	}
	cmdsGet(t, e, "gcr.io")
	if data, _ := os.ReadFile(path); len(data) <= len(full) || len(data) > limit {
		t.Fatalf("below the cap the line was not appended (%d bytes, had %d)", len(data), len(full))
	}
	cmdsGet(t, e, "gcr.io")
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatalf("no FILE.1 past the cap: %v", err)
	}
	if len(old) > limit || !bytes.HasPrefix(old, full) {
		t.Errorf("FILE.1 (%d bytes) is not the full trace", len(old))
	}
	if n := len(traceRead(t, path)); n != 1 {
		t.Errorf("FILE holds %d lines after rotation, want 1", n)
	}
}

// configure-docker --log records the trace for the calls docker makes
// with no environment of ours; doctor shows where it goes and its last
// lines; --log ” turns it off.
func TestTraceRecordedByConfigureDocker(t *testing.T) {
	t.Parallel()
	e, _, _ := cmdsKeyEnv(t, "recorded@proj.iam.gserviceaccount.com")
	cmdsMustRun(t, e, "", "configure-docker", "--log", "state/trace.jsonl")
	path := filepath.Join(e.Home, "state", "trace.jsonl")
	settings, err := os.ReadFile(cmdsSettingsPath(e))
	if err != nil || !strings.Contains(string(settings), fmt.Sprintf("%q: %q", "log", path)) {
		t.Fatalf("settings %s (%v) do not record the absolute trace path %s", settings, err, path)
	}
	cmdsGet(t, e, "gcr.io")
	if lines := traceRead(t, path); len(lines) != 1 || lines[0].str("command") != "get" {
		t.Fatalf("recorded trace: %d lines, want the get's", len(lines))
	}
	doctor := cmdsMustRun(t, e, "", "doctor").Stdout
	last := traceRead(t, path)[0].raw
	if !strings.Contains(doctor, path) || !strings.Contains(doctor, "configure-docker --log") || !strings.Contains(doctor, last) {
		t.Errorf("doctor does not show the trace's path, origin and last line:\n%s", doctor)
	}

	e.Set("DOCKER_CREDENTIAL_GCP_LOG", "off")
	cmdsGet(t, e, "gcr.io")
	e.Set("DOCKER_CREDENTIAL_GCP_LOG", "")
	cmdsMustRun(t, e, "", "configure-docker", "--log", "")
	cmdsGet(t, e, "gcr.io")
	if lines := traceRead(t, path); len(lines) != 1 {
		t.Errorf("%d lines after DOCKER_CREDENTIAL_GCP_LOG=off and --log '', want still 1", len(lines))
	}
	if settings, _ := os.ReadFile(cmdsSettingsPath(e)); strings.Contains(string(settings), `"log"`) {
		t.Errorf("--log '' left the trace recorded: %s", settings)
	}
	if doctor := cmdsMustRun(t, e, "", "doctor").Stdout; !strings.Contains(doctor, "Trace:") || !strings.Contains(doctor, "off") {
		t.Errorf("doctor does not say the trace is off:\n%s", doctor)
	}
}
