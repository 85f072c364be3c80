//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// mkfifo replaces path (if present) with a FIFO that nobody writes to.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("SKIP: cannot make a FIFO here: %v", err)
	}
}

// traceMkfifo makes a FIFO at path.
func traceMkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }

// traceOpenReader opens the FIFO at path for reading without waiting for
// a writer, so a writer's open does not block on our account.
func traceOpenReader(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
