//go:build !unix

package e2e

import (
	"errors"
	"os"
	"testing"
)

// mkfifo skips the test: this OS has no named pipes in the file system, so
// a FIFO cannot be planted where a file is expected.
func mkfifo(t *testing.T, _ string) {
	t.Helper()
	t.Skip("SKIP: no FIFOs in the file system on this OS")
}

// traceMkfifo fails: no FIFOs in the file system on this OS.
func traceMkfifo(string) error { return errors.ErrUnsupported }

// traceOpenReader is never called on this OS (traceMkfifo fails).
func traceOpenReader(path string) (*os.File, error) { return os.Open(path) }
