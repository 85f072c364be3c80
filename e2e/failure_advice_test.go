package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// What get, token and doctor say when no token can be had must match the
// cause: a network that cannot reach the endpoint, a proxy's page or a
// failing server is not the credential's fault, and only a refusal says to
// fix the credential.

// adviceFixSource is doctor's advice for a credential that exists but fails.
const adviceFixSource = "fix that credential source"

// adviceKeyEnv makes e a user whose key file sends its token requests to
// tokenURI; "" keeps the fake Google's own.
func adviceKeyEnv(t *testing.T, e *Env, g *fake.Google, tokenURI string) {
	t.Helper()
	path := g.WriteServiceAccountKey(t, t.TempDir(), faultSA)
	if tokenURI != "" {
		var key map[string]any
		data, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(data, &key)
		}
		if err != nil {
			t.Fatal(err)
		}
		key["token_uri"] = tokenURI
		if data, err = json.Marshal(key); err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(t.TempDir(), "key.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", path)
	// Go's own resolver, whatever the platform's default: it refuses a
	// name with a label over 63 bytes (RFC 1035) before any query, so the
	// DNS case below sends no packet anywhere and answers at once.
	e.Set("GODEBUG", "netdns=go")
}

// unresolvableHost is a name Go's resolver rejects locally as not found.
var unresolvableHost = strings.Repeat("x", 64) + ".googleapis.com"

func TestFailureAdviceMatchesCause(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		setup    func(*testing.T, *fake.Google, *Env) string // returns the key's token_uri, or ""
		want     []string
		fixHints bool // doctor may say to fix the credential
	}{
		{"HTTP 500 with an OAuth error", func(t *testing.T, g *fake.Google, e *Env) string {
			g.FailNext(100, http.StatusInternalServerError, nil, `{"error":"backend_error"}`)
			return ""
		}, []string{"token endpoint is failing (HTTP 500): backend_error", "try again later"}, false},
		{"HTTP 503 with a plain body", func(t *testing.T, g *fake.Google, e *Env) string {
			g.FailNext(100, http.StatusServiceUnavailable, nil, "Service Unavailable")
			return ""
		}, []string{"token endpoint is failing (HTTP 503): Service Unavailable", "try again later"}, false},
		{"HTTP 503 with Google's error", func(t *testing.T, g *fake.Google, e *Env) string {
			g.FailNext(100, http.StatusServiceUnavailable, nil, `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`)
			return ""
		}, []string{"token endpoint is failing (HTTP 503): UNAVAILABLE The service is currently unavailable.", "try again later"}, false},
		{"an HTML proxy page", func(t *testing.T, g *fake.Google, e *Env) string {
			g.SetMalformed(true)
			return ""
		}, []string{"was an HTML page", "HTTPS_PROXY"}, false},
		{"connection refused", func(t *testing.T, g *fake.Google, e *Env) string {
			return "http://" + fake.RefusedHost(t) + "/token"
		}, []string{"cannot reach http://127.0.0.1:", "refused the connection", "check that address"}, false},
		{"DNS failure", func(t *testing.T, g *fake.Google, e *Env) string {
			return "https://" + unresolvableHost + "/token"
		}, []string{"cannot reach https://" + unresolvableHost, "the name " + unresolvableHost + " is not known to DNS", "DNS settings"}, false},
		{"a proxy that refuses", func(t *testing.T, g *fake.Google, e *Env) string {
			e.Set("HTTPS_PROXY", "http://"+fake.RefusedHost(t))
			return "https://oauth2.googleapis.com/token" // the proxy resolves it, never this machine
		}, []string{"cannot reach https://oauth2.googleapis.com: the proxy 127.0.0.1:", "refused the connection", "check HTTPS_PROXY"}, false},
		{"a refused key", func(t *testing.T, g *fake.Google, e *Env) string {
			g.Revoke(faultSA)
			return ""
		}, []string{"token endpoint refused the key: invalid_grant"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := fake.NewGoogle(t)
			e := NewEnv(t)
			adviceKeyEnv(t, e, g, c.setup(t, g, e))
			e.Set("DOCKER_CREDENTIAL_GCP_NO_CACHE", "1")

			get := badRun(t, e, []byte("gcr.io\n"), "get")
			badAssertOneLine(t, get, true, append([]string{faultSA}, c.want...)...)
			tok := badRun(t, e, nil, "token")
			badAssertOneLine(t, tok, false, append([]string{"docker-credential-gcp token: "}, c.want...)...)
			for _, r := range []Result{get, tok} {
				for _, raw := range []string{"dial tcp", "no such host", "connect:", "oauth2: cannot fetch token", "answered HTTP"} {
					if strings.Contains(r.Stdout+r.Stderr, raw) {
						t.Errorf("the error shows Go's or x/oauth2's raw %q: %q", raw, r.Stdout+r.Stderr)
					}
				}
			}

			d := badRun(t, e, nil, "doctor")
			t.Logf("doctor: exit %d, stderr %q", d.Code, d.Stderr)
			if d.Code != 1 || !strings.Contains(d.Stdout, "FAIL") {
				t.Fatalf("doctor: exit %d, want 1 and a FAIL line:\n%s", d.Code, d.Stdout)
			}
			for _, w := range c.want {
				if !strings.Contains(d.Stderr, w) {
					t.Errorf("doctor's error lacks %q: %q", w, d.Stderr)
				}
			}
			if got := strings.Contains(d.Stdout+d.Stderr, adviceFixSource); got != c.fixHints {
				t.Errorf("doctor says %q: %v, want %v:\n%s%s", adviceFixSource, got, c.fixHints, d.Stdout, d.Stderr)
			}
		})
	}
}

// An impersonation failure names its source ("KEY impersonating TARGET")
// once, whichever step failed: IAM refusing, the base credential failing,
// or IAM out of reach.
func TestImpersonationErrorNamesSourceOnce(t *testing.T) {
	t.Parallel()
	const target = "pusher@p.iam.gserviceaccount.com"
	for _, c := range []struct {
		name  string
		setup func(*testing.T, *fake.Google, *Env)
		want  string
	}{
		{"IAM refuses", func(t *testing.T, g *fake.Google, e *Env) { g.Revoke(target) }, "IAM refused to impersonate " + target},
		{"the base key is refused", func(t *testing.T, g *fake.Google, e *Env) { g.Revoke(faultSA) }, "getting the base token: service account " + faultSA + ": token endpoint refused the key"},
		{"IAM out of reach", func(t *testing.T, g *fake.Google, e *Env) {
			e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", "http://"+fake.RefusedHost(t))
		}, "IAM: cannot reach http://127.0.0.1:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, g := faultKeyEnv(t)
			e.Set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", target)
			e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
			c.setup(t, g, e)
			r, _ := faultGet(t, e)
			badAssertOneLine(t, r, true, "getting a token from GOOGLE_APPLICATION_CREDENTIALS (", c.want)
			if n := strings.Count(r.Stdout, "impersonating "+target); n != 1 {
				t.Errorf("the error names %q %d times, want once: %q", "impersonating "+target, n, r.Stdout)
			}
		})
	}
}

// A keyless CI job whose ID-token endpoint cannot be reached says so as
// the token endpoint's failures do, and doctor does not blame the
// credential.
func TestKeylessCIUnreachableIDTokenEndpoint(t *testing.T) {
	t.Parallel()
	w := newCIWorld(t, fake.GitHubActions)
	w.e.Set("ACTIONS_ID_TOKEN_REQUEST_URL", "http://"+fake.RefusedHost(t)+"/_apis/token?api-version=2.0")
	w.e.Set("DOCKER_CREDENTIAL_GCP_NO_CACHE", "1")
	r := badRun(t, w.e, []byte("gcr.io\n"), "get")
	badAssertOneLine(t, r, true, "ID-token endpoint: cannot reach http://127.0.0.1:", "refused the connection", "check that address")
	ciNoSecrets(t, w, r)
	if strings.Contains(r.Stdout, "dial tcp") || strings.Contains(r.Stdout, "api-version") {
		t.Errorf("the error shows Go's dial error or the request URL: %q", r.Stdout)
	}
	d := badRun(t, w.e, nil, "doctor")
	if d.Code != 1 || strings.Contains(d.Stdout+d.Stderr, adviceFixSource) {
		t.Errorf("doctor: exit %d, and says %q after an unreachable endpoint:\n%s%s", d.Code, adviceFixSource, d.Stdout, d.Stderr)
	}
}
