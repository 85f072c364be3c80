//go:build unix

package trace

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }

func openNonBlocking(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// A trace that cannot be written costs the call one warning on stderr at
// most, per process, and never waits: a dir writable by others, a path
// below a regular file, a device, a FIFO with or without a reader.
func TestUnwritableTraceWarnsOnceAndNeverWaits(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	withReader := filepath.Join(dir, "fifo-read")
	if err := mkfifo(withReader); err != nil {
		t.Fatal(err)
	}
	reader, err := openNonBlocking(withReader)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	for _, path := range []string{filepath.Join(notDir, "t.jsonl"), filepath.Join(open, "t.jsonl"), "/dev/full", fifo, withReader} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Setenv(EnvLog, path)
			warned.Store(false)
			var warn bytes.Buffer
			for range 3 {
				c := Start("get")
				c.End(nil, &warn)
			}
			if n := strings.Count(warn.String(), "\n"); n != 1 || !strings.Contains(warn.String(), path) {
				t.Errorf("warnings after 3 calls:\n%s\nwant one line naming %s", warn.String(), path)
			}
		})
	}
}
