package e2e

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// get, store, erase, list and version answer --help (and -h) with their
// help on stdout at once, even when stdin stays open and empty, as in a
// terminal: they never wait for input that a person asking for help will
// not type.
func TestProtocolActionsHelp(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	for _, action := range []string{"get", "store", "erase", "list", "version"} {
		for _, flag := range []string{"--help", "-h"} {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			c := e.Command(binary, action, flag)
			c.Stdin = r
			var out, errOut bytes.Buffer
			c.Stdout, c.Stderr = &out, &errOut
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				_ = c.Process.Kill()
				<-done
				t.Errorf("%s %s waited on stdin instead of printing help", action, flag)
			}
			w.Close()
			r.Close()
			if err != nil || !strings.HasPrefix(out.String(), "Usage: ") || !strings.Contains(out.String(), "docker-credential-gcp "+action) || errOut.Len() != 0 {
				t.Errorf("%s %s: %v\nstdout: %s\nstderr: %s", action, flag, err, out.String(), errOut.String())
			}
		}
	}
}
