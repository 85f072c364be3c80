package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// testEnv is the private world isolateEnv builds for one test.
type testEnv struct {
	// Home, ConfigHome, CacheHome, Gcloud and Docker are empty temp dirs
	// standing for HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME, CLOUDSDK_CONFIG
	// and DOCKER_CONFIG.
	Home, ConfigHome, CacheHome, Gcloud, Docker string
}

// isolateEnv gives the test a world with no credentials and no config:
// HOME, XDG dirs, CLOUDSDK_CONFIG and DOCKER_CONFIG point to fresh temp
// dirs; GOOGLE_* credentials and every DOCKER_CREDENTIAL_GCP_* setting are
// cleared; the metadata server is a port that refuses, so a test never
// waits on, or reaches, a real one.
func isolateEnv(t *testing.T) *testEnv {
	t.Helper()
	root := t.TempDir()
	e := &testEnv{
		Home:       filepath.Join(root, "home"),
		ConfigHome: filepath.Join(root, "config"),
		CacheHome:  filepath.Join(root, "cache"),
		Gcloud:     filepath.Join(root, "gcloud"),
		Docker:     filepath.Join(root, "docker"),
	}
	for v, dir := range map[string]string{
		"HOME":            e.Home,
		"XDG_CONFIG_HOME": e.ConfigHome,
		"XDG_CACHE_HOME":  e.CacheHome,
		"CLOUDSDK_CONFIG": e.Gcloud,
		"DOCKER_CONFIG":   e.Docker,
	} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Setenv(v, dir)
	}
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "DOCKER_CREDENTIAL_GCP_") {
			t.Setenv(name, "")
		}
	}
	for _, v := range []string{
		"GOOGLE_APPLICATION_CREDENTIALS",
		"GOOGLE_OAUTH_ACCESS_TOKEN",
		"DOCKER_CREDENTIAL_GCP_REGISTRIES",
		"DOCKER_CREDENTIAL_GCP_NO_CACHE",
		"DOCKER_CREDENTIAL_GCP_IMPERSONATE",
	} {
		t.Setenv(v, "")
	}
	// The keyless CI source finds a CI by these: a test run inside one sees none.
	for _, v := range []string{
		"GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
		"BUILDKITE", "BUILDKITE_AGENT_ACCESS_TOKEN", "BUILDKITE_JOB_ID", "BUILDKITE_AGENT_ENDPOINT",
		"TF_BUILD", "SYSTEM_OIDCREQUESTURI", "SYSTEM_ACCESSTOKEN", "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
		"CIRCLECI", "CIRCLE_OIDC_TOKEN", "CIRCLE_OIDC_TOKEN_V2",
		"BITBUCKET_BUILD_NUMBER", "BITBUCKET_STEP_OIDC_TOKEN", "GITLAB_CI",
	} {
		t.Setenv(v, "")
	}
	t.Setenv("GCE_METADATA_HOST", fake.RefusedHost(t))
	return e
}

// runInProcess runs command with args and empty stdin, returning what it
// wrote to stdout and stderr and its error.
func runInProcess(t *testing.T, command func([]string, IO) error, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = command(args, IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return out.String(), errOut.String(), err
}
