//go:build unix

package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// A local attacker who can create XDG_CACHE_HOME/XDG_CONFIG_HOME's
// docker-credential-gcp dir before the victim (e.g. when those point into
// /tmp) plants a dir that is theirs, or one the victim owns but that
// anyone can write. These tests play each attack the review found.

// attackerUID owns what the attacker plants (when the test runs as root).
const attackerUID = 65534

// plantedDirCases are the two ways a planted dir is not the victim's
// private dir: another user's (needs root to simulate), or world-writable.
var plantedDirCases = []struct {
	name    string
	foreign bool
}{
	{"world-writable dir of another user", true},
	{"world-writable dir", false},
}

// plantDir makes dir (mode 0777) and gives it and each of files to the
// attacker when foreign.
func plantDir(t *testing.T, dir string, foreign bool, files map[string][]byte) {
	t.Helper()
	if foreign && os.Geteuid() != 0 {
		t.Skip("SKIP: simulating another user's files needs root; the world-writable case runs without it")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
		if foreign {
			if err := os.Chown(p, attackerUID, attackerUID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if foreign {
		if err := os.Chown(dir, attackerUID, attackerUID); err != nil {
			t.Fatal(err)
		}
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	return names
}

// metadataEntry runs get once for a user of metadata server m and returns
// the name and content of the cache entry it wrote: the name is a hash of
// the metadata host and scope, which an attacker can compute too.
func metadataEntry(t *testing.T, m *fake.Metadata) (string, map[string]any) {
	t.Helper()
	probe := NewEnv(t)
	probe.Set("GCE_METADATA_HOST", m.Host())
	cacheGet(t, probe, "gcr.io")
	entries := cacheEntries(t, probe)
	if len(entries) != 1 {
		t.Fatalf("a metadata get left %d cache entries, want 1", len(entries))
	}
	data, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]any
	if err := json.Unmarshal(data, &entry); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(entries[0]), entry
}

// A planted cache dir holding a forged metadata-token entry under its
// predictable name: the forged token is never served, get mints from the
// metadata server, nothing is written into the dir, and doctor says why.
func TestPlantedCacheDirNotTrusted(t *testing.T) {
	t.Parallel()
	m := fake.NewMetadata(t, "victim-vm@proj.iam.gserviceaccount.com")
	name, entry := metadataEntry(t, m)
	entry["access_token"] = "forged-metadata-token"
	entry["expiry"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	forged, _ := json.Marshal(entry)

	for _, c := range plantedDirCases {
		t.Run(c.name, func(t *testing.T) {
			e := NewEnv(t)
			e.Set("GCE_METADATA_HOST", m.Host())
			plantDir(t, cacheDir(e), c.foreign, map[string][]byte{name: forged})

			for range 2 {
				tok := cacheGet(t, e, "gcr.io")
				if tok == "forged-metadata-token" {
					t.Fatal("get served the forged cache entry")
				}
				if !m.Issued(tok) {
					t.Fatalf("get returned %q, not a token of the metadata server", tok)
				}
			}
			if names := dirNames(t, cacheDir(e)); len(names) != 1 || names[0] != name {
				t.Errorf("the planted dir now holds %v; want only the planted entry (no lock, no token of ours)", names)
			}
			r := e.Run("", "doctor")
			reason := "writable by group or others"
			if c.foreign {
				reason = "owned by uid 65534"
			}
			if !strings.Contains(r.Stdout, "not used, so every call mints a token") || !strings.Contains(r.Stdout, reason) || !strings.Contains(r.Stdout, "chmod 700") {
				t.Errorf("doctor does not say why the cache is not used:\n%s", r.Stdout)
			}
		})
	}
}

// In the victim's own private cache dir, a symbolic link planted at an
// entry's lock is not followed (its target is not created), and one at the
// entry itself is not read.
func TestCacheSymlinksNotFollowed(t *testing.T) {
	t.Parallel()
	m := fake.NewMetadata(t, "victim-vm@proj.iam.gserviceaccount.com")
	name, entry := metadataEntry(t, m)
	entry["access_token"] = "forged-metadata-token"
	forged, _ := json.Marshal(entry)

	e := NewEnv(t)
	e.Set("GCE_METADATA_HOST", m.Host())
	if err := os.MkdirAll(cacheDir(e), 0o700); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	victim := filepath.Join(elsewhere, "victim-file")
	forgedPath := filepath.Join(elsewhere, "forged.json")
	if err := os.WriteFile(forgedPath, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(cacheDir(e), strings.TrimSuffix(name, ".json")+".lock")
	if err := os.Symlink(victim, lock); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(forgedPath, filepath.Join(cacheDir(e), name)); err != nil {
		t.Fatal(err)
	}

	tok := cacheGet(t, e, "gcr.io")
	if tok == "forged-metadata-token" || !m.Issued(tok) {
		t.Fatalf("get returned %q: the entry's symbolic link was followed", tok)
	}
	if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock's symbolic link was followed: its target exists (%v)", err)
	}
	if again := cacheGet(t, e, "gcr.io"); again != tok {
		t.Errorf("second get = %q, want the token the first cached", again)
	}
}

// A planted settings dir whose config.json adds the attacker's registry
// (and whose store holds a forged token for gcr.io): ignored with one
// warning line on stderr saying which dir and what to do; the victim's
// token is never minted for, nor sent to, the attacker's host.
func TestPlantedSettingsIgnored(t *testing.T) {
	t.Parallel()
	settings, _ := json.Marshal(map[string]any{"registries": []string{"registry.evil.example"}})
	store, _ := json.Marshal(map[string]any{"credentials": map[string]any{
		"gcr.io": map[string]any{"username": "oauth2accesstoken", "secret": "forged-stored-token", "stored_at": time.Now().UTC()},
	}})
	for _, c := range plantedDirCases {
		t.Run(c.name, func(t *testing.T) {
			e, g, _ := protoKeyEnv(t, "victim@proj.iam.gserviceaccount.com")
			dir := filepath.Join(e.ConfigHome, "docker-credential-gcp")
			plantDir(t, dir, c.foreign, map[string][]byte{"config.json": settings, "credentials.json": store})

			r := e.Run("registry.evil.example", "get")
			if r.Code != 1 || strings.TrimSpace(r.Stdout) != "credentials not found in native keychain" {
				t.Errorf("get for the planted registry: exit %d, stdout %q; want not found", r.Code, r.Stdout)
			}
			if n := g.Count("any"); n != 0 {
				t.Errorf("%d token requests for the planted registry, want 0", n)
			}
			assertOneWarning(t, r.Stderr, dir)

			r = e.Run("gcr.io", "get")
			tok := protoExpectCreds(t, r, "gcr.io")
			protoExpectIssued(t, g, tok, "victim@proj.iam.gserviceaccount.com", "jwt")
			assertOneWarning(t, r.Stderr, dir)

			r = e.Run("", "doctor")
			if !strings.Contains(r.Stdout, "warn  ignoring the settings and stored credentials: "+dir) {
				t.Errorf("doctor does not say the settings are ignored:\n%s", r.Stdout)
			}
		})
	}

	// The dir is the victim's, but the settings file in it is not private.
	t.Run("world-writable settings file", func(t *testing.T) {
		e, g, _ := protoKeyEnv(t, "victim@proj.iam.gserviceaccount.com")
		path := filepath.Join(e.ConfigHome, "docker-credential-gcp", "config.json")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, settings, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		r := e.Run("registry.evil.example", "get")
		if r.Code != 1 || g.Count("any") != 0 {
			t.Errorf("get for the planted registry: exit %d, %d token requests; want not found, none", r.Code, g.Count("any"))
		}
		if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "ignoring the settings: "+path+" is writable by group or others") {
			t.Errorf("stderr %q, want one warning naming the file", r.Stderr)
		}
	})
}

// assertOneWarning checks stderr is one warning line naming dir and what
// to do.
func assertOneWarning(t *testing.T, stderr, dir string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 {
		t.Fatalf("stderr has %d lines, want one warning: %q", len(lines), stderr)
	}
	for _, want := range []string{"warning: ignoring the settings and stored credentials", dir, "chmod 700", "XDG_CONFIG_HOME"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("warning %q lacks %q", lines[0], want)
		}
	}
}
