package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
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
