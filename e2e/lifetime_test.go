package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// On Google Cloud a warm get asks the metadata server nothing: the first
// get probes and mints, every later one is answered from the cache, and
// doctor still names the account. erase drops the token, so the next get
// asks the server again.
func TestLifetimeMetadataWarmGetSendsNoRequest(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	m := fake.NewMetadata(t, protoVMEmail)
	e.Set("GCE_METADATA_HOST", m.Host())

	first := cacheGet(t, e, "gcr.io")
	if !m.Issued(first) {
		t.Fatal("the first get's token was not issued by the metadata server")
	}
	cold := m.Count()
	for range 5 {
		if tok := cacheGet(t, e, "gcr.io"); tok != first {
			t.Fatal("a warm get did not serve the cached token")
		}
	}
	d := cmdsMustRun(t, e, "", "doctor")
	t.Logf("doctor on a warm cache:\n%s", d.Stdout)
	if n := m.Count() - cold; n != 0 {
		t.Fatalf("5 warm gets and doctor made %d requests to the metadata server, want 0", n)
	}
	if !strings.Contains(d.Stdout, "principal: "+protoVMEmail) || !strings.Contains(d.Stdout, "from the cache") {
		t.Errorf("doctor does not show the cached account and token:\n%s", d.Stdout)
	}

	if r := e.Run("gcr.io", "erase"); r.Code != 0 {
		t.Fatalf("erase: exit %d, %q", r.Code, r.Stdout)
	}
	if tok := cacheGet(t, e, "gcr.io"); tok == first || m.Count() == cold {
		t.Errorf("after erase, get served the old token or asked the server nothing (%d requests)", m.Count()-cold)
	}
}

// Impersonating on top of the metadata server: warm gets reach neither
// the metadata server nor IAM.
func TestLifetimeImpersonatedMetadataWarmGet(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	g := fake.NewGoogle(t)
	m := fake.NewMetadata(t, protoVMEmail)
	g.TrustMetadata(m)
	e.Set("GCE_METADATA_HOST", m.Host())
	e.Set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", protoTargetEmail)
	e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())

	first := cacheGet(t, e, "gcr.io")
	protoExpectIssued(t, g, first, protoTargetEmail, "iam")
	metadata, iam := m.Count(), g.Count("iam")
	for range 3 {
		if tok := cacheGet(t, e, "gcr.io"); tok != first {
			t.Fatal("a warm get did not serve the cached token")
		}
	}
	if m.Count() != metadata || g.Count("iam") != iam {
		t.Errorf("warm gets made %d metadata and %d IAM requests, want 0 and 0", m.Count()-metadata, g.Count("iam")-iam)
	}
}

// DOCKER_CREDENTIAL_GCP_MIN_LIFETIME and token --min-lifetime set M; a
// value that is not a positive Go duration is one clear error line.
func TestLifetimeMinLifetimeSetting(t *testing.T) {
	t.Parallel()
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	tok := cacheGet(t, e, "gcr.io")
	// 30 min later it has 30 min left: under the default 45 min, over 20.
	cacheAge(t, e, 30*time.Minute)
	e.Set("DOCKER_CREDENTIAL_GCP_MIN_LIFETIME", "20m")
	if again := cacheGet(t, e, "gcr.io"); again != tok || g.Count("jwt") != 1 {
		t.Errorf("with M=20m a token with 30 min left was not reused (%d grants)", g.Count("jwt"))
	}
	if r := cmdsMustRun(t, e, "", "token", "--min-lifetime", "25m"); strings.TrimSpace(r.Stdout) != tok {
		t.Error("token --min-lifetime 25m did not reuse a token with 30 min left")
	}
	if r := cmdsMustRun(t, e, "", "token", "--min-lifetime", "40m"); strings.TrimSpace(r.Stdout) == tok || g.Count("jwt") != 2 {
		t.Errorf("token --min-lifetime 40m reused a token with 30 min left (%d grants)", g.Count("jwt"))
	}

	for _, bad := range []string{"45", "soon", "-10m", "0s"} {
		e.Set("DOCKER_CREDENTIAL_GCP_MIN_LIFETIME", bad)
		r := e.Run("gcr.io", "get")
		protoExpectError(t, r, nil, "DOCKER_CREDENTIAL_GCP_MIN_LIFETIME", "Go duration")
		e.Set("DOCKER_CREDENTIAL_GCP_MIN_LIFETIME", "")
		r = e.Run("", "token", "--min-lifetime", bad)
		if r.Code != 1 || r.Stdout != "" || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, "--min-lifetime") {
			t.Errorf("token --min-lifetime %q: exit %d, stdout %q, stderr %q; want one error line", bad, r.Code, r.Stdout, r.Stderr)
		}
	}
}

// With self-signed JWTs a key never reaches Google's token endpoint: the
// registry verifies the JWT with the key's public key, crane pulls with
// it, and it is cached like a minted token.
func TestLifetimeSelfSignedJWT(t *testing.T) {
	t.Parallel()
	crane := clientCrane(t)
	w := clientNewWorld(t)
	reg := fake.NewRegistry(t, w.g.RegistryLogin(clientSA))
	reg.Seed(t, "p/i")
	w.e.Set("DOCKER_CREDENTIAL_GCP_REGISTRIES", reg.Host())
	clientWriteConfig(t, w.e.DockerConfig, reg.Host())
	w.e.Set("DOCKER_CREDENTIAL_GCP_SELF_SIGNED_JWT", "1")

	jwt := cacheGet(t, w.e, reg.Host())
	if who, err := w.g.VerifySelfSignedJWT(jwt); err != nil || who != clientSA {
		t.Fatalf("get did not hand out a self-signed JWT of %s: %q, %v", clientSA, who, err)
	}
	if again := cacheGet(t, w.e, reg.Host()); again != jwt {
		t.Error("the self-signed JWT was not cached")
	}
	if out, err := w.run(t, nil, crane, "digest", "--insecure", reg.Host()+"/p/i:latest"); err != nil {
		t.Fatalf("crane digest with a self-signed JWT: %v\n%s", err, out)
	}
	clientAssertRegistryAuthenticated(t, "self-signed JWT", reg)
	d := cmdsMustRun(t, w.e, "", "doctor")
	if !strings.Contains(d.Stdout, "self-signed JWT") {
		t.Errorf("doctor does not say JWTs are self-signed:\n%s", d.Stdout)
	}
	if n := w.g.Count("any"); n != 0 {
		t.Errorf("Google's endpoints saw %d requests, want 0", n)
	}

	// Turned off, the same key mints at the token endpoint under its own
	// cache identity: never the JWT.
	w.e.Set("DOCKER_CREDENTIAL_GCP_SELF_SIGNED_JWT", "0")
	minted := cacheGet(t, w.e, reg.Host())
	if minted == jwt {
		t.Fatal("with self-signed JWTs off, get served the cached JWT")
	}
	protoExpectIssued(t, w.g, minted, clientSA, "jwt")
}

// configure-docker --self-signed-jwt records the choice for later gets.
func TestLifetimeConfigureSelfSignedJWT(t *testing.T) {
	t.Parallel()
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	r := cmdsMustRun(t, e, "", "configure-docker", "--self-signed-jwt")
	if !strings.Contains(r.Stderr, "self_signed_jwt true") {
		t.Errorf("configure-docker does not say what it recorded: %q", r.Stderr)
	}
	if _, err := g.VerifySelfSignedJWT(cacheGet(t, e, "gcr.io")); err != nil || g.Count("any") != 0 {
		t.Errorf("after configure-docker --self-signed-jwt get did not sign locally: %v, %d requests", err, g.Count("any"))
	}
	cmdsMustRun(t, e, "", "configure-docker", "--self-signed-jwt=false")
	protoExpectIssued(t, g, cacheGet(t, e, "gcr.io"), protoSAEmail, "jwt")
}

// Self-signed JWTs do not apply when impersonation does: doctor says so,
// configure-docker --self-signed-jwt says so when it records the setting,
// and the key's token comes from Google's token endpoint.
func TestLifetimeSelfSignedJWTNotWithImpersonation(t *testing.T) {
	t.Parallel()
	e, g, _ := protoKeyEnv(t, protoSAEmail)
	r := cmdsMustRun(t, e, "", "configure-docker", "--self-signed-jwt")
	if !strings.Contains(r.Stderr, "not impersonated") {
		t.Errorf("configure-docker --self-signed-jwt does not say impersonated keys still mint at Google: %q", r.Stderr)
	}
	e.Set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", protoTargetEmail)
	e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
	d := e.Run("", "doctor")
	if d.Code != 0 || !strings.Contains(d.Stdout, "tokens: not self-signed although DOCKER_CREDENTIAL_GCP_SELF_SIGNED_JWT or configure-docker --self-signed-jwt asks for it: impersonation applies") {
		t.Errorf("doctor does not say self-signed JWTs are skipped under impersonation (exit %d):\n%s%s", d.Code, d.Stdout, d.Stderr)
	}
	if g.Count("jwt") == 0 {
		t.Error("the impersonated key's token did not come from the token endpoint")
	}
}
