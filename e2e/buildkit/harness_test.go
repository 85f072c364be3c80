// Package buildkit runs BuildKit, the client behind most reports of
// registry pushes failing with 401 mid-build, against the built
// docker-credential-gcp: buildctl and buildkitd (and buildx through its
// remote driver) push an image and a registry cache export to loopback
// registries that accept only oauth2accesstoken:<token Google issued>.
//
// It is a module of its own so that BuildKit stays out of the main go.mod;
// `make test` runs it.
package buildkit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// tools are the built helper and BuildKit's programs, shared by every test.
var tools struct {
	helper, buildctl, buildkitd, buildx string
}

// toolPackages are the commands of BuildKit and buildx this module pins in
// go.mod's tool block; TestMain builds them once per run.
var toolPackages = map[*string]string{
	&tools.buildctl:  "github.com/moby/buildkit/cmd/buildctl",
	&tools.buildkitd: "github.com/moby/buildkit/cmd/buildkitd",
	&tools.buildx:    "github.com/docker/buildx/cmd/buildx",
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dcg-buildkit-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := buildTools(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildTools builds the helper from the main module into dir, and BuildKit's
// programs through `go tool -n`, which keeps their executables in the build
// cache so a warm run does not link them again. It builds offline, from the
// module cache that `make modules` fills: a test never reaches the network.
// The helper is built in the main module (go -C ../..), with its versions as
// users get them: built from here, this module's larger graph would pick
// the versions and ask for modules (cloud.google.com/go) nothing fetched.
func buildTools(dir string) error {
	env := append(os.Environ(), "CGO_ENABLED=0", "GOPROXY=off")
	tools.helper = filepath.Join(dir, "docker-credential-gcp")
	build := exec.Command("go", "-C", "../..", "build", "-trimpath", "-ldflags", "-X main.version=e2e -X main.commit=test", "-o", tools.helper, ".")
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building docker-credential-gcp: %v\n%s", err, out)
	}
	for dst, pkg := range toolPackages {
		start := time.Now()
		c := exec.Command("go", "tool", "-n", pkg)
		c.Env = env
		out, err := c.Output()
		if err != nil {
			return fmt.Errorf("building %s (go tool -n %s): %v\n%s(if modules are missing, run make modules, which fetches them, then this test again)",
				filepath.Base(pkg), pkg, err, errOutput(err))
		}
		*dst = strings.TrimSpace(string(out))
		if _, err := os.Stat(*dst); err != nil {
			return fmt.Errorf("go tool -n %s printed %q, which is not there: %v", pkg, *dst, err)
		}
		fmt.Fprintf(os.Stderr, "built %s in %v\n", filepath.Base(pkg), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func errOutput(err error) string {
	if exit, ok := err.(*exec.ExitError); ok {
		return string(exit.Stderr)
	}
	return ""
}

// requireTool finds an installed program. A missing one skips the test
// locally, as the e2e client tests do, but fails it in CI (CI=true), where
// .ci/run installs it: a CI run must never pass without BuildKit running.
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		unavailable(t, fmt.Sprintf("%s is not installed (%s)", name, install))
	}
	return path
}

// unavailable stops a test that cannot run on this machine: a visible skip
// locally, a failure in CI.
func unavailable(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must run the BuildKit tests", why)
	}
	t.Skipf("SKIP: %s; this BuildKit test did not run", why)
}

// user is one isolated person running BuildKit's clients: own HOME, XDG
// dirs, docker and gcloud config, no GOOGLE_* variables, a metadata server
// address that refuses, and on PATH a docker-credential-gcp that records
// each call before it runs the built helper.
type user struct {
	t            *testing.T
	dir          string
	dockerConfig string
	calls        string // the wrapper's log: one "ACTION HOST" line per call
	vars         map[string]string
}

func newUser(t *testing.T) *user {
	t.Helper()
	root := t.TempDir()
	u := &user{
		t:            t,
		dir:          root,
		dockerConfig: filepath.Join(root, "docker"),
		calls:        filepath.Join(root, "helper-calls.log"),
	}
	bin := filepath.Join(root, "bin")
	for _, d := range []string{bin, filepath.Join(root, "home"), u.dockerConfig} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// The credential-helper protocol sends the server URL on stdin, without
	// a newline; the wrapper logs it and hands it on unchanged.
	wrapper := fmt.Sprintf(`#!/bin/sh
IFS= read -r host || true
printf '%%s %%s\n' "$1" "$host" >> '%s'
printf '%%s' "$host" | exec '%s' "$@"
`, u.calls, tools.helper)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-gcp"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	u.vars = map[string]string{
		"HOME":              filepath.Join(root, "home"),
		"XDG_CONFIG_HOME":   filepath.Join(root, "xdg-config"),
		"XDG_CACHE_HOME":    filepath.Join(root, "xdg-cache"),
		"DOCKER_CONFIG":     u.dockerConfig,
		"CLOUDSDK_CONFIG":   filepath.Join(root, "gcloud"),
		"PATH":              bin + ":/usr/local/bin:/usr/bin:/bin",
		"TMPDIR":            os.TempDir(),
		"GCE_METADATA_HOST": fake.RefusedHost(t),
	}
	return u
}

// set sets one environment variable for later runs.
func (u *user) set(key, value string) { u.vars[key] = value }

func (u *user) environ() []string {
	env := make([]string, 0, len(u.vars))
	for k, v := range u.vars {
		env = append(env, k+"="+v)
	}
	return env
}

// run runs a program as this user and returns its combined output.
func (u *user) run(ctx context.Context, name string, args ...string) (string, error) {
	u.t.Helper()
	c := exec.CommandContext(ctx, name, args...)
	c.Env = u.environ()
	c.Dir = u.dir
	c.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := c.CombinedOutput()
	result := "ok"
	if err != nil {
		result = err.Error()
	}
	u.t.Logf("%s %s: %s in %v", filepath.Base(name), strings.Join(args, " "), result, time.Since(start).Round(time.Millisecond))
	return string(out), err
}

// helperCalls returns the calls the wrapper recorded so far, in order.
func (u *user) helperCalls() []string {
	u.t.Helper()
	f, err := os.Open(u.calls)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		u.t.Fatal(err)
	}
	defer f.Close()
	var calls []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		calls = append(calls, s.Text())
	}
	if err := s.Err(); err != nil {
		u.t.Fatal(err)
	}
	return calls
}
