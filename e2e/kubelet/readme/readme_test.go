// Package readme feeds every CredentialProviderConfig block of the
// project's README.md, verbatim, to the kubelet's own config loader and
// validator (RegisterCredentialProviderPlugins, as the kubelet calls it at
// start-up), for each Kubernetes minor the README names for that block.
//
// The package is compiled once per kubelet version: against the module's
// go.mod (the current release) and against each go.1.MINOR.mod beside it
// (go test -modfile=go.1.MINOR.mod; `make test` runs them all). Each run
// checks the blocks that claim its own minor, and every run checks that
// each minor the README claims has a go.1.MINOR.mod, so a claim no kubelet
// checks fails as a claim the kubelet refuses does.
package readme

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/version"
	"k8s.io/kubernetes/pkg/credentialprovider/plugin"
)

// Environment of the child process that starts one kubelet config.
const (
	configEnv = "DCG_README_KUBELET_CONFIG"
	gatesEnv  = "DCG_README_KUBELET_GATES"
	binDirEnv = "DCG_README_KUBELET_BIN_DIR"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(configEnv); cfg != "" {
		if err := startKubelet(cfg, os.Getenv(gatesEnv), os.Getenv(binDirEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startKubelet does what the kubelet does with its
// --feature-gates, --image-credential-provider-config and
// --image-credential-provider-bin-dir at start-up.
func startKubelet(config, gates, binDir string) error {
	for _, g := range strings.Fields(gates) {
		if err := utilfeature.DefaultMutableFeatureGate.Set(g); err != nil {
			return fmt.Errorf("--feature-gates=%s: %w", g, err)
		}
	}
	noToken := func(string, string, *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
		return nil, errors.New("no API server")
	}
	noAccount := func(string, string) (*corev1.ServiceAccount, error) { return nil, errors.New("no API server") }
	return plugin.RegisterCredentialProviderPlugins(config, binDir, noToken, noAccount)
}

// configBlock is one CredentialProviderConfig in the README and the
// Kubernetes minors its caption names: from..to, to 0 for "and later".
type configBlock struct {
	line     int
	yaml     string
	from, to int
	gates    []string
}

// The caption is the paragraph just before the block. It names
// "Kubernetes 1.N", "Kubernetes 1.N and later" or "Kubernetes 1.N to 1.M",
// and any feature gate that kubelet needs.
var (
	versionClaim = regexp.MustCompile(`Kubernetes 1\.([0-9]+)(?: (and later)| to 1\.([0-9]+))?`)
	gateClaim    = regexp.MustCompile(`--feature-gates=([A-Za-z0-9]+=(?:true|false))`)
)

// readmeBlocks finds the README's CredentialProviderConfig blocks.
func readmeBlocks(t *testing.T, readme string) []configBlock {
	t.Helper()
	var blocks []configBlock
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```yaml" {
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		yaml := strings.Join(body, "\n") + "\n"
		if !strings.Contains(yaml, "kind: CredentialProviderConfig") {
			continue
		}
		var caption []string
		j := start - 1
		for j >= 0 && strings.TrimSpace(lines[j]) == "" {
			j--
		}
		for ; j >= 0 && strings.TrimSpace(lines[j]) != "" && !strings.HasPrefix(lines[j], "```"); j-- {
			caption = append([]string{lines[j]}, caption...)
		}
		text := strings.Join(caption, " ")
		b := configBlock{line: start + 1, yaml: yaml}
		m := versionClaim.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("README.md:%d: the paragraph before this CredentialProviderConfig names no Kubernetes version (\"Kubernetes 1.N\", \"... and later\" or \"... to 1.M\"): %q", b.line, text)
			continue
		}
		b.from, _ = strconv.Atoi(m[1])
		b.to = b.from
		switch {
		case m[2] != "":
			b.to = 0
		case m[3] != "":
			b.to, _ = strconv.Atoi(m[3])
		}
		for _, g := range gateClaim.FindAllStringSubmatch(text, -1) {
			b.gates = append(b.gates, g[1])
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// kubeletMinor is the Kubernetes minor of the kubelet code this test is
// built with (the k8s.io staging modules are pinned to the same release as
// k8s.io/kubernetes; test binaries carry no module versions).
func kubeletMinor(t *testing.T) int {
	t.Helper()
	m := regexp.MustCompile(`^1\.([0-9]+)$`).FindStringSubmatch(version.DefaultKubeBinaryVersion)
	if m == nil {
		t.Fatalf("kubelet version %q is not 1.N", version.DefaultKubeBinaryVersion)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// checkedMinors are the Kubernetes minors whose kubelet `make test` runs
// this test with: the module's go.mod and each go.1.N.mod beside it.
func checkedMinors(t *testing.T) map[int]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "go*.mod"))
	if err != nil {
		t.Fatal(err)
	}
	require := regexp.MustCompile(`(?m)^\s*(?:require\s+)?k8s\.io/kubernetes v1\.([0-9]+)\.[0-9]+\s*$`)
	minors := map[int]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := require.FindSubmatch(data)
		if m == nil {
			t.Fatalf("%s requires no k8s.io/kubernetes v1.N.P", f)
		}
		n, _ := strconv.Atoi(string(m[1]))
		minors[n] = filepath.Base(f)
	}
	return minors
}

// TestREADMEConfigsStartTheKubelet: every CredentialProviderConfig the
// README shows starts the kubelet of each minor it names.
func TestREADMEConfigsStartTheKubelet(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	minor := kubeletMinor(t)
	checked := checkedMinors(t)
	if _, ok := checked[minor]; !ok {
		t.Fatalf("this kubelet (1.%d) is in none of %v", minor, checked)
	}
	newest := 0
	for m := range checked {
		newest = max(newest, m)
	}
	blocks := readmeBlocks(t, string(readme))
	if len(blocks) == 0 {
		t.Fatal("README.md shows no CredentialProviderConfig")
	}

	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "docker-credential-gcp"), ".")
	build.Dir = filepath.Join("..", "..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building docker-credential-gcp: %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	ran := 0
	for _, b := range blocks {
		last := b.to
		if last == 0 {
			last = newest
		}
		for _, m := range []int{b.from, last} {
			if _, ok := checked[m]; !ok {
				t.Errorf("README.md:%d claims Kubernetes 1.%d, which no kubelet here checks: add e2e/kubelet/go.1.%d.mod (see its Makefile target) or change the claim", b.line, m, m)
			}
		}
		if minor < b.from || b.to != 0 && minor > b.to {
			continue
		}
		ran++
		cfg := filepath.Join(t.TempDir(), "credential-provider.yaml")
		if err := os.WriteFile(cfg, []byte(b.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), configEnv+"="+cfg, gatesEnv+"="+strings.Join(b.gates, " "), binDirEnv+"="+binDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("README.md:%d: the kubelet of Kubernetes 1.%d refuses this config (feature gates %v): %v\n%s\n%s", b.line, minor, b.gates, err, out, b.yaml)
		}
	}
	if ran == 0 {
		t.Errorf("no CredentialProviderConfig in README.md claims Kubernetes 1.%d, which this kubelet is", minor)
	}
	t.Logf("Kubernetes 1.%d started with %d of the README's %d CredentialProviderConfig blocks", minor, ran, len(blocks))
}
