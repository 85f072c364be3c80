//go:build unix

package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO or a device planted where a file should be must neither hang the
// reader (a FIFO without a writer) nor flood it (/dev/zero).
func TestReadFileRefusesFIFOAndDevice(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	zero := filepath.Join(t.TempDir(), "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, zero} {
		done := make(chan error, 1)
		go func() { _, err := ReadFile(path, 1<<20); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("ReadFile(%s) = %v; want 'not a regular file'", filepath.Base(path), err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadFile(%s) blocked", filepath.Base(path))
		}
	}
}

// A FIFO at a lock's path fails or takes the lock at once; it never waits
// for a writer.
func TestNewLockDoesNotWaitOnFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "x.lock")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan struct{})
	go func() {
		l := NewLock(fifo, 0o600)
		if ok, _ := l.TryLock(); ok {
			_ = l.Unlock()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("locking a FIFO blocked")
	}
}
