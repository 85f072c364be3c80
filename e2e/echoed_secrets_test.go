package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drone/drone-go/plugin/registry"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

const (
	echoRefreshToken = "1//0gEchoedRefreshToken-abcdefghijklmnopqrstuvwxyz_0123456789ABCDEFGH"
	echoClientSecret = "GOCSPX-EchoedClientSecret0123"
)

// echoLeak returns the first run of 12 bytes of secret, raw or in any
// escaping a request carries it, that out contains, or "".
func echoLeak(out, secret string) string {
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret), strings.ToLower(url.QueryEscape(secret))}
	for _, f := range forms {
		for i := 0; i+12 <= len(f); i++ {
			if strings.Contains(out, f[i:i+12]) {
				return f[i : i+12]
			}
		}
	}
	return ""
}

// A token endpoint that echoes our request (form-encoded, so the refresh
// token reads 1%2F%2F…) after a long preamble, so that cutting the message
// short lands inside the secret: get, token, doctor and drone-registry's
// log never show any of it.
func TestEchoedSecretsRedactedEverywhere(t *testing.T) {
	t.Parallel()
	g := fake.NewGoogle(t)
	e := NewEnv(t)
	adc := protoWrite(t, t.TempDir(), "adc.json", g.AuthorizedUserJSON("echo.apps.googleusercontent.com", echoClientSecret, echoRefreshToken))
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", adc)
	// The cut at 300 bytes falls inside the refresh token with pad 130,
	// inside the client secret with pad 225.
	for _, pad := range []int{0, 130, 225} {
		g.SetEcho(func(_ *http.Request, body []byte) (int, string) {
			form, _ := url.ParseQuery(string(body))
			desc, _ := json.Marshal(strings.Repeat("z", pad) + " got " + string(body) + " / " + url.PathEscape(form.Get("refresh_token")))
			if pad == 130 {
				return 500, strings.Repeat("z", pad) + " got " + string(body)
			}
			return 400, `{"error":"invalid_request","error_description":` + string(desc) + `}`
		})
		runs := map[string]Result{
			"get":    e.Run("gcr.io", "get"),
			"token":  e.Run("", "token"),
			"doctor": e.Run("", "doctor"),
		}
		for name, r := range runs {
			if r.Code != 1 {
				t.Errorf("pad %d: %s exit %d, want 1 (the endpoint refused)\n%s%s", pad, name, r.Code, r.Stdout, r.Stderr)
			}
			for _, s := range []string{echoRefreshToken, echoClientSecret} {
				if leak := echoLeak(r.Stdout+r.Stderr, s); leak != "" {
					t.Errorf("pad %d: %s shows %q of a secret:\n%s%s", pad, name, leak, r.Stdout, r.Stderr)
				}
			}
		}
	}

	g.SetEcho(func(_ *http.Request, body []byte) (int, string) { return 400, "got " + string(body) })
	e.Set("DRONE_SECRET", srvSecret)
	p, endpoint := srvDrone(t, e, "--bind", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := registry.Client(endpoint, srvSecret, false).List(ctx, srvDroneRequest(1)); err == nil {
		t.Error("drone-registry answered although the token endpoint refused")
	}
	p.stop(t, 5*time.Second)
	log := p.log()
	if !strings.Contains(log, "[redacted]") {
		t.Errorf("drone-registry's log does not show the refusal, redacted:\n%s", log)
	}
	for _, s := range []string{echoRefreshToken, echoClientSecret} {
		if leak := echoLeak(log, s); leak != "" {
			t.Errorf("drone-registry's log shows %q of a secret:\n%s", leak, log)
		}
	}
}

// Secrets typed where a host or URL belongs: a token pasted as a binding's
// host, user info in an endpoint variable or in GCE_METADATA_HOST, and
// docker config keys with a password. No command that names the setting
// shows any of it, in any encoding.
func TestMisplacedSecretsNotEchoed(t *testing.T) {
	t.Parallel()
	const (
		accessToken  = "ya29.a0AfB_MisplacedAccessToken0123456789"
		clientSecret = "GOCSPX-MisplacedClientSecret0123"
		password     = "Pa55wordInAnEndpointURL"
		user         = "bobTheUserName"
	)
	g := fake.NewGoogle(t)
	podEnvVars := func(e *Env) {
		e.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", podProvider)
		e.Set("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", g.STSURL())
		e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
	}
	cases := map[string]func(e *Env){
		"token as a binding's host": func(e *Env) {
			e.Set("DOCKER_CREDENTIAL_GCP_BINDINGS", accessToken+"=gcr.io")
		},
		"client secret as a binding's host": func(e *Env) {
			e.Set("DOCKER_CREDENTIAL_GCP_BINDINGS", clientSecret+"=/keys/k.json")
		},
		"client secret bound twice": func(e *Env) {
			e.Set("DOCKER_CREDENTIAL_GCP_REGISTRIES", clientSecret)
			e.Set("DOCKER_CREDENTIAL_GCP_BINDINGS", clientSecret+"=/a.json;"+strings.ToLower(clientSecret)+"=/b.json")
		},
		"wildcard host with a token": func(e *Env) {
			e.Set("DOCKER_CREDENTIAL_GCP_BINDINGS", "*"+accessToken+"=/a.json")
		},
		"IAM endpoint with user info": func(e *Env) {
			e.Set("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.env-token-for-impersonation")
			e.Set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", "pusher@proj.iam.gserviceaccount.com")
			podEnvVars(e)
			e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", "https://"+user+":"+password+"@127.0.0.1:1/")
		},
		"plain-http IAM endpoint with user info": func(e *Env) {
			e.Set("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.env-token-for-impersonation")
			e.Set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", "pusher@proj.iam.gserviceaccount.com")
			e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", "http://"+user+":"+password+"@iam.example/")
		},
		"STS endpoint with user info": func(e *Env) {
			podEnvVars(e)
			e.Set("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", "ftp://"+user+":"+password+"@sts.example/")
		},
		"metadata host with user info": func(e *Env) {
			e.Set("GCE_METADATA_HOST", user+":"+password+"@"+fake.RefusedHost(t))
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t)
			setup(e)
			tok := podSAToken(g, "team-a", "puller")
			runs := map[string]Result{
				"get":                      e.Run("gcr.io", "get"),
				"token":                    e.Run("", "token"),
				"doctor":                   e.Run("", "doctor"),
				"kubelet":                  e.Run(podRequest(t, "gcr.io/p/i", "", nil), "kubelet-credential-provider"),
				"kubelet with a pod token": e.Run(podRequest(t, "gcr.io/p/i", tok, nil), "kubelet-credential-provider"),
			}
			for run, r := range runs {
				out := r.Stdout + r.Stderr
				for _, s := range []string{accessToken, clientSecret, password, user} {
					if leak := echoLeak(out, s); leak != "" {
						t.Errorf("%s shows %q of a secret:\n%s", run, leak, out)
					}
					if leak := echoLeak(out, strings.ToLower(s)); leak != "" {
						t.Errorf("%s shows %q of a secret, lower-cased:\n%s", run, leak, out)
					}
				}
			}
		})
	}
}

// doctor and configure-docker name docker config keys, and advise
// docker logout for stale logins, without the user info a key may hold.
func TestDockerConfigKeyUserinfoNotEchoed(t *testing.T) {
	t.Parallel()
	const password = "Zq9xPa55wordKw7"
	e := NewEnv(t)
	if err := os.MkdirAll(e.DockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	config := `{"auths":{"https://bob:` + password + `@eu.gcr.io":{"auth":"Ym9iOnB3"}},` +
		`"credHelpers":{"https://bob:` + password + `@gcr.io":"gcp","eu.gcr.io":"gcp"}}`
	if err := os.WriteFile(filepath.Join(e.DockerConfig, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	runs := map[string]Result{
		"doctor":           e.Run("", "doctor", "--registry", "eu.gcr.io"),
		"configure-docker": e.Run("", "configure-docker", "--registries", "eu.gcr.io"),
	}
	for name, r := range runs {
		out := r.Stdout + r.Stderr
		if leak := echoLeak(out, password); leak != "" {
			t.Errorf("%s shows %q of the password:\n%s", name, leak, out)
		}
	}
	if d := runs["doctor"].Stdout; !strings.Contains(d, "[redacted]@eu.gcr.io") || !strings.Contains(d, "by hand") {
		t.Errorf("doctor does not name the stale login without its user info, or say how to remove it:\n%s", d)
	}
}
