package buildkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildkitdStartTimeout bounds buildkitd's start, generously: on a loaded
// 2-core machine its first start (worker and snapshotter set-up) is slow.
const buildkitdStartTimeout = 2 * time.Minute

// buildkitd is a running daemon: root, the OCI worker and the native
// snapshotter, listening on a unix socket in a temp dir.
type buildkitd struct {
	// Addr is the daemon's address for --addr and buildx: unix://PATH.
	Addr string
	log  string
}

// startBuildkitd starts buildkitd as root with the OCI worker (runc as its
// runtime: Debian 12's crun 1.8 lacks the `run --keep` BuildKit 0.32 uses, host networking, the native snapshotter, which needs no overlay
// or fuse), trusting plain HTTP for the loopback registries httpHosts, and
// stops it when t ends. The daemon gets an empty environment of its own:
// credentials reach it only through the client's session, as in CI.
func startBuildkitd(t *testing.T, httpHosts ...string) *buildkitd {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "buildkitd with the OCI worker runs as root here and this test is not root")
	}
	runtime := requireTool(t, "runc", "apt-get install runc; .ci/run does")
	// A short path: a unix socket's path is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "bkd-")
	if err != nil {
		t.Fatal(err)
	}
	var config strings.Builder
	for _, h := range httpHosts {
		fmt.Fprintf(&config, "[registry.%q]\n  http = true\n", h)
	}
	configFile := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(configFile, []byte(config.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &buildkitd{Addr: "unix://" + filepath.Join(dir, "buildkitd.sock"), log: filepath.Join(dir, "buildkitd.log")}
	logFile, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	c := exec.Command(tools.buildkitd,
		"--addr", d.Addr,
		"--root", filepath.Join(dir, "root"),
		"--config", configFile,
		"--oci-worker=true", "--containerd-worker=false",
		"--oci-worker-binary", runtime,
		"--oci-worker-snapshotter=native",
		"--oci-worker-net=host",
	)
	c.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + dir, "TMPDIR=" + os.TempDir()}
	c.Stdout, c.Stderr = logFile, logFile
	if err := c.Start(); err != nil {
		t.Fatalf("starting buildkitd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	t.Cleanup(func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = c.Process.Kill()
			<-exited
			t.Errorf("buildkitd did not stop within a minute of SIGTERM; killed it")
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing buildkitd's dir: %v", err)
		}
	})
	if err := d.waitReady(exited); err != nil {
		t.Fatalf("%v\nbuildkitd's log:\n%s", err, d.logTail())
	}
	return d
}

// waitReady polls `buildctl debug workers` until the daemon answers with
// a worker, it exits, or buildkitdStartTimeout passes.
func (d *buildkitd) waitReady(exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildkitdStartTimeout)
	defer cancel()
	var last string
	for {
		c := exec.CommandContext(ctx, tools.buildctl, "--addr", d.Addr, "debug", "workers")
		out, err := c.CombinedOutput()
		if err == nil && strings.Contains(string(out), "linux/") {
			return nil
		}
		last = strings.TrimSpace(string(out))
		select {
		case err := <-exited:
			return fmt.Errorf("buildkitd exited before it answered: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("buildkitd did not answer within %v: buildctl debug workers said %q", buildkitdStartTimeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logTail returns the end of the daemon's log for a failure message.
func (d *buildkitd) logTail() string {
	b, err := os.ReadFile(d.log)
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
