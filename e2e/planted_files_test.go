package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// A FIFO or a device planted at the path of a cache entry, a lock, the
// store or the settings file must not hang get (a FIFO without a writer
// blocks a plain open) nor flood it (/dev/zero). The cache is ignored; the
// store and settings are reported as broken, in one line.
func TestPlantedFilesDoNotHang(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, path string)
	}{
		{"FIFO", mkfifo},
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
		mkfifo(t, filepath.Join(e.ConfigHome, "docker-credential-gcp", "credentials.json"))
		badAssertOneLine(t, badRun(t, e, []byte("gcr.io"), "get"), true, "credentials.json", "not a regular file")
		badAssertOneLine(t, badRun(t, e, nil, "list"), true, "credentials.json", "not a regular file")
	})

	t.Run("settings file is a FIFO", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		mkfifo(t, filepath.Join(e.ConfigHome, "docker-credential-gcp", "config.json"))
		badAssertOneLine(t, badRun(t, e, []byte("gcr.io"), "get"), true, "config.json", "not a regular file")
	})
}
