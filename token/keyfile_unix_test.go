//go:build unix

package token

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestCredentialFileFIFO(t *testing.T) {
	isolateEnv(t)
	fifo := filepath.Join(t.TempDir(), "key.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	start := time.Now()
	wantBroken(t, keyFileSource{path: fifo}, "is not a regular file (a named pipe)")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", fifo)
	wantBroken(t, adcEnvSource{}, "is not a regular file")
	if d := time.Since(start); d > time.Second {
		t.Errorf("a FIFO held the read for %v", d)
	}
	// Even past the Stat check, opening a FIFO must not wait for a writer.
	done := make(chan error, 1)
	go func() { _, err := openCredentialFile(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("read a FIFO as a credential file")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}
}
