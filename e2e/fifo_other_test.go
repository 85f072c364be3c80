//go:build !unix

package e2e

import "testing"

// mkfifo skips the test: this OS has no named pipes in the file system, so
// a FIFO cannot be planted where a file is expected.
func mkfifo(t *testing.T, _ string) {
	t.Helper()
	t.Skip("SKIP: no FIFOs in the file system on this OS")
}
