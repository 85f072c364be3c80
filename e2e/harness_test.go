// Package e2e runs the built docker-credential-gcp binary as a subprocess,
// as docker and people do, against loopback fakes of Google's endpoints.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// binary is the docker-credential-gcp built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dcg-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "docker-credential-gcp")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=e2e -X main.commit=test", "-o", binary, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building docker-credential-gcp: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Env is an isolated user: its own HOME, XDG dirs, docker and gcloud config,
// no GOOGLE_* variables, and a metadata server address that refuses, so a
// test never sees the machine's real credentials.
type Env struct {
	t            testing.TB
	Home         string
	ConfigHome   string // XDG_CONFIG_HOME; our settings and store live below it
	CacheHome    string // XDG_CACHE_HOME; the token cache lives below it
	DockerConfig string // DOCKER_CONFIG dir
	CloudSDK     string // CLOUDSDK_CONFIG dir
	BinDir       string // on PATH first; holds docker-credential-gcp
	vars         map[string]string
}

// NewEnv makes a fresh isolated environment.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	root := t.TempDir()
	e := &Env{
		t:            t,
		Home:         filepath.Join(root, "home"),
		ConfigHome:   filepath.Join(root, "xdg-config"),
		CacheHome:    filepath.Join(root, "xdg-cache"),
		DockerConfig: filepath.Join(root, "docker"),
		CloudSDK:     filepath.Join(root, "gcloud"),
		BinDir:       filepath.Join(root, "bin"),
	}
	for _, d := range []string{e.Home, e.BinDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(binary, filepath.Join(e.BinDir, "docker-credential-gcp")); err != nil {
		t.Fatal(err)
	}
	e.vars = map[string]string{
		"HOME":              e.Home,
		"XDG_CONFIG_HOME":   e.ConfigHome,
		"XDG_CACHE_HOME":    e.CacheHome,
		"DOCKER_CONFIG":     e.DockerConfig,
		"CLOUDSDK_CONFIG":   e.CloudSDK,
		"PATH":              e.BinDir + ":/usr/local/bin:/usr/local/go/bin:/usr/bin:/bin",
		"TMPDIR":            os.TempDir(),
		"GCE_METADATA_HOST": fake.RefusedHost(t),
	}
	return e
}

// Set sets (or, with "", clears) one environment variable for later runs.
func (e *Env) Set(key, value string) {
	if value == "" {
		delete(e.vars, key)
		return
	}
	e.vars[key] = value
}

// Environ is the whole environment a subprocess gets; nothing is inherited.
func (e *Env) Environ() []string {
	env := make([]string, 0, len(e.vars))
	for k, v := range e.vars {
		env = append(env, k+"="+v)
	}
	return env
}

// Command prepares any program (the helper, docker, crane, skopeo) to run in
// this environment.
func (e *Env) Command(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Env = e.Environ()
	c.Dir = e.Home
	return c
}

// Result is what one run of the binary did.
type Result struct {
	Stdout, Stderr string
	Code           int
	Elapsed        time.Duration
}

// Run runs docker-credential-gcp with args and stdin, and waits for it.
func (e *Env) Run(stdin string, args ...string) Result {
	e.t.Helper()
	c := e.Command(binary, args...)
	c.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	start := time.Now()
	err := c.Run()
	r := Result{Stdout: out.String(), Stderr: errOut.String(), Elapsed: time.Since(start)}
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("running %v: %v", args, err)
		}
		r.Code = exit.ExitCode()
	}
	return r
}
