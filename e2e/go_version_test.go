package e2e

import (
	"fmt"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goGraph is every module in the main module's graph, tools included,
// with its go.mod's "go" line (empty when it has none). It reads only the
// module cache: `make modules` (part of make test) fills it.
func goGraph(t *testing.T) map[string]string {
	t.Helper()
	c := exec.Command("go", "list", "-m", "-f", "{{if not .Main}}{{.Path}} {{.GoVersion}}{{end}}", "all")
	c.Dir = instRepo(t)
	c.Env = append(os.Environ(), "GOPROXY=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly")
	out, err := c.Output()
	if err != nil {
		var stderr string
		if exit, ok := err.(*exec.ExitError); ok {
			stderr, _, _ = strings.Cut(string(exit.Stderr), "\n")
		}
		t.Fatalf("go list -m all: %v: %s\n(if the module cache lacks some of the graph's go.mod files, run make modules, which fetches them, then this test again)", err, stderr)
	}
	graph := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if path, v, ok := strings.Cut(line, " "); ok {
			graph[path] = v
		}
	}
	return graph
}

// goFloor is the lowest Go the module graph allows: the highest "go" line
// among its modules.
func goFloor(t *testing.T) (floor, from string) {
	t.Helper()
	floor = "1.0"
	for path, v := range goGraph(t) {
		if v != "" && (version.Compare("go"+v, "go"+floor) > 0 || v == floor && path < from) {
			floor, from = v, path
		}
	}
	return floor, from
}

// goModVersion is go.mod's "go" line.
func goModVersion(t *testing.T) string {
	t.Helper()
	c := exec.Command("go", "list", "-m", "-f", "{{.GoVersion}}")
	c.Dir = instRepo(t)
	c.Env = append(os.Environ(), "GOPROXY=off", "GOTOOLCHAIN=local")
	out, err := c.Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// go.mod, the README and install.sh ask for the same Go, and it is the
// lowest the dependencies allow: a dependency (or tool) that raises it
// fails this test until all three say so.
func TestGoVersionFloorAgrees(t *testing.T) {
	t.Parallel()
	floor, from := goFloor(t)
	t.Logf("lowest Go the module graph allows: %s (set by %s)", floor, from)
	if got := goModVersion(t); got != floor {
		t.Errorf("go.mod says go %s; the dependencies allow %s (from %s): run go mod edit -go=%s", got, floor, from, floor)
	}
	readme, err := os.ReadFile(filepath.Join(instRepo(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	said := regexp.MustCompile(`Go (\d+\.\d+(?:\.\d+)?) or newer`).FindAllStringSubmatch(string(readme), -1)
	if len(said) == 0 {
		t.Errorf("README.md does not say which Go it needs (\"Go %s or newer\")", floor)
	}
	for _, m := range said {
		if m[1] != floor {
			t.Errorf("README.md says %q; go.mod needs Go %s", m[0], floor)
		}
	}
}

// The release tool's libraries (nfpm and what it pulls) are in its own
// module: none of them is in the main module's graph, so they neither
// raise its Go floor nor reach a go install user.
func TestReleaseToolHasItsOwnModule(t *testing.T) {
	t.Parallel()
	graph := goGraph(t)
	for _, lib := range []string{"github.com/goreleaser/nfpm/v2", "github.com/goreleaser/chglog", "github.com/go-git/go-git/v5", "github.com/Masterminds/sprig/v3"} {
		if _, ok := graph[lib]; ok {
			t.Errorf("the main module's graph holds %s, a library of the release tool (internal/release/go.mod)", lib)
		}
	}
	mod, err := os.ReadFile(filepath.Join(instRepo(t), "internal", "release", "go.mod"))
	if err != nil || !strings.Contains(string(mod), "github.com/goreleaser/nfpm/v2 ") {
		t.Errorf("internal/release/go.mod does not require nfpm: %v\n%s", err, mod)
	}
}

// instFakeGo is a bin dir whose go reports goVersion and, asked to build,
// fails after printing its GOTOOLCHAIN (so a test sees the check passed).
func instFakeGo(t *testing.T, goVersion string) string {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
if [ "$*" = "env GOVERSION" ]; then echo %s; exit 0; fi
echo "fake go $1 GOTOOLCHAIN=$GOTOOLCHAIN" >&2
exit 3
`, goVersion)
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// install.sh checks the Go on PATH against go.mod before building: too old
// is one clear error saying what to do; old enough builds with
// GOTOOLCHAIN=local, so go never downloads a toolchain unasked. A
// GOTOOLCHAIN the user set is theirs to keep.
func TestInstallScriptChecksGoVersion(t *testing.T) {
	t.Parallel()
	need := goModVersion(t)
	for _, c := range []struct {
		name, goVersion, toolchain string
		wantCode                   int
		want                       []string
	}{
		{"too old", "go1.21.13", "", 1, []string{"needs Go " + need + " or newer", "Go 1.21.13", "https://go.dev/dl/", "GOTOOLCHAIN=go" + need + " ./install.sh"}},
		{"release candidate of the needed minor", "go" + strings.Join(strings.Split(need, ".")[:2], ".") + "rc1", "", 1, []string{"needs Go " + need}},
		{"exactly go.mod's", "go" + need, "", 3, []string{"fake go build GOTOOLCHAIN=local"}},
		{"newer, with an experiment suffix", "go9.0.1 X:nodwarf5", "", 3, []string{"fake go build GOTOOLCHAIN=local"}},
		{"too old, but the user chose a toolchain", "go1.21.13", "auto", 3, []string{"fake go build GOTOOLCHAIN=auto"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := instEnv(t)
			e.Set("PATH", instFakeGo(t, c.goVersion)+":/usr/bin:/bin")
			e.Set("GOTOOLCHAIN", c.toolchain)
			prefix := filepath.Join(t.TempDir(), "p")
			r := instRun(t, e, "--prefix", prefix)
			if r.Code != c.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, c.wantCode, r.Stdout, r.Stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.Stderr)
				}
			}
			cmdsAssertAbsent(t, prefix)
		})
	}
}
