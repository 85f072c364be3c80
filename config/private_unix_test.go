//go:build unix

package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
)

// A config dir or settings file that another user could have written is
// reported (CheckDir, Load) and never written into (Save).
func TestSettingsNotPrivateRefused(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	if err := CheckDir(); err != nil {
		t.Errorf("CheckDir before the dir exists: %v", err)
	}
	if err := Save(Config{KeyFile: "/k.json"}); err != nil {
		t.Fatal(err)
	}
	dir, _ := Dir()
	path := filepath.Join(dir, "config.json")
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(); !errors.Is(err, atomicfile.ErrUntrusted) || c.KeyFile != "" {
		t.Errorf("Load of a 0666 settings file = %+v, %v; want nothing, ErrUntrusted", c, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(); !errors.Is(err, atomicfile.ErrUntrusted) {
		t.Errorf("CheckDir of a 0777 dir: %v, want ErrUntrusted", err)
	}
	if err := Save(Config{KeyFile: "/other.json"}); !errors.Is(err, atomicfile.ErrUntrusted) {
		t.Errorf("Save into a 0777 dir: %v, want ErrUntrusted", err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "/k.json") {
		t.Errorf("Save wrote into the 0777 dir: %s", data)
	}
}
