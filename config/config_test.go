package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoadRoundTripWithModes(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	if c, err := Load(); err != nil || c.KeyFile != "" {
		t.Fatalf("Load on empty dir = %+v, %v; want zero, nil", c, err)
	}
	want := Config{KeyFile: "/keys/k.json", Registries: []string{"registry.example.com"}}
	if err := Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := Load()
	if err != nil || got.KeyFile != want.KeyFile || len(got.Registries) != 1 || got.Registries[0] != want.Registries[0] {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}
	dir, _ := Dir()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(dir, "config.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestLoadCorruptNamesFile(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir, _ := EnsureDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte("{\n  \"key_file\": \"/k.json\",\n}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load()
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "at line 3, column 1") {
		t.Fatalf("Load of corrupt file = %v; want error naming %s and the line and column", err, path)
	}
}

// HOME (or XDG_CONFIG_HOME) set to a regular file holds no settings, as
// when it is unset: it is not an error for get.
func TestLoadUnderARegularFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "home")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", file)
	if c, err := Load(); err != nil || c.KeyFile != "" || c.Registries != nil {
		t.Fatalf("Load with HOME a regular file = %+v, %v; want no settings", c, err)
	}
}
