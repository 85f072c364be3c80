package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Bad input must end in exit 1 and one clear line (stdout for the protocol
// actions, stderr for commands for people), never a panic, a hang, a line
// echoing megabytes of input, a secret, or a changed file.

// badTimeout bounds every run: no input may hang the helper.
const badTimeout = 10 * time.Second

// badMaxLine is the longest error line we accept: a message naming a file
// or two, not an echo of the input.
const badMaxLine = 1024

// badSecret marks secrets in bad input; no output may contain it.
const badSecret = "SECRET-bad-input-marker"

// badRun runs the helper with stdin, failing the test if it does not end
// within badTimeout.
func badRun(t *testing.T, e *Env, stdin []byte, args ...string) Result {
	t.Helper()
	return runWithStdin(t, e, bytes.NewReader(stdin), args...)
}

// badAssertOneLine checks exit 1 and exactly one short error line on
// the stream the command reports errors on, the other stream empty, no
// panic and no secret; want are substrings the line must hold.
func badAssertOneLine(t *testing.T, r Result, protocol bool, want ...string) {
	t.Helper()
	line, other, where := r.Stdout, r.Stderr, "stdout"
	if !protocol {
		line, other, where = r.Stderr, r.Stdout, "stderr"
	}
	t.Logf("exit %d in %v, %s: %.1000q", r.Code, r.Elapsed.Round(time.Millisecond), where, line)
	if r.Code != 1 {
		t.Errorf("exit status %d, want 1", r.Code)
	}
	all := r.Stdout + r.Stderr
	if strings.Contains(all, "panic") || strings.Contains(all, "goroutine ") {
		t.Errorf("output shows a panic or goroutine trace:\n%.2000s", all)
	}
	if strings.Contains(all, badSecret) {
		t.Errorf("output contains the secret:\n%.2000s", all)
	}
	if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") || strings.TrimSpace(line) == "" {
		t.Errorf("%s is not exactly one line: %.2000q", where, line)
	}
	if len(line) > badMaxLine {
		t.Errorf("%s line is %d bytes long, want at most %d (an error, not an echo of the input)", where, len(line), badMaxLine)
	}
	if other != "" {
		t.Errorf("unexpected output besides the error line: %.2000q", other)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("error line lacks %q: %q", w, line)
		}
	}
}

// badSnapshot records every file, directory and symlink under root (mode,
// content hash, link target), so a test can prove nothing was written.
// Empty *.lock files are left out: taking a lock is not writing data.
func badSnapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case info.Mode().IsRegular():
			if strings.HasSuffix(path, ".lock") && info.Size() == 0 {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			desc += " " + hex.EncodeToString(sum[:8])
		}
		snap[path] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", root, err)
	}
	return snap
}

// badAssertUnchanged compares two snapshots.
func badAssertUnchanged(t *testing.T, before, after map[string]string) {
	t.Helper()
	for path, was := range before {
		if now, ok := after[path]; !ok {
			t.Errorf("%s was removed", path)
		} else if now != was {
			t.Errorf("%s changed: %s -> %s", path, was, now)
		}
	}
	for path, now := range after {
		if _, ok := before[path]; !ok {
			t.Errorf("%s was created (%s)", path, now)
		}
	}
}

// badRandom is n reproducible random bytes.
func badRandom(n int) []byte {
	r := rand.New(rand.NewPCG(6, 6))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// badEnvWithStore is a fresh user with one stored credential, so a test
// can show that bad input leaves it alone.
func badEnvWithStore(t *testing.T) *Env {
	t.Helper()
	e := NewEnv(t)
	r := e.Run(`{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"ya29.existing"}`, "store")
	if r.Code != 0 {
		t.Fatalf("storing the existing credential: exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	return e
}

// badSymlinkLoop makes path a symlink into a two-link loop.
func badSymlinkLoop(t *testing.T, path string) {
	t.Helper()
	other := path + ".loop"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(other), path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(path), other); err != nil {
		t.Fatal(err)
	}
}

func TestBadProtocolInput(t *testing.T) {
	t.Parallel()
	mib := badRandom(1 << 20)
	bigSecret := `{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"` + badSecret + strings.Repeat("a", 1<<20) + `"}`
	cases := []struct {
		name   string
		action string
		stdin  []byte
		want   []string
	}{
		{"get empty stdin", "get", nil, []string{"server URL"}},
		{"get blank stdin", "get", []byte(" \n\t\n"), []string{"server URL"}},
		{"get 1 MiB random bytes", "get", mib, nil},
		{"get invalid UTF-8", "get", []byte("gcr.io\xff\xfe/p/i\n"), []string{"credentials not found"}},
		{"get NUL bytes", "get", []byte("gcr.io\x00.evil.com\n"), []string{"credentials not found"}},
		{"get only NUL bytes", "get", []byte("\x00\x00\x00\x00"), []string{"credentials not found"}},
		{"erase empty stdin", "erase", nil, []string{"server URL"}},
		{"erase 1 MiB random bytes", "erase", mib, nil},
		{"erase invalid UTF-8", "erase", []byte("gcr.io\xff\n"), []string{"invalid registry host"}},
		{"erase NUL bytes", "erase", []byte("gcr.io\x00\n"), []string{"control character"}},
		{"store JSON with wrong types", "store", []byte(`{"ServerURL":1,"Username":true,"Secret":[]}`), []string{"ServerURL"}},
		{"store secret of wrong type", "store", []byte(`{"ServerURL":"gcr.io","Username":"_json_key","Secret":{"private_key":"` + badSecret + `"}}`), []string{"Secret"}},
		{"store JSON array", "store", []byte(`["gcr.io","oauth2accesstoken","` + badSecret + `"]`), nil},
		{"store not JSON", "store", []byte("gcr.io oauth2accesstoken " + badSecret + "\n"), nil},
		{"store truncated JSON", "store", []byte(`{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"` + badSecret), nil},
		{"store 1 MiB secret", "store", []byte(bigSecret), nil},
		{"store 1 MiB random bytes", "store", mib, nil},
		{"store invalid UTF-8 host", "store", []byte(`{"ServerURL":"gcr.io` + "\xff" + `","Username":"oauth2accesstoken","Secret":"` + badSecret + `"}`), []string{"invalid registry host"}},
		{"store NUL in host", "store", []byte(`{"ServerURL":"gcr.io\u0000","Username":"oauth2accesstoken","Secret":"` + badSecret + `"}`), []string{"control character"}},
		{"store NUL in token", "store", []byte(`{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"ya29.` + badSecret + `\u0000x"}`), []string{"control characters"}},
		{"store raw NUL bytes", "store", []byte("{\"ServerURL\":\"gcr.io\x00\",\"Username\":\"oauth2accesstoken\",\"Secret\":\"" + badSecret + "\"}"), nil},
		{"store key that is not JSON", "store", []byte(`{"ServerURL":"gcr.io","Username":"_json_key","Secret":"` + badSecret + `"}`), []string{"credential JSON"}},
		{"store unknown username", "store", []byte(`{"ServerURL":"gcr.io","Username":"admin","Secret":"` + badSecret + `"}`), []string{"unsupported username"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := badEnvWithStore(t)
			root := filepath.Dir(e.Home)
			before := badSnapshot(t, root)
			r := badRun(t, e, c.stdin, c.action)
			badAssertOneLine(t, r, true, c.want...)
			badAssertUnchanged(t, before, badSnapshot(t, root))
			if list := e.Run("", "list"); list.Code != 0 || strings.TrimSpace(list.Stdout) != `{"gcr.io":"oauth2accesstoken"}` {
				t.Errorf("list after bad %s: exit %d, %q; want the existing entry only", c.action, list.Code, list.Stdout)
			}
		})
	}
}

// TestBadKeyFile points GOOGLE_APPLICATION_CREDENTIALS at things that are
// not credential files: get must name the variable and the problem, fast.
func TestBadKeyFile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		make func(t *testing.T, dir string) string
		want string
	}{
		{"10 MB file", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "big.json")
			data := append([]byte(`{"type":"service_account","private_key":"`+badSecret), bytes.Repeat([]byte("A"), 10_000_000)...)
			if err := os.WriteFile(path, append(data, `"}`...), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, "larger than 1 MiB"},
		{"directory", func(t *testing.T, dir string) string { return dir }, "is a directory"},
		{"FIFO", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "key.fifo")
			mkfifo(t, path)
			return path
		}, "not a regular file"},
		{"unreadable file", func(t *testing.T, dir string) string {
			if os.Geteuid() == 0 {
				t.Skip("SKIP: running as root, which reads a mode-000 file anyway; the unreadable key file case needs a normal user")
			}
			path := filepath.Join(dir, "key.json")
			if err := os.WriteFile(path, []byte(`{"type":"service_account"}`), 0o000); err != nil {
				t.Fatal(err)
			}
			return path
		}, "permission denied"},
		{"symlink loop", func(t *testing.T, dir string) string {
			path := filepath.Join(dir, "key.json")
			badSymlinkLoop(t, path)
			return path
		}, "symbolic links"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t)
			path := c.make(t, t.TempDir())
			e.Set("GOOGLE_APPLICATION_CREDENTIALS", path)
			root := filepath.Dir(e.Home)
			before := badSnapshot(t, root)
			r := badRun(t, e, []byte("gcr.io\n"), "get")
			badAssertOneLine(t, r, true, "GOOGLE_APPLICATION_CREDENTIALS", path, c.want)
			badAssertUnchanged(t, before, badSnapshot(t, root))
		})
	}
}

// TestBadConfigPaths makes the helper's own config dir, its store file
// and docker's config.json symlink loops.
func TestBadConfigPaths(t *testing.T) {
	t.Parallel()
	store := `{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"ya29.` + badSecret + `"}`
	t.Run("config dir is a symlink loop: store", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		badSymlinkLoop(t, filepath.Join(e.ConfigHome, "docker-credential-gcp"))
		before := badSnapshot(t, filepath.Dir(e.Home))
		r := badRun(t, e, []byte(store), "store")
		badAssertOneLine(t, r, true, "symbolic links", "docker-credential-gcp")
		badAssertUnchanged(t, before, badSnapshot(t, filepath.Dir(e.Home)))
	})
	t.Run("store file is a symlink loop: store", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		badSymlinkLoop(t, filepath.Join(e.ConfigHome, "docker-credential-gcp", "credentials.json"))
		before := badSnapshot(t, filepath.Dir(e.Home))
		r := badRun(t, e, []byte(store), "store")
		badAssertOneLine(t, r, true, "symbolic links", "credentials.json")
		badAssertUnchanged(t, before, badSnapshot(t, filepath.Dir(e.Home)))
	})
	t.Run("docker config.json is a symlink loop: configure-docker", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		badSymlinkLoop(t, filepath.Join(e.DockerConfig, "config.json"))
		before := badSnapshot(t, filepath.Dir(e.Home))
		r := badRun(t, e, nil, "configure-docker")
		badAssertOneLine(t, r, false, "config.json", "symlink")
		badAssertUnchanged(t, before, badSnapshot(t, filepath.Dir(e.Home)))
	})
}
