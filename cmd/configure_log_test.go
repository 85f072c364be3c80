package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// configure-docker --log records where every call's trace goes: a file,
// made absolute and created private now, or stderr; a file that could
// never be written is refused and nothing is recorded; an empty --log forgets it.
func TestConfigureDockerLog(t *testing.T) {
	env, _ := configureEnv(t)
	t.Chdir(env.Home)
	_, stderr := configure(t, "--log", "state/trace.jsonl")
	want := filepath.Join(env.Home, "state", "trace.jsonl")
	if got := settingsOf(t).Log; got != want {
		t.Errorf("recorded trace %q, want %q", got, want)
	}
	if !strings.Contains(stderr, "trace to "+want) {
		t.Errorf("stderr does not say where the trace goes:\n%s", stderr)
	}
	assertFileMode(t, want, 0o600)
	assertFileMode(t, filepath.Dir(want), os.ModeDir|0o700)

	configure(t, "--log", "stderr")
	if got := settingsOf(t).Log; got != "stderr" {
		t.Errorf("recorded trace %q, want stderr", got)
	}

	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runInProcess(t, ConfigureDocker, "--log", filepath.Join(shared, "t.jsonl")); err == nil || !strings.Contains(err.Error(), "--log") {
		t.Errorf("--log in a dir others may write: %v, want refused", err)
	}
	if got := settingsOf(t).Log; got != "stderr" {
		t.Errorf("a refused --log changed the recorded trace to %q", got)
	}

	_, stderr = configure(t, "--log", "")
	if got := settingsOf(t).Log; got != "" || !strings.Contains(stderr, "no trace") {
		t.Errorf("--log '' left %q recorded; stderr:\n%s", got, stderr)
	}
}
