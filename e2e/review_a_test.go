package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// revaMkfifo replaces path (if present) with a FIFO that nobody writes to.
func revaMkfifo(t *testing.T, path string) {
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

// A FIFO or a device planted at the path of a cache entry, a lock, the
// store or the settings file must not hang get (a FIFO without a writer
// blocks a plain open) nor flood it (/dev/zero). The cache is ignored; the
// store and settings are reported as broken, in one line.
func TestRevAPlantedFilesDoNotHang(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, path string)
	}{
		{"FIFO", revaMkfifo},
		{"/dev/zero", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run("cache files are a "+c.name, func(t *testing.T) {
			t.Parallel()
			e, g, _ := protoKeyEnv(t, protoSAEmail)
			cacheGet(t, e, "gcr.io")
			files := cacheFiles(t, e)
			if len(files) < 2 {
				t.Fatalf("one get left %v in the cache; want an entry and its lock", files)
			}
			for _, f := range files {
				c.plant(t, f)
			}
			r := badRun(t, e, []byte("gcr.io"), "get")
			protoExpectIssued(t, g, protoExpectCreds(t, r, "gcr.io"), protoSAEmail, "jwt")
		})
	}

	t.Run("store file is a FIFO", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		revaMkfifo(t, filepath.Join(e.ConfigHome, "docker-credential-gcp", "credentials.json"))
		badAssertOneLine(t, badRun(t, e, []byte("gcr.io"), "get"), true, "credentials.json", "not a regular file")
		badAssertOneLine(t, badRun(t, e, nil, "list"), true, "credentials.json", "not a regular file")
	})

	t.Run("settings file is a FIFO", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		revaMkfifo(t, filepath.Join(e.ConfigHome, "docker-credential-gcp", "config.json"))
		badAssertOneLine(t, badRun(t, e, []byte("gcr.io"), "get"), true, "config.json", "not a regular file")
	})
}

// A cached token is served in place of a failed mint only when the failure
// may pass (network, 5xx). When the token endpoint refuses the key (revoked
// or deleted: 400 invalid_grant, 401, 403) get must say so, as SPEC §3
// demands, rather than hand out the old token.
func TestRevACacheRefusalNotServedStale(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		status int
		want   string
	}{
		{"400 invalid_grant", 0, "invalid_grant"},
		{"401", http.StatusUnauthorized, "HTTP 401"},
		{"403", http.StatusForbidden, "HTTP 403"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, g, key := protoKeyEnv(t, protoSAEmail)
			g.SetLifetime(5 * time.Minute) // < 10 min: the next get tries to mint
			cached := cacheGet(t, e, "gcr.io")
			g.RevokeWith(protoSAEmail, c.status)
			r := cacheRunBounded(t, e, "gcr.io")
			protoExpectError(t, r, append(protoKeySecrets(t, key), cached), "GOOGLE_APPLICATION_CREDENTIALS", "token endpoint refused the key", c.want)
		})
	}
}
