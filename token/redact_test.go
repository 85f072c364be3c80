package token

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

const (
	testRefreshToken = "1//0gLm3Xq7TzUv-Abcdefghijklmnop_QRSTUVWXyz0123456789AbCdEfGhIjKlMnOpQr"
	testClientSecret = "GOCSPX-s3cr3t<&>Value+/=0123"
	testPrivateKey   = "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n-----END PRIVATE KEY-----\n"
)

// leakedFragment returns a run of minSecretFragment bytes of a form of
// secret (raw, escaped, or a line of it) that out contains, or "".
func leakedFragment(out, secret string) string {
	for _, form := range secretForms([]string{secret}) {
		for i := 0; i+minSecretFragment <= len(form); i++ {
			if frag := form[i : i+minSecretFragment]; strings.Contains(out, frag) {
				return frag
			}
		}
	}
	return ""
}

func assertRedacted(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if frag := leakedFragment(out, s); frag != "" {
			t.Errorf("%s leaks %q of a secret:\n%s", what, frag, out)
		}
	}
}

func TestRedactEveryForm(t *testing.T) {
	secrets := []string{testRefreshToken, testClientSecret, testPrivateKey}
	jsonOf := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	lower := func(s string) string { return lowerEscapes(s) }
	for _, secret := range secrets {
		for name, text := range map[string]string{
			"raw":                 secret,
			"query-escaped":       url.QueryEscape(secret),
			"path-escaped":        url.PathEscape(secret),
			"JSON-escaped":        jsonOf(secret),
			"lower-case escapes":  lower(url.QueryEscape(secret)),
			"form body":           url.Values{"refresh_token": {secret}, "client_secret": {secret}}.Encode(),
			"cut short at end":    url.QueryEscape(secret)[:len(url.QueryEscape(secret))-5],
			"cut short at start":  secret[7:],
			"middle only":         secret[10 : len(secret)-10],
			"JSON of escaped":     jsonOf(url.QueryEscape(secret)),
			"twice in a sentence": "got " + secret + " and " + url.PathEscape(secret) + ".",
		} {
			out := redact("the server said: "+text+" (end)", secrets)
			assertRedacted(t, name, out, secrets...)
			if len(text) >= minSecretFragment && !strings.Contains(out, redactedMark) || !strings.HasPrefix(out, "the server said:") || !strings.HasSuffix(out, "(end)") {
				t.Errorf("%s: redact(%q) = %q, want the secret alone replaced", name, text, out)
			}
		}
	}
}

func TestRedactUnknownGoogleSecrets(t *testing.T) {
	for _, text := range []string{
		"refresh_token=" + url.QueryEscape(testRefreshToken),
		`{"refresh_token":"` + testRefreshToken + `"}`,
		"access_token=ya29.a0AfB_byC1234567890abcdefghij",
		"assertion=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJzYUBwIn0.c2lnbmF0dXJlLXZhbHVl",
	} {
		out := redact(text, nil)
		if !strings.Contains(out, redactedMark) || strings.Contains(out, "0gLm3Xq7") || strings.Contains(out, "ya29.a0") || strings.Contains(out, "eyJpc3M") {
			t.Errorf("redact(%q, nil) = %q", text, out)
		}
	}
	for _, text := range []string{"http://127.0.0.1//token", "answered HTTP 401", "invalid_grant: Bad Request"} {
		if out := redact(text, nil); out != text {
			t.Errorf("redact(%q, nil) = %q, want it unchanged", text, out)
		}
	}
}

// Shortening after redaction cannot leave a prefix of a secret: redact
// first, then oneLine, whatever the cut.
func TestRedactThenShortenLeavesNoPrefix(t *testing.T) {
	for pad := 250; pad < 310; pad++ {
		text := strings.Repeat("x", pad) + " " + url.QueryEscape(testRefreshToken) + " " + testClientSecret
		out := oneLine(redact(text, []string{testRefreshToken, testClientSecret}))
		assertRedacted(t, "shortened", out, testRefreshToken, testClientSecret)
	}
}

// A token endpoint that echoes our request in its error, in any encoding
// and cut at any length, never gets a secret into the error we report.
func TestMintErrorsRedactEchoedRequest(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	pad := strings.Repeat("p", 260)
	echoes := map[string]func(r *http.Request, body []byte) (int, string){
		"form body": func(r *http.Request, body []byte) (int, string) {
			return 400, pad + " you sent: " + string(body)
		},
		"form body cut short": func(r *http.Request, body []byte) (int, string) {
			return 400, pad + " you sent: " + string(body[:len(body)-20])
		},
		"lower-case escapes": func(r *http.Request, body []byte) (int, string) {
			return 500, "you sent: " + lowerEscapes(string(body))
		},
		"JSON error description": func(r *http.Request, body []byte) (int, string) {
			form, _ := url.ParseQuery(string(body))
			desc, _ := json.Marshal(pad + " refresh_token " + form.Get("refresh_token") + " client_secret " + form.Get("client_secret"))
			return 400, `{"error":"invalid_request","error_description":` + string(desc) + `}`
		},
		"path-escaped": func(r *http.Request, body []byte) (int, string) {
			form, _ := url.ParseQuery(string(body))
			return 502, "bad path /" + url.PathEscape(form.Get("refresh_token")) + "/" + url.PathEscape(form.Get("client_secret"))
		},
	}
	userJSON := g.AuthorizedUserJSON("client.apps.googleusercontent.com", testClientSecret, testRefreshToken)
	saJSON := g.ServiceAccountKey(t, "echo@proj.iam.gserviceaccount.com")
	var sa credentialJSON
	if err := json.Unmarshal(saJSON, &sa); err != nil {
		t.Fatal(err)
	}
	for name, echo := range echoes {
		g.SetEcho(echo)
		cred, err := credentialFromJSON(testContext(t), "test", userJSON, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cred.TokenSource.Token()
		if err == nil {
			t.Fatalf("%s: minted despite the error answer", name)
		}
		assertRedacted(t, name+" (authorized_user)", err.Error(), testRefreshToken, testClientSecret)

		cred, err = credentialFromJSON(testContext(t), "test", saJSON, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = cred.TokenSource.Token()
		if err == nil {
			t.Fatalf("%s: minted despite the error answer", name)
		}
		assertRedacted(t, name+" (service_account)", err.Error(), sa.PrivateKey)
		if strings.Contains(err.Error(), "eyJ") {
			t.Errorf("%s: the error quotes the signed JWT assertion: %s", name, err)
		}
	}
}

// IAM echoing the bearer token of the base credential in its error.
func TestImpersonationErrorRedactsEchoedBearer(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	t.Setenv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
	base := g.IssueToken("ci@proj.iam.gserviceaccount.com")
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", base)
	cred, err := Impersonate(testContext(t), mustFind(t, accessTokenEnvSource{}), impersonationTestTarget, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.SetEcho(func(r *http.Request, _ []byte) (int, string) {
		h, _ := json.Marshal(strings.Repeat("p", 280) + r.Header.Get("Authorization"))
		return 403, `{"error":{"status":"PERMISSION_DENIED","message":` + string(h) + `}}`
	})
	_, err = cred.TokenSource.Token()
	if err == nil {
		t.Fatal("impersonated despite the refusal")
	}
	assertRedacted(t, "impersonation error", err.Error(), base)
}
