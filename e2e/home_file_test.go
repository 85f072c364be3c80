package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// HOME set to a regular file (seen in CI containers) means no settings, no
// store and no cache, as HOME unset does: get still mints from the
// environment's credential, list is empty, erase succeeds.
func TestHomeIsARegularFile(t *testing.T) {
	t.Parallel()
	e, g, _ := protoKeyEnv(t, "home-file@proj.iam.gserviceaccount.com")
	home := filepath.Join(t.TempDir(), "home")
	if err := os.WriteFile(home, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.Set("HOME", home)
	e.Set("XDG_CONFIG_HOME", "")
	e.Set("XDG_CACHE_HOME", "")
	e.Set("DOCKER_CONFIG", "")
	e.Set("CLOUDSDK_CONFIG", "")

	r := badRun(t, e, []byte("gcr.io\n"), "get")
	if r.Code != 0 {
		t.Fatalf("get with HOME a regular file: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	protoExpectIssued(t, g, protoExpectCreds(t, r, "gcr.io"), "home-file@proj.iam.gserviceaccount.com", "jwt")
	if r := badRun(t, e, nil, "list"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "{}" {
		t.Errorf("list: exit %d, %q %q; want {}", r.Code, r.Stdout, r.Stderr)
	}
	if r := badRun(t, e, []byte("gcr.io\n"), "erase"); r.Code != 0 {
		t.Errorf("erase: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
	}
	d := badRun(t, e, nil, "doctor")
	if d.Code != 0 || !strings.Contains(d.Stdout, "a regular file stands where a directory on its path should be") {
		t.Errorf("doctor: exit %d\n%s%s", d.Code, d.Stdout, d.Stderr)
	}
	for _, line := range strings.Split(d.Stdout, "\n") {
		if strings.Count(line, home) > 1 {
			t.Errorf("doctor prints a path twice: %q", line)
		}
	}
}
