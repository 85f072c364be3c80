package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// endlessLines is stdin that never ends, as `yes gcr.io` gives.
type endlessLines struct{ line []byte }

func (r endlessLines) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r.line)
	}
	return n, nil
}

// runWithStdin runs the binary with stdin from r (nil: none), killing it
// after badTimeout: a run that needs the kill fails the test.
func runWithStdin(t *testing.T, e *Env, r io.Reader, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), badTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, binary, args...)
	c.Env, c.Dir = e.Environ(), e.Home
	if r != nil {
		c.Stdin = r
	}
	c.WaitDelay = time.Second
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	start := time.Now()
	err := c.Run()
	res := Result{Stdout: out.String(), Stderr: errOut.String(), Elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("%v did not end within %v (killed)", args, badTimeout)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running %v: %v", args, err)
	}
	return res
}

// get, store and erase read at most 1 MiB of stdin: endless input (the
// protocol library joins every line) is one clear error, not a process
// that grows until it is killed.
func TestProtocolStdinCapped(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	for _, action := range []string{"get", "store", "erase"} {
		r := runWithStdin(t, e, endlessLines{[]byte("gcr.io\n")}, action)
		badAssertOneLine(t, r, true, action+": stdin holds more than 1 MiB")
	}
	// Under the cap, many lines are still one server URL.
	r := runWithStdin(t, e, strings.NewReader("gcr.io"+strings.Repeat("\n", 900<<10)), "get")
	if r.Code != 1 || strings.TrimSpace(r.Stdout) != "credentials not found in native keychain" {
		t.Errorf("get with 900 KiB of newlines: exit %d, stdout %q; want not found", r.Code, r.Stdout)
	}
}

// plantDevZero makes path a symbolic link to /dev/zero.
func plantDevZero(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", path); err != nil {
		t.Fatal(err)
	}
}

// docker's config.json as a link to /dev/zero or as a FIFO: doctor and
// configure-docker --dry-run report it at once instead of reading forever
// or waiting for a writer.
func TestDockerConfigNotARegularFile(t *testing.T) {
	t.Parallel()
	for name, plant := range map[string]func(*testing.T, string){"/dev/zero": plantDevZero, "FIFO": mkfifo} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t)
			plant(t, filepath.Join(e.DockerConfig, "config.json"))

			r := runWithStdin(t, e, nil, "doctor")
			if !strings.Contains(r.Stdout, "config.json") || !strings.Contains(r.Stdout, "is not a regular file") {
				t.Errorf("doctor does not say config.json is not a regular file:\n%s%s", r.Stdout, r.Stderr)
			}
			r = runWithStdin(t, e, nil, "configure-docker", "--dry-run")
			badAssertOneLine(t, r, false, "config.json", "is not a regular file")
		})
	}
}

// drone-registry --secret-file naming /dev/zero or a FIFO fails at once,
// rather than growing or hanging where SIGTERM is not yet handled.
func TestDroneSecretFileNotARegularFile(t *testing.T) {
	t.Parallel()
	for name, plant := range map[string]func(*testing.T, string){"/dev/zero": plantDevZero, "FIFO": mkfifo} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t)
			secret := filepath.Join(t.TempDir(), "secret")
			plant(t, secret)
			r := runWithStdin(t, e, nil, "drone-registry", "--bind", "127.0.0.1:0", "--secret-file", secret)
			badAssertOneLine(t, r, false, "secret file", "not a regular file")
		})
	}
}
