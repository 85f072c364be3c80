package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// What the README claims about installing, building and testing, checked
// against what the binary, the packages and the tests do.

// packagedBinary is where the .deb and .rpm install the binary
// (TestReleaseArtifacts checks both packages).
const packagedBinary = "/usr/bin/docker-credential-gcp"

func readREADME(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(instRepo(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The README's systemd units run the binary where the packages put it, and
// say where install.sh puts it instead.
func TestREADMESystemdRecipesRunThePackagedBinary(t *testing.T) {
	t.Parallel()
	readme := readREADME(t)
	units := regexp.MustCompile(`ExecStart=(\S+)`).FindAllStringSubmatch(readme, -1)
	if len(units) == 0 {
		t.Fatal("README.md has no ExecStart= line")
	}
	for _, m := range units {
		if m[1] != packagedBinary {
			t.Errorf("README.md: ExecStart=%s, but the packages install %s", m[1], packagedBinary)
		}
	}
	if !strings.Contains(readme, "./install.sh run as root\n# puts it in /usr/local/bin instead") {
		t.Error("README.md's systemd unit does not say where ./install.sh (as root) puts the binary")
	}
}

// A build is reproducible only with the same Go version, since the binary
// embeds it: the README says so.
func TestREADMEReproducibleBuildsNeedTheSameGo(t *testing.T) {
	t.Parallel()
	out := NewEnv(t).Run("", "version").Stdout
	if !strings.Contains(out, runtime.Version()) {
		t.Fatalf("version says %q; the premise, that the binary embeds its Go version (%s), does not hold", out, runtime.Version())
	}
	readme := readREADME(t)
	if !strings.Contains(readme, "A build of the same commit with the same\nGo version gives the same bytes anywhere") {
		t.Error("README.md does not say that the same bytes need the same Go version")
	}
}

// The README's way to list skipped end-to-end tests, `go test -v ./e2e/ |
// grep SKIP`, shows why each was skipped only if every reason starts with
// "SKIP:" ("--- SKIP: TestName" lines carry the name, not the reason).
func TestREADMEListsSkippedTestsWithReasons(t *testing.T) {
	t.Parallel()
	if !strings.Contains(readREADME(t), "go test -count=1 -v ./e2e/ 2>&1 | grep SKIP") {
		t.Error("README.md does not say how to list the skipped end-to-end tests")
	}
	files, err := filepath.Glob("*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files here: %v", err)
	}
	skip := regexp.MustCompile(`\.(Skip|Skipf|SkipNow)\(("[^"]*|` + "`[^`]*" + `)?`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range skip.FindAllStringSubmatch(string(data), -1) {
			if reason := strings.Trim(m[2], "\"`"); !strings.HasPrefix(reason, "SKIP: ") {
				t.Errorf("%s: %s(%q...) does not start its reason with \"SKIP: \", so grep SKIP hides it", f, m[1], reason)
			}
		}
	}
}
