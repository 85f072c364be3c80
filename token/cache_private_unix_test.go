//go:build unix

package token

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
)

// plantEntry writes a well-formed, fresh entry for identity holding
// access token tok into dir, as another local user could.
func plantEntry(t *testing.T, c *FileCache, identity, tok string) string {
	t.Helper()
	now := time.Now()
	data, _ := json.Marshal(cacheEntry{Version: cacheFormatVersion, Identity: identity, AccessToken: tok, ObtainedAt: now, Expiry: now.Add(time.Hour)})
	path := c.path(identity)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// giveAway makes path another user's (needs root) or skips.
func giveAway(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: giving a file to another user needs root; the mode cases run without it")
	}
	if err := os.Lchown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
}

// A cache dir that is not private to the user (another user could have
// made it, or can write into it) is not used: no forged entry is served,
// nothing is written there, every call mints (in-process memory aside).
func TestCacheRefusesDirNotPrivate(t *testing.T) {
	for name, plant := range map[string]func(t *testing.T, dir string){
		"dir writable by others": func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		},
		"dir writable by group": func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o770); err != nil {
				t.Fatal(err)
			}
		},
		"dir of another user": func(t *testing.T, dir string) { giveAway(t, dir) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "docker-credential-gcp")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			c := NewFileCache(dir)
			forged := plantEntry(t, c, "id", "forged-token")
			plant(t, dir)
			if err := c.Unusable(); !errors.Is(err, atomicfile.ErrUntrusted) {
				t.Fatalf("Unusable() = %v, want ErrUntrusted", err)
			}
			if _, ok := c.Lookup("id"); ok {
				t.Error("Lookup found the planted entry")
			}
			m := &countingMint{validity: time.Hour}
			if tok := mustToken(t, c.TokenSource(cacheCred("id", m))); tok.AccessToken == "forged-token" {
				t.Fatal("the planted entry was served")
			}
			if e := readEntry(t, forged); e.AccessToken != "forged-token" {
				t.Errorf("the minted token was written into the untrusted dir")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("untrusted dir holds %d files, want only the planted one (no lock, no temp)", len(entries))
			}
			mustToken(t, NewFileCache(dir).TokenSource(cacheCred("id", m)))
			if n := m.mints.Load(); n != 2 {
				t.Errorf("mints = %d, want 2 (nothing shared through the untrusted dir)", n)
			}
		})
	}
}

// In a private dir, an entry that is another user's, writable by others,
// or a symbolic link is a miss.
func TestCacheRefusesEntryNotPrivate(t *testing.T) {
	for name, plant := range map[string]func(t *testing.T, c *FileCache) string{
		"entry writable by others": func(t *testing.T, c *FileCache) string {
			p := plantEntry(t, c, "id", "forged-token")
			if err := os.Chmod(p, 0o666); err != nil {
				t.Fatal(err)
			}
			return p
		},
		"entry is a symbolic link": func(t *testing.T, c *FileCache) string {
			elsewhere := NewFileCache(t.TempDir())
			target := plantEntry(t, elsewhere, "id", "forged-token")
			if err := os.Symlink(target, c.path("id")); err != nil {
				t.Fatal(err)
			}
			return c.path("id")
		},
		"entry of another user": func(t *testing.T, c *FileCache) string {
			p := plantEntry(t, c, "id", "forged-token")
			giveAway(t, p)
			return p
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := NewFileCache(t.TempDir())
			plant(t, c)
			if _, ok := c.Lookup("id"); ok {
				t.Error("Lookup found the planted entry")
			}
			m := &countingMint{validity: time.Hour}
			if tok := mustToken(t, c.TokenSource(cacheCred("id", m))); tok.AccessToken == "forged-token" {
				t.Fatal("the planted entry was served")
			}
			// The mint replaced the planted file with one of ours.
			if tok := mustToken(t, NewFileCache(c.dir).TokenSource(cacheCred("id", m))); tok.AccessToken != "tok-1" || m.mints.Load() != 1 {
				t.Errorf("second process got %q after %d mints, want the cached tok-1", tok.AccessToken, m.mints.Load())
			}
		})
	}
}

// A symbolic link planted at an entry's lock path is not followed: get
// mints without the lock, and the link's target is never created.
func TestCacheLockSymlinkNotFollowed(t *testing.T) {
	c := NewFileCache(t.TempDir())
	victim := filepath.Join(t.TempDir(), "victim")
	lockPath := c.path("id")[:len(c.path("id"))-len(".json")] + ".lock"
	if err := os.Symlink(victim, lockPath); err != nil {
		t.Fatal(err)
	}
	m := &countingMint{validity: time.Hour}
	mustToken(t, c.TokenSource(cacheCred("id", m)))
	if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("taking the lock created the symlink's target: %v", err)
	}
	if fi, err := os.Lstat(lockPath); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the planted link changed: %v", err)
	}
}
