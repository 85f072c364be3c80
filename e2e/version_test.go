package e2e

import (
	"archive/zip"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// verGit runs git in dir as a user with no git config of their own, with
// fixed author and commit dates.
func verGit(t *testing.T, dir, date string, args ...string) string {
	t.Helper()
	c := exec.Command("git", args...)
	c.Dir = dir
	c.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// verRepo is a git repository of the checkout's files with one commit made
// at date.
func verRepo(t *testing.T, date string) string {
	t.Helper()
	dir := instCopyTree(t)
	verGit(t, dir, date, "init", "-q")
	verGit(t, dir, date, "add", "-A")
	verGit(t, dir, date, "commit", "-q", "-m", "one")
	return dir
}

// verVersion builds dir with make and returns what its version command says.
func verVersion(t *testing.T, dir string) string {
	t.Helper()
	instMake(t, dir, "build")
	out, err := exec.Command(filepath.Join(dir, "docker-credential-gcp"), "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// make build reports 1.2.3 on a v1.2.3 tag, and otherwise the commit's Go
// pseudo-version (the one go itself stamps): UTC commit time, 12-digit
// hash, the next patch after the last release tag, +dirty for changes.
func TestVersionFromGit(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("SKIP: make is not installed")
	}
	dir := verRepo(t, "2026-12-03T09:30:00+01:00")
	h := verGit(t, dir, "", "rev-parse", "HEAD")[:12]
	check := func(want string) {
		t.Helper()
		if got := verVersion(t, dir); !strings.HasPrefix(got, want) {
			t.Errorf("version says %q, want %q…", got, want)
		}
	}
	check("docker-credential-gcp 0.0.0-20261203083000-" + h + " (" + h + ", go")

	verGit(t, dir, "", "tag", "v1.2.3")
	check("docker-credential-gcp 1.2.3 (" + h + ", go")

	verGit(t, dir, "2026-12-04T00:00:01Z", "commit", "-q", "--allow-empty", "-m", "two")
	h2 := verGit(t, dir, "", "rev-parse", "HEAD")[:12]
	check("docker-credential-gcp 1.2.4-0.20261204000001-" + h2 + " (" + h2 + ", go")

	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("docker-credential-gcp 1.2.4-0.20261204000001-" + h2 + "+dirty (" + h2 + ", go")
}

// verProxy is a file:// module proxy serving the checkout's files as
// module version v. Like a real module zip, it leaves out the directories
// of nested modules (the release tool's, for one).
func verProxy(t *testing.T, v string) string {
	t.Helper()
	src := instCopyTree(t)
	const mod = "github.com/docker-credential-gcp/docker-credential-gcp"
	proxy := t.TempDir()
	dir := filepath.Join(proxy, mod, "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(map[string]string{"Version": v, "Time": "2026-12-03T08:30:00Z"})
	for name, data := range map[string][]byte{"list": []byte(v + "\n"), v + ".info": info, v + ".mod": gomod} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(dir, v+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	z := zip.NewWriter(f)
	err = filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != src {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(src, path)
		w, err := z.Create(mod + "@" + v + "/" + filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err == nil {
			_, err = w.Write(data)
		}
		return err
	})
	if err == nil {
		err = z.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return proxy
}

// `CGO_ENABLED=0 go install …@v1.2.3`, the README's line, gives a static
// binary that reports 1.2.3 from its build info (no -ldflags), served here
// by a file:// proxy with the dependencies from the local module cache.
func TestGoInstallReportsModuleVersion(t *testing.T) {
	t.Parallel()
	proxy := verProxy(t, "v1.2.3")
	goEnv := instGoEnv(t)
	gobin := t.TempDir()
	c := exec.Command("go", "install", "github.com/docker-credential-gcp/docker-credential-gcp@v1.2.3")
	c.Dir = t.TempDir()
	c.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+gobin, "GOTOOLCHAIN=local", "GOSUMDB=off", "GOFLAGS=-modcacherw",
		"GOMODCACHE="+t.TempDir(), "GOCACHE="+goEnv["GOCACHE"],
		"GOPROXY=file://"+proxy+",file://"+filepath.Join(goEnv["GOMODCACHE"], "cache", "download"))
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	bin := filepath.Join(gobin, "docker-credential-gcp")
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if !regexp.MustCompile(`^docker-credential-gcp 1\.2\.3 \(unknown, go1\.[0-9.]+\)\n$`).Match(out) {
		t.Errorf("go install @v1.2.3 says %q", out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("go install with CGO_ENABLED=0 gave a dynamically linked binary")
		}
	}
}
