package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// instMaxBinary is the size bar for the stripped binary (SPEC §7).
const instMaxBinary = 12 << 20

// instRepo is the checkout under test: install.sh and the Makefile live
// one level above this package.
func instRepo(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// instGoEnv is what a Go build needs from the real user (the build and
// module caches, toolchain choice) so an install in an isolated HOME
// neither rebuilds the world nor reaches the network.
func instGoEnv(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("go", "env", "-json", "GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	env := map[string]string{}
	if err := json.Unmarshal(out, &env); err != nil || len(env) != 4 {
		t.Fatalf("go env printed %q: %v", out, err)
	}
	env["GOTOOLCHAIN"] = "local"
	env["GOPROXY"] = "off"
	return env
}

// instGoBin is the directory holding the go command.
func instGoBin(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(goCmd)
}

// instEnv is an isolated user with Go on PATH but without the helper.
func instEnv(t *testing.T) *Env {
	t.Helper()
	e := NewEnv(t)
	for k, v := range instGoEnv(t) {
		e.Set(k, v)
	}
	e.Set("PATH", instGoBin(t)+":/usr/bin:/bin")
	return e
}

// instRun runs install.sh with args in e.
func instRun(t *testing.T, e *Env, args ...string) Result {
	t.Helper()
	c := e.Command("sh", append([]string{filepath.Join(instRepo(t), "install.sh")}, args...)...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	r := Result{Stdout: out.String(), Stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("install.sh: %v", err)
	}
	return r
}

func instMustRun(t *testing.T, e *Env, args ...string) Result {
	t.Helper()
	r := instRun(t, e, args...)
	if r.Code != 0 {
		t.Fatalf("install.sh %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

func TestInstallScript(t *testing.T) {
	t.Parallel()
	e := instEnv(t)
	prefix := filepath.Join(t.TempDir(), "prefix with space")
	bin := filepath.Join(prefix, "bin", "docker-credential-gcp")

	r := instMustRun(t, e, "--prefix", prefix)
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("not installed: %v\n%s%s", err, r.Stdout, r.Stderr)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("installed mode %o, want 0755", fi.Mode().Perm())
	}
	v := e.Command(bin, "--version")
	if out, err := v.Output(); err != nil || !strings.HasPrefix(string(out), "docker-credential-gcp ") {
		t.Errorf("installed binary --version: %q %v", out, err)
	}
	if !strings.Contains(r.Stdout, "Installed "+bin) {
		t.Errorf("install.sh does not say where it installed:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stdout, filepath.Join(prefix, "bin")+" is not on your PATH") {
		t.Errorf("no PATH note although %s/bin is not on PATH:\n%s", prefix, r.Stdout)
	}
	config := cmdsReadConfig(t, e)
	if helpers := cmdsCredHelpers(t, config); helpers["gcr.io"] != "gcp" || helpers["europe-docker.pkg.dev"] != "gcp" {
		t.Errorf("credHelpers after install: %v", helpers)
	}
	if strings.Contains(r.Stderr, "not on PATH") {
		t.Errorf("configure-docker warned about PATH during install (install.sh already notes it):\n%s", r.Stderr)
	}

	// Again, now with the bin dir on PATH: no note, not one byte changed.
	e.Set("PATH", filepath.Join(prefix, "bin")+":"+instGoBin(t)+":/usr/bin:/bin")
	r = instMustRun(t, e, "--prefix="+prefix)
	if strings.Contains(r.Stdout, "not on your PATH") {
		t.Errorf("PATH note although the bin dir is on PATH:\n%s", r.Stdout)
	}
	if again := cmdsReadConfig(t, e); !bytes.Equal(again, config) {
		t.Errorf("second install changed config.json:\n%s\n---\n%s", config, again)
	}
	if entries, _ := os.ReadDir(filepath.Dir(bin)); len(entries) != 1 {
		t.Errorf("bin dir holds %v, want only the binary", entries)
	}
}

func TestInstallScriptNoConfigure(t *testing.T) {
	t.Parallel()
	e := instEnv(t)
	// PREFIX from the environment works like --prefix.
	prefix := filepath.Join(t.TempDir(), "from-env")
	e.Set("PREFIX", prefix)
	r := instMustRun(t, e, "--no-configure")
	if _, err := os.Stat(filepath.Join(prefix, "bin", "docker-credential-gcp")); err != nil {
		t.Errorf("PREFIX ignored: %v\n%s", err, r.Stdout)
	}
	cmdsAssertAbsent(t, e.DockerConfig)
	cmdsAssertAbsent(t, cmdsSettingsPath(e))
}

func TestInstallScriptDefaultsAndArgs(t *testing.T) {
	t.Parallel()
	e := instEnv(t)
	// Without --prefix or PREFIX a non-root user gets ~/.local/bin, and
	// arguments after -- go to configure-docker.
	if os.Getuid() == 0 {
		e.Set("PREFIX", filepath.Join(e.Home, ".local"))
	}
	r := instMustRun(t, e, "--", "--registries", "europe-west1-docker.pkg.dev")
	if _, err := os.Stat(filepath.Join(e.Home, ".local", "bin", "docker-credential-gcp")); err != nil {
		t.Errorf("not installed in ~/.local/bin: %v\n%s", err, r.Stdout)
	}
	if helpers := cmdsCredHelpers(t, cmdsReadConfig(t, e)); len(helpers) != 1 || helpers["europe-west1-docker.pkg.dev"] != "gcp" {
		t.Errorf("-- flags not passed to configure-docker: %v", helpers)
	}

	for _, args := range [][]string{{"--prefix"}, {"--bogus"}} {
		r := instRun(t, e, args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "install.sh:") {
			t.Errorf("%v: exit %d, stderr %q", args, r.Code, r.Stderr)
		}
	}
	if h := instRun(t, e, "--help"); h.Code != 0 || !strings.Contains(h.Stdout, "--no-configure") {
		t.Errorf("--help: exit %d, %q", h.Code, h.Stdout)
	}
}

func TestInstallScriptWithoutGo(t *testing.T) {
	t.Parallel()
	e := instEnv(t)
	path := "/usr/bin:/bin"
	if _, err := exec.LookPath("go"); err == nil {
		for _, d := range filepath.SplitList(path) {
			if _, err := os.Stat(filepath.Join(d, "go")); err == nil {
				path = instToolDir(t, "sh", "id", "mktemp", "git", "dirname", "cp", "chmod", "mv", "mkdir", "rm", "cat", "sed", "awk")
				break
			}
		}
	}
	e.Set("PATH", path)
	prefix := filepath.Join(t.TempDir(), "p")
	r := instRun(t, e, "--prefix", prefix)
	if r.Code != 1 {
		t.Errorf("exit %d without Go, want 1", r.Code)
	}
	if !strings.Contains(r.Stderr, "Go is not installed or not on PATH") || !strings.Contains(r.Stderr, "https://go.dev/dl/") {
		t.Errorf("stderr does not explain: %q", r.Stderr)
	}
	cmdsAssertAbsent(t, prefix)
	cmdsAssertAbsent(t, e.DockerConfig)
}

// instToolDir is a directory of symlinks to the named programs only (no go).
func instToolDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			continue
		}
		if err := os.Symlink(p, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// instCopyTree copies the checkout's tracked and untracked, not ignored,
// files (what a clean clone of the working tree holds) to a temp dir, so
// make can write dist/ without touching the shared checkout.
func instCopyTree(t *testing.T) string {
	t.Helper()
	src := instRepo(t)
	list := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	list.Dir = src
	out, err := list.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dst := t.TempDir()
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		from := filepath.Join(src, name)
		fi, err := os.Lstat(from)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		} else if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// instMake runs make in dir with the real user's Go environment.
func instMake(t *testing.T, dir string, args ...string) string {
	t.Helper()
	c := exec.Command("make", args...)
	c.Dir = dir
	// The Makefile derives these from the checkout; a value inherited from
	// the caller (make test exports nothing, but a shell might) would win.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !slices.Contains([]string{"VERSION", "COMMIT", "REVISION", "SOURCE_DATE_EPOCH"}, name) {
			c.Env = append(c.Env, kv)
		}
	}
	for k, v := range instGoEnv(t) {
		c.Env = append(c.Env, k+"="+v)
	}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestInstallMake(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("SKIP: make is not installed")
	}
	dir := instCopyTree(t)

	// make build: a static binary within the size bar.
	instMake(t, dir, "build")
	bin := filepath.Join(dir, "docker-credential-gcp")
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("make build: %s is %d bytes (%.2f MiB)", filepath.Base(bin), fi.Size(), float64(fi.Size())/(1<<20))
	if fi.Size() > instMaxBinary {
		t.Errorf("binary is %d bytes, over %d", fi.Size(), instMaxBinary)
	}
	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary needs a dynamic loader; want a static binary (CGO_ENABLED=0)")
			}
		}
		if s := f.Section(".symtab"); s != nil {
			t.Error("the binary is not stripped (-s -w)")
		}
		f.Close()
	}

	// Reproducible: the same source built in another directory gives the
	// same bytes (-trimpath; version and commit only from -ldflags).
	other := instCopyTree(t)
	instMake(t, other, "build")
	first, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(filepath.Join(other, "docker-credential-gcp"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Error("make build in two directories gave different binaries; the build is not reproducible")
	}

	// make dist: the six platforms are planned (a full cross-build takes
	// about 2 minutes on a cold 2-core machine, so only one is built).
	plan := instMake(t, dir, "-n", "dist")
	for _, p := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"} {
		if !strings.Contains(plan, p) {
			t.Errorf("make -n dist does not build %s:\n%s", p, plan)
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "SHA256SUMS", ".exe"} {
		if !strings.Contains(plan, want) {
			t.Errorf("make -n dist lacks %q", want)
		}
	}
	instMake(t, dir, "dist", "PLATFORMS=windows/arm64")
	exe := filepath.Join(dir, "dist", "docker-credential-gcp-windows-arm64.exe")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("MZ")) {
		t.Error("the windows build is not a PE executable")
	}
	sums, err := os.Open(filepath.Join(dir, "dist", "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer sums.Close()
	sum := sha256.Sum256(data)
	sc := bufio.NewScanner(sums)
	found := false
	for sc.Scan() {
		if sc.Text() == hex.EncodeToString(sum[:])+"  docker-credential-gcp-windows-arm64.exe" {
			found = true
		}
	}
	if !found {
		t.Error("SHA256SUMS lacks the right line for the windows build")
	}
}
