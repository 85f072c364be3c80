package token

import (
	"net/http"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// A token endpoint's failure is worded by its status class: only a 4xx
// refuses the key; a 5xx or 429, even one carrying an OAuth error code, is
// the server failing. An HTML answer (a proxy's error page, a captive
// portal) says so, names the host and what to check, instead of the JSON
// decoder's "invalid character '<'".
func TestMintErrorsWordedByAnswer(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	const email = "answers@proj.iam.gserviceaccount.com"
	key := g.ServiceAccountKey(t, email)
	user := g.AuthorizedUserJSON("cid.apps.googleusercontent.com", "GOCSPX-secret", "1//refresh-secret")
	html := http.Header{"Content-Type": {"text/html; charset=UTF-8"}}
	page := "<!DOCTYPE html><html><head><title>Hotel Wi-Fi</title></head><body>Log in</body></html>"
	htmlWant := []string{"the answer from " + g.URL + " was an HTML page", "not JSON", "captive portal", "HTTPS_PROXY", "reaches " + g.URL}

	for _, c := range []struct {
		name    string
		data    []byte
		status  int
		header  http.Header
		body    string
		want    []string
		notWant []string
	}{
		{"500 with an OAuth error code", key, http.StatusInternalServerError, nil, `{"error":"internal_failure","error_description":"backend error"}`,
			[]string{email, "token endpoint is failing (HTTP 500): internal_failure: backend error", "try again later"}, []string{"refused"}},
		{"503 for a user", user, http.StatusServiceUnavailable, nil, `{"error":"temporarily_unavailable"}`,
			[]string{"token endpoint is failing (HTTP 503)", "try again later"}, []string{"refused"}},
		{"429 with an OAuth error code", key, http.StatusTooManyRequests, nil, `{"error":"rate_limit_exceeded"}`,
			[]string{"token endpoint is rate-limiting requests (HTTP 429): rate_limit_exceeded"}, []string{"refused"}},
		{"400 is still a refusal", key, http.StatusBadRequest, nil, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`,
			[]string{"token endpoint refused the key: invalid_grant"}, nil},
		{"HTML page with 200", key, http.StatusOK, html, page, append(htmlWant, "(HTTP 200)"), []string{"invalid character", "Hotel"}},
		{"HTML page with 200 for a user", user, http.StatusOK, html, page, append(htmlWant, "(HTTP 200)"), []string{"invalid character", "GOCSPX", "refresh-secret"}},
		{"HTML page with 502", key, http.StatusBadGateway, html, page, append(htmlWant, "(HTTP 502)"), []string{"Hotel"}},
		{"HTML labelled as JSON", key, http.StatusOK, http.Header{"Content-Type": {"application/json"}}, "\n  " + page, append(htmlWant, "(HTTP 200)"), []string{"invalid character"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g.FailNext(1+maxRetries, c.status, c.header, c.body)
			defer g.FailNext(0, 0, nil, "")
			_, err := mustFind(t, FromJSON("k", c.data, nil)).TokenSource.Token()
			if err == nil {
				t.Fatal("minting succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q says %q", err, w)
				}
			}
		})
	}
}

// IAM words impersonation failures the same way: a 500 is IAM failing, not
// IAM refusing, worded as the token endpoint's are.
func TestImpersonationFailureWordedByStatus(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	t.Setenv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", g.IssueToken("ci@proj.iam.gserviceaccount.com"))
	cred, err := Impersonate(testContext(t), mustFind(t, accessTokenEnvSource{}), impersonationTestTarget, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.FailNext(1+maxRetries, http.StatusInternalServerError, nil, `{"error":{"code":500,"status":"INTERNAL","message":"oops"}}`)
	_, err = cred.TokenSource.Token()
	if err == nil || !strings.Contains(err.Error(), "IAM is failing (HTTP 500): INTERNAL oops") ||
		!strings.Contains(err.Error(), "try again later") || strings.Contains(err.Error(), "refused") {
		t.Errorf("error %v, want IAM failing (HTTP 500), not refusing", err)
	}
}
