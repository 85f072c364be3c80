package token

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

func TestParseServiceAccountToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	jwt := func(claims string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2lnbmF0dXJl"
	}
	good := jwt(`{"iss":"https://k8s.example","sub":"system:serviceaccount:team-a:puller","exp":1800000600,"kubernetes.io":{"serviceaccount":{"name":"puller","uid":"u-1"}}}`)
	c, err := parseServiceAccountToken(good, now)
	if err != nil || c.name() != "team-a/puller" || c.uid() != "u-1" || c.Iss != "https://k8s.example" {
		t.Fatalf("parse good token = %+v, %v", c, err)
	}
	for tok, want := range map[string]string{
		"":                               "not a JWT (want three dot-separated parts, got 1)",
		"a.b":                            "got 2",
		"a.%%%.c":                        "payload is not base64url",
		jwt(`[1,2]`):                     "not a JSON object of claims",
		jwt(`{"iss":"i","sub":"alice"}`): "sub is not system:serviceaccount:NAMESPACE:NAME",
		jwt(`{"iss":"i","sub":"system:serviceaccount:ns"}`):                    "sub is not",
		jwt(`{"iss":"i","sub":"system:serviceaccount:ns:a:b"}`):                "sub is not",
		jwt(`{"sub":"system:serviceaccount:ns:a"}`):                            "has no iss claim",
		jwt(`{"iss":"i","sub":"system:serviceaccount:ns:a","exp":1700000000}`): "for ns/a expired at 2023-11-14T22:13:20Z",
	} {
		_, err := parseServiceAccountToken(tok, now)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse %q = %v, want an error containing %q", tok, err, want)
			continue
		}
		if len(tok) > 8 && strings.Contains(err.Error(), tok) {
			t.Errorf("error quotes the token: %v", err)
		}
	}
}

func TestCheckProvider(t *testing.T) {
	for _, p := range []string{
		"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s/providers/cluster-1",
	} {
		if err := CheckProvider(p); err != nil {
			t.Errorf("CheckProvider(%q) = %v", p, err)
		}
	}
	for _, p := range []string{
		"", "projects/123/locations/global/workloadIdentityPools/k8s/providers/c",
		"https://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s/providers/c",
		"//iam.googleapis.com/projects/my-project/locations/global/workloadIdentityPools/k8s/providers/c",
		"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s",
		"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s/providers/c/extra",
	} {
		if err := CheckProvider(p); err == nil || !strings.Contains(err.Error(), "PROJECT_NUMBER") {
			t.Errorf("CheckProvider(%q) = %v, want an error showing the expected form", p, err)
		}
	}
}

func TestSTSEndpointFromEnv(t *testing.T) {
	const name = "DOCKER_CREDENTIAL_GCP_STS_ENDPOINT"
	for v, want := range map[string]string{
		"":                              defaultSTSEndpoint,
		"https://sts.example/v1/token/": "https://sts.example/v1/token",
		"http://127.0.0.1:8080/sts":     "http://127.0.0.1:8080/sts",
		"http://[::1]:8080/sts":         "http://[::1]:8080/sts",
		"http://localhost/sts":          "http://localhost/sts",
	} {
		t.Setenv(name, v)
		if got, err := endpointFromEnv(name, defaultSTSEndpoint); err != nil || got != want {
			t.Errorf("%s=%q: %q, %v; want %q", name, v, got, err, want)
		}
	}
	for v, want := range map[string]string{
		"http://sts.example/v1/token": "must use https",
		"ftp://sts.example":           "not an http(s) URL",
		"sts.example":                 "not an http(s) URL",
	} {
		t.Setenv(name, v)
		if _, err := endpointFromEnv(name, defaultSTSEndpoint); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%q: %v, want %q", name, v, err, want)
		}
	}
}

func TestPodCredentialExchange(t *testing.T) {
	g := fake.NewGoogle(t)
	t.Setenv("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", g.STSURL())
	const provider = "//iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/k8s/providers/c"
	sa := fake.ServiceAccountToken("https://k8s.example", "ns", "app", "uid-1", "aud", time.Now().Add(time.Hour))
	g.TrustSubjectToken(provider, sa)

	cred, err := PodCredential(t.Context(), PodExchange{Provider: provider, SubjectToken: sa})
	if err != nil {
		t.Fatal(err)
	}
	const principal = "principal://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/k8s/subject/system:serviceaccount:ns:app"
	if cred.Principal != principal || !cred.Cacheable || !strings.HasPrefix(cred.Identity, "pod:") {
		t.Errorf("credential %+v", cred)
	}
	tok, err := cred.TokenSource.Token()
	if err != nil {
		t.Fatal(err)
	}
	if is, ok := g.Issued(tok.AccessToken); !ok || is.Via != "sts" || is.Principal != principal || !strings.Contains(is.Scope, CloudPlatformScope) {
		t.Errorf("issued %+v (%v)", is, ok)
	}

	// The same token again is the same identity. Another token of the same
	// service account (another pod, or a forgery copying the claims) is
	// not: its claims are unverified, so only STS may vouch for it. Nor is
	// another service account, or another provider.
	sameSA := fake.ServiceAccountToken("https://k8s.example", "ns", "app", "uid-1", "aud", time.Now().Add(30*time.Minute))
	otherSA := fake.ServiceAccountToken("https://k8s.example", "ns", "other", "uid-2", "aud", time.Now().Add(time.Hour))
	id := func(provider, tok string) string {
		c, err := PodCredential(t.Context(), PodExchange{Provider: provider, SubjectToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		return c.Identity
	}
	if id(provider, sa) != cred.Identity {
		t.Error("one token has two cache identities")
	}
	if id(provider, sameSA) == cred.Identity {
		t.Error("two tokens of one service account share a cache identity: a token copying another's claims would be served its Google token")
	}
	if id(provider, otherSA) == cred.Identity || id(provider+"2", sa) == cred.Identity {
		t.Error("another service account or provider shares the cache identity")
	}

	// A refusal that echoes the subject token never shows it, and is a
	// refusal (no stale token served instead).
	g.FailNext(1, 400, nil, `{"error":"invalid_grant","error_description":"bad subject token `+sa+`"}`)
	_, err = cred.TokenSource.Token()
	if err == nil || strings.Contains(err.Error(), sa) || !strings.Contains(err.Error(), "STS refused the token exchange: HTTP 400: invalid_grant") || !refused(err) {
		t.Errorf("refused exchange: %v (refused %v)", err, refused(err))
	}
}
