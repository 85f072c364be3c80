package helper

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testDirs are the per-test directories isolate points the environment at.
type testDirs struct {
	home, config, cache string
}

// isolate points every variable the helper or the token sources read at
// per-test temp dirs or empty values, and the metadata server at a closed
// loopback port, so no test sees the developer's credentials or the network.
func isolate(t testing.TB) testDirs {
	t.Helper()
	root := t.TempDir()
	d := testDirs{
		home:   filepath.Join(root, "home"),
		config: filepath.Join(root, "config"),
		cache:  filepath.Join(root, "cache"),
	}
	for _, dir := range []string{d.home, d.config, d.cache} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "DOCKER_CREDENTIAL_GCP_") {
			t.Setenv(name, "")
		}
	}
	t.Setenv("HOME", d.home)
	t.Setenv("XDG_CONFIG_HOME", d.config)
	t.Setenv("XDG_CACHE_HOME", d.cache)
	t.Setenv("CLOUDSDK_CONFIG", filepath.Join(d.home, "gcloud"))
	t.Setenv("APPDATA", filepath.Join(d.home, "appdata"))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "")
	t.Setenv("DOCKER_CREDENTIAL_GCP_REGISTRIES", "")
	t.Setenv("DOCKER_CREDENTIAL_GCP_NO_CACHE", "")
	t.Setenv("DOCKER_CREDENTIAL_GCP_IMPERSONATE", "")
	t.Setenv("GCE_METADATA_HOST", closedPort(t))
	t.Setenv("GCE_METADATA_IP", "")
	return d
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
