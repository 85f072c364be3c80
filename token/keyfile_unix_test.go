//go:build unix

package token

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
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

// A credential file that another user can change is refused by every
// source that reads one, before anything is sent anywhere: whoever writes
// it decides where its tokens and the files it names go.
func TestCredentialFileOthersCanWrite(t *testing.T) {
	g := fake.NewGoogle(t)
	for _, mode := range []os.FileMode{0o664, 0o646, 0o666} {
		t.Run(mode.String(), func(t *testing.T) {
			isolateEnv(t)
			dir := t.TempDir()
			key := g.WriteServiceAccountKey(t, dir, "ci@proj.iam.gserviceaccount.com")
			if err := os.Chmod(key, mode); err != nil {
				t.Fatal(err)
			}
			want := []string{"refusing the credential file " + key, "writable by group or others", "chmod go-w " + key}
			wantBroken(t, keyFileSource{path: key}, want...)
			wantBroken(t, FromFile("binding", key, nil), want...)
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", key)
			wantBroken(t, adcEnvSource{}, want...)
			t.Setenv("CLOUDSDK_CONFIG", dir)
			adc := filepath.Join(dir, "application_default_credentials.json")
			if err := os.Rename(key, adc); err != nil {
				t.Fatal(err)
			}
			wantBroken(t, gcloudSource{}, "refusing the credential file "+adc, "chmod go-w "+adc)
			if _, err := ValidateFile(adc); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
				t.Errorf("ValidateFile of a %s file: %v, want refused", mode, err)
			}
			if n := g.Count("any"); n != 0 {
				t.Errorf("%d requests to the token endpoint", n)
			}
		})
	}
	t.Run("ID token file", func(t *testing.T) {
		// The job's ID token decides which identity STS hands tokens to.
		isolateEnv(t)
		path := writeTestFile(t, "id-token", []byte("eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln"))
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		t.Setenv(EnvIDTokenFile, path)
		if _, err := findIDToken(testProvider); err == nil || !strings.Contains(err.Error(), "refusing the credential file "+path) {
			t.Errorf("a world-writable %s: %v, want refused naming it", EnvIDTokenFile, err)
		}
	})
	t.Run("another user's", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("SKIP: giving a file to another user needs root; the mode checks run without it")
		}
		isolateEnv(t)
		key := g.WriteServiceAccountKey(t, t.TempDir(), "ci@proj.iam.gserviceaccount.com")
		if err := os.Chown(key, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		wantBroken(t, keyFileSource{path: key}, "refusing the credential file "+key, "owned by uid 65534, not you", "chowned to you")
	})
	t.Run("own read-only and root's", func(t *testing.T) {
		isolateEnv(t)
		key := g.WriteServiceAccountKey(t, t.TempDir(), "ci@proj.iam.gserviceaccount.com")
		for _, mode := range []os.FileMode{0o600, 0o644, 0o444} {
			if err := os.Chmod(key, mode); err != nil {
				t.Fatal(err)
			}
			mustFind(t, keyFileSource{path: key})
		}
	})
}
