package token

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

const impersonationTestTarget = "deployer@proj.iam.gserviceaccount.com"

func TestImpersonationTarget(t *testing.T) {
	t.Setenv("DOCKER_CREDENTIAL_GCP_IMPERSONATE", "  "+impersonationTestTarget+"\n")
	if got := ImpersonationTarget(); got != impersonationTestTarget {
		t.Errorf("ImpersonationTarget() = %q", got)
	}
}

func TestImpersonateKeyFile(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	t.Setenv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
	key := g.WriteServiceAccountKey(t, t.TempDir(), "ci@proj.iam.gserviceaccount.com")
	ctx := testContext(t)
	base := mustFind(t, keyFileSource{path: key, scopes: []string{CloudPlatformScope}})

	cred, err := Impersonate(ctx, base, impersonationTestTarget, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Principal != impersonationTestTarget || cred.Kind != "impersonated:service_account" || !cred.Cacheable ||
		!strings.Contains(cred.Source, "impersonating "+impersonationTestTarget) {
		t.Errorf("credential %+v", cred)
	}
	tok := mintToken(t, cred)
	is, ok := g.Issued(tok.AccessToken)
	if !ok || is.Via != "iam" || is.Principal != impersonationTestTarget || is.Source != "ci@proj.iam.gserviceaccount.com" {
		t.Errorf("issued %+v %v", is, ok)
	}
	if g.Count("jwt") != 1 || g.Count("iam") != 1 {
		t.Errorf("jwt %d iam %d, want 1 each", g.Count("jwt"), g.Count("iam"))
	}

	other, _ := Impersonate(ctx, base, "other@proj.iam.gserviceaccount.com", nil)
	if cred.Identity == base.Identity || cred.Identity == other.Identity {
		t.Error("impersonated identities collide with the base or another target")
	}
}

func TestImpersonateOtherBases(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	t.Setenv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL()+"/")
	ctx := testContext(t)

	t.Run("access token", func(t *testing.T) {
		t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", g.IssueToken("ci-runner@proj.iam.gserviceaccount.com"))
		cred, err := Impersonate(ctx, mustFind(t, accessTokenEnvSource{}), impersonationTestTarget, nil)
		if err != nil {
			t.Fatal(err)
		}
		if is, ok := g.Issued(mintToken(t, cred).AccessToken); !ok || is.Source != "ci-runner@proj.iam.gserviceaccount.com" {
			t.Errorf("issued %+v %v", is, ok)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		m := fake.NewMetadata(t, "vm@proj.iam.gserviceaccount.com")
		g.TrustMetadata(m)
		t.Setenv("GCE_METADATA_HOST", m.Host())
		cred, err := Impersonate(ctx, mustFind(t, metadataSource{scopes: []string{CloudPlatformScope}}), impersonationTestTarget, nil)
		if err != nil {
			t.Fatal(err)
		}
		if is, ok := g.Issued(mintToken(t, cred).AccessToken); !ok || is.Source != "vm@proj.iam.gserviceaccount.com" {
			t.Errorf("issued %+v %v", is, ok)
		}
	})
}

func TestImpersonateErrors(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	t.Setenv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
	ctx := testContext(t)
	key := g.ServiceAccountKey(t, "ci@proj.iam.gserviceaccount.com")
	base := mustFind(t, FromJSON("stored key", key, nil))

	g.Revoke(impersonationTestTarget)
	cred, err := Impersonate(ctx, base, impersonationTestTarget, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Source != "stored key impersonating "+impersonationTestTarget {
		t.Errorf("source %q", cred.Source)
	}
	_, err = cred.TokenSource.Token()
	// The caller puts the source in front; the error does not repeat it.
	if err != nil && strings.Contains(err.Error(), "stored key") {
		t.Errorf("error %v names the source, which its caller adds", err)
	}
	for _, want := range []string{"IAM refused to impersonate " + impersonationTestTarget, "HTTP 403", "PERMISSION_DENIED",
		"ci@proj.iam.gserviceaccount.com needs roles/iam.serviceAccountTokenCreator"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if g.Count("iam") != 1 {
		t.Errorf("iam requests %d: a 403 is not retried", g.Count("iam"))
	}

	// An unknown bearer token: 401, and the token never appears in the error.
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.not-issued-by-the-fake")
	cred, _ = Impersonate(ctx, mustFind(t, accessTokenEnvSource{}), "x@proj.iam.gserviceaccount.com", nil)
	_, err = cred.TokenSource.Token()
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), "not-issued") {
		t.Errorf("error %v", err)
	}

	// 503 twice, then success.
	g.FailNext(2, http.StatusServiceUnavailable, nil, `{"error":{"code":503,"status":"UNAVAILABLE","message":"try later"}}`)
	before := g.Count("iam")
	cred, _ = Impersonate(ctx, base, "ok@proj.iam.gserviceaccount.com", nil)
	mintToken(t, cred)
	if n := g.Count("iam") - before; n < 3 {
		t.Errorf("iam requests %d, want the two 503s retried", n)
	}
}

func TestIAMEndpoint(t *testing.T) {
	tests := []struct {
		value, want string
		ok          bool
	}{
		{"", defaultIAMEndpoint, true},
		{"https://iamcredentials-psc.p.googleapis.com/", "https://iamcredentials-psc.p.googleapis.com", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
		{"http://localhost:1", "http://localhost:1", true},
		{"http://iam.example.com", "", false},
		{"ftp://x", "", false},
		{"iamcredentials.googleapis.com", "", false},
	}
	for _, tt := range tests {
		t.Setenv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", tt.value)
		got, err := iamEndpoint()
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%q: got %q, %v; want %q ok=%v", tt.value, got, err, tt.want, tt.ok)
		}
	}
	t.Setenv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", "http://iam.example.com")
	if _, err := Impersonate(context.Background(), &Credential{}, "t@p.iam.gserviceaccount.com", nil); err == nil {
		t.Error("Impersonate accepted a plain-http remote IAM endpoint")
	}
}
