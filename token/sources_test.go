package token

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
	"golang.org/x/oauth2"
)

// isolateEnv points every variable the sources read at empty temp dirs or
// nothing, and the metadata host at a refusing port, so a test sees only
// what it sets up and never the developer's own credentials.
// ciEnv are the variables by which the keyless CI source finds a CI
// system and its ID token: cleared, so tests run inside a CI see none.
var ciEnv = []string{
	EnvWorkloadIdentityProvider, EnvIDToken, EnvIDTokenFile, EnvIDTokenAudience, EnvAzureServiceConnection,
	"GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
	"BUILDKITE", "BUILDKITE_AGENT_ACCESS_TOKEN", "BUILDKITE_JOB_ID", "BUILDKITE_AGENT_ENDPOINT",
	"TF_BUILD", "SYSTEM_OIDCREQUESTURI", "SYSTEM_ACCESSTOKEN", "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
	"CIRCLECI", "CIRCLE_OIDC_TOKEN", "CIRCLE_OIDC_TOKEN_V2",
	"BITBUCKET_BUILD_NUMBER", "BITBUCKET_STEP_OIDC_TOKEN", "GITLAB_CI",
}

func isolateEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "CLOUDSDK_CONFIG", "APPDATA"} {
		t.Setenv(k, t.TempDir())
	}
	for _, k := range []string{
		"GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN",
		"DOCKER_CREDENTIAL_GCP_IMPERSONATE", "DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT",
	} {
		t.Setenv(k, "")
	}
	for _, k := range ciEnv {
		t.Setenv(k, "")
	}
	t.Setenv("GCE_METADATA_HOST", fake.RefusedHost(t))
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func writeTestFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mintToken mints through cred and returns the token or fails the test.
func mintToken(t *testing.T, cred *Credential) *oauth2.Token {
	t.Helper()
	tok, err := cred.TokenSource.Token()
	if err != nil {
		t.Fatalf("minting from %s: %v", cred.Source, err)
	}
	if tok.AccessToken == "" {
		t.Fatalf("minting from %s: empty access token", cred.Source)
	}
	return tok
}

// mustFind runs s.Find and fails the test unless it finds a credential.
func mustFind(t *testing.T, s Source) *Credential {
	t.Helper()
	cred, err := s.Find(testContext(t))
	if err != nil {
		t.Fatalf("%s: Find: %v", s.Name(), err)
	}
	return cred
}

func wantNotFound(t *testing.T, s Source, reason string) {
	t.Helper()
	_, err := s.Find(testContext(t))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: Find error = %v, want not found", s.Name(), err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("%s: not-found reason %q lacks %q", s.Name(), err, reason)
	}
}

func wantBroken(t *testing.T, s Source, parts ...string) error {
	t.Helper()
	_, err := s.Find(testContext(t))
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: Find error = %v, want a real error", s.Name(), err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q lacks %q", s.Name(), err, p)
		}
	}
	return err
}

func TestDefaultSourcesOrder(t *testing.T) {
	isolateEnv(t)
	t.Setenv("CLOUDSDK_CONFIG", "/gc")
	t.Setenv("GCE_METADATA_HOST", "")
	var names []string
	for _, s := range DefaultSources(Options{KeyFile: "/k.json"}) {
		names = append(names, s.Name())
	}
	want := []string{
		"GOOGLE_OAUTH_ACCESS_TOKEN",
		"GOOGLE_APPLICATION_CREDENTIALS",
		"keyless CI (DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER)",
		"key file /k.json (configure-docker --key-file)",
		"gcloud application default credentials (" + filepath.Join("/gc", "application_default_credentials.json") + ")",
		"metadata server (169.254.169.254)",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("sources:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
}

func TestAccessTokenEnv(t *testing.T) {
	isolateEnv(t)
	s := accessTokenEnvSource{}
	wantNotFound(t, s, "GOOGLE_OAUTH_ACCESS_TOKEN is not set")
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "  \n")
	wantNotFound(t, s, "GOOGLE_OAUTH_ACCESS_TOKEN is not set")

	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.ready-made\n")
	cred := mustFind(t, s)
	if cred.Kind != "access_token" || cred.Cacheable || cred.Principal != "" {
		t.Errorf("credential = %+v, want uncacheable access_token without principal", cred)
	}
	if tok := mintToken(t, cred); tok.AccessToken != "ya29.ready-made" || !tok.Expiry.IsZero() {
		t.Errorf("token = %q expiring %v, want the env value with unknown expiry", tok.AccessToken, tok.Expiry)
	}
	if strings.Contains(cred.Identity, "ya29") {
		t.Errorf("identity %q contains the token", cred.Identity)
	}

	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.two words")
	err := wantBroken(t, s, "not an access token")
	if strings.Contains(err.Error(), "ya29") {
		t.Errorf("error %q quotes the token", err)
	}
}

func TestFromAccessToken(t *testing.T) {
	isolateEnv(t)
	cred := mustFind(t, FromAccessToken("stored gcr.io", "ya29.stored", time.Now().Add(time.Minute)))
	if tok := mintToken(t, cred); tok.AccessToken != "ya29.stored" || cred.Cacheable || cred.Source != "stored gcr.io" {
		t.Errorf("got %+v / %q", cred, tok.AccessToken)
	}
	wantNotFound(t, FromAccessToken("stored gcr.io", "ya29.stored", time.Now().Add(-time.Second)), "older than 60 min")
	wantBroken(t, FromAccessToken("stored gcr.io", "", time.Time{}), "empty")
}

func TestEachJSONTypeMints(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	saKey := g.ServiceAccountKey(t, "builder@proj.iam.gserviceaccount.com")
	subject := writeTestFile(t, "oidc.jwt", []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvIn0.c2ln"))
	audience := "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/gh/providers/gh"
	withAccount := func(data []byte, account string) []byte {
		return []byte(strings.Replace(string(data), "{", `{"account":"`+account+`",`, 1))
	}
	tests := []struct {
		name, kind, principal, via string
		data                       []byte
		issuedTo                   string // when not principal
	}{
		{"service account", "service_account", "builder@proj.iam.gserviceaccount.com", "jwt", saKey, ""},
		// client_id is the OAuth client, not the user: no principal.
		{"authorized user", "authorized_user", "", "refresh",
			g.AuthorizedUserJSON("client-1.apps.googleusercontent.com", "secret-1", "1//refresh-1"), "client-1.apps.googleusercontent.com"},
		{"authorized user with its account", "authorized_user", "me@example.com", "refresh",
			withAccount(g.AuthorizedUserJSON("client-2.apps.googleusercontent.com", "secret-2", "1//refresh-2"), "me@example.com"), "client-2.apps.googleusercontent.com"},
		{"external account", "external_account", audience, "sts", g.ExternalAccountJSON(subject, audience), ""},
		{"impersonated", "impersonated_service_account", "deployer@proj.iam.gserviceaccount.com", "iam",
			g.ImpersonatedJSON(saKey, "deployer@proj.iam.gserviceaccount.com"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred := mustFind(t, FromJSON("stored key", tt.data, nil))
			if cred.Kind != tt.kind || cred.Principal != tt.principal || !cred.Cacheable {
				t.Errorf("credential kind %q principal %q cacheable %v, want %q %q true", cred.Kind, cred.Principal, cred.Cacheable, tt.kind, tt.principal)
			}
			tok := mintToken(t, cred)
			is, ok := g.Issued(tok.AccessToken)
			if !ok {
				t.Fatalf("the fake did not issue %q", tok.AccessToken)
			}
			issuedTo := tt.principal
			if tt.issuedTo != "" {
				issuedTo = tt.issuedTo
			}
			if is.Principal != issuedTo || is.Via != tt.via || is.Scope != CloudPlatformScope {
				t.Errorf("issued %+v, want principal %q via %q scope cloud-platform", is, issuedTo, tt.via)
			}
			if tok.Expiry.IsZero() {
				t.Error("minted token has no expiry")
			}
		})
	}
}

func TestJSONIdentity(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	a := g.ServiceAccountKey(t, "a@p.iam.gserviceaccount.com")
	b := g.ServiceAccountKey(t, "b@p.iam.gserviceaccount.com")
	id := func(data []byte, scopes ...string) string {
		return mustFind(t, FromJSON("k", data, scopes)).Identity
	}
	if id(a) != id(a, CloudPlatformScope) {
		t.Error("default scopes and explicit cloud-platform give different identities")
	}
	if id(a) == id(b) {
		t.Error("two key files share an identity")
	}
	if id(a) == id(a, CloudPlatformScope, "https://www.googleapis.com/auth/devstorage.read_only") {
		t.Error("different scopes share an identity")
	}
	if ident := id(a); strings.Contains(ident, "PRIVATE") || !strings.HasPrefix(ident, "json:") {
		t.Errorf("identity %q", ident)
	}
}

func TestADCEnv(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	s := adcEnvSource{scopes: []string{CloudPlatformScope}}
	wantNotFound(t, s, "GOOGLE_APPLICATION_CREDENTIALS is not set")

	key := g.WriteServiceAccountKey(t, t.TempDir(), "ci@proj.iam.gserviceaccount.com")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", key)
	cred := mustFind(t, s)
	if cred.Source != "GOOGLE_APPLICATION_CREDENTIALS ("+key+")" || cred.Principal != "ci@proj.iam.gserviceaccount.com" {
		t.Errorf("source %q principal %q", cred.Source, cred.Principal)
	}
	mintToken(t, cred)

	broken := []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(t.TempDir(), "gone.json"), "does not exist"},
		{"directory", t.TempDir(), "is a directory"},
		{"not JSON", writeTestFile(t, "k.json", []byte("type: service_account")), "not a valid credential JSON: syntax error at line 1, column 2"},
		{"bad JSON on line 3", writeTestFile(t, "k.json", []byte("{\n\"type\": \"service_account\",\n  \"private_key\" \"x\"}")), "syntax error at line 3, column 17"},
		{"empty", writeTestFile(t, "k.json", nil), "empty"},
		{"no type", writeTestFile(t, "k.json", []byte(`{"client_email":"x"}`)), `no "type" field`},
		{"unknown type", writeTestFile(t, "k.json", []byte(`{"type":"gdch_service_account"}`)), `unsupported credential type "gdch_service_account"`},
		{"key without private_key", writeTestFile(t, "k.json", []byte(`{"type":"service_account","client_email":"x@y"}`)), "no private_key"},
		{"user without refresh token", writeTestFile(t, "k.json", []byte(`{"type":"authorized_user","client_id":"c","client_secret":"s"}`)), "no refresh_token"},
		{"wrong field type", writeTestFile(t, "k.json", []byte(`{"type":"service_account","client_email":7}`)), "client_email"},
	}
	for _, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", tt.path)
			wantBroken(t, s, tt.want)
		})
	}
	if g.Count("any") != 1 {
		t.Errorf("fake saw %d requests, want 1 (only the valid key mints)", g.Count("any"))
	}
}

func TestKeyFileSource(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	wantNotFound(t, keyFileSource{}, "no key file recorded")

	missing := filepath.Join(t.TempDir(), "k.json")
	wantBroken(t, keyFileSource{path: missing},
		"key file "+missing+" recorded by configure-docker no longer exists: run configure-docker --key-file again or remove it")

	key := g.WriteServiceAccountKey(t, t.TempDir(), "pusher@proj.iam.gserviceaccount.com")
	cred := mustFind(t, keyFileSource{path: key, scopes: []string{CloudPlatformScope}})
	if is, ok := g.Issued(mintToken(t, cred).AccessToken); !ok || is.Principal != "pusher@proj.iam.gserviceaccount.com" {
		t.Errorf("issued %+v %v", is, ok)
	}
}

func TestGcloudSource(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	s := gcloudSource{scopes: []string{CloudPlatformScope}}
	user := g.AuthorizedUserJSON("cli.apps.googleusercontent.com", "cli-secret", "1//cli-refresh")

	t.Run("CLOUDSDK_CONFIG", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("CLOUDSDK_CONFIG", dir)
		wantNotFound(t, s, filepath.Join(dir, "application_default_credentials.json")+" does not exist")
		if err := os.WriteFile(filepath.Join(dir, "application_default_credentials.json"), user, 0o600); err != nil {
			t.Fatal(err)
		}
		cred := mustFind(t, s)
		if cred.Kind != "authorized_user" || !strings.Contains(cred.Source, dir) {
			t.Errorf("credential %+v", cred)
		}
		mintToken(t, cred)
	})
	t.Run("HOME", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("CLOUDSDK_CONFIG", "")
		t.Setenv("HOME", home)
		t.Setenv("APPDATA", filepath.Join(home, ".config"))
		path := filepath.Join(home, ".config", "gcloud", "application_default_credentials.json")
		wantNotFound(t, s, "does not exist")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		wantBroken(t, s, "not a valid credential JSON")
		if err := os.WriteFile(path, user, 0o600); err != nil {
			t.Fatal(err)
		}
		mintToken(t, mustFind(t, s))
	})
	t.Run("HOME unset", func(t *testing.T) {
		t.Setenv("CLOUDSDK_CONFIG", "")
		t.Setenv("APPDATA", "")
		t.Setenv("HOME", "")
		os.Unsetenv("HOME")
		_ = s.Name()
		wantNotFound(t, s, "")
	})
	t.Run("HOME is a file", func(t *testing.T) {
		t.Setenv("CLOUDSDK_CONFIG", "")
		t.Setenv("HOME", writeTestFile(t, "home", nil))
		t.Setenv("APPDATA", os.Getenv("HOME"))
		wantNotFound(t, s, "does not exist")
	})
}

func TestResolveOrderAndSkips(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	m := fake.NewMetadata(t, "vm@proj.iam.gserviceaccount.com")
	t.Setenv("GCE_METADATA_HOST", m.Host())
	key := g.WriteServiceAccountKey(t, t.TempDir(), "keyed@proj.iam.gserviceaccount.com")

	cred, skipped, err := Resolve(testContext(t), DefaultSources(Options{KeyFile: key}))
	if err != nil {
		t.Fatal(err)
	}
	if cred.Principal != "keyed@proj.iam.gserviceaccount.com" {
		t.Errorf("winner %q (%s), want the key file", cred.Principal, cred.Source)
	}
	if m.Count() != 0 {
		t.Errorf("metadata server asked %d times although the key file won", m.Count())
	}
	want := []string{"GOOGLE_OAUTH_ACCESS_TOKEN is not set", "GOOGLE_APPLICATION_CREDENTIALS is not set", "DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER is not set"}
	if len(skipped) != len(want) {
		t.Fatalf("skipped = %+v, want %d", skipped, len(want))
	}
	for i, w := range want {
		if skipped[i].Reason != w {
			t.Errorf("skip %d reason %q, want %q", i, skipped[i].Reason, w)
		}
	}

	// Without the key file the metadata server wins, after the gcloud file is skipped.
	cred, skipped, err = Resolve(testContext(t), DefaultSources(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if cred.Kind != "metadata" || len(skipped) != 5 || !strings.Contains(skipped[4].Reason, "does not exist") {
		t.Errorf("winner %+v, skipped %+v", cred, skipped)
	}

	// The access token env beats everything.
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.env")
	if cred, _, _ = Resolve(testContext(t), DefaultSources(Options{KeyFile: key})); cred.Kind != "access_token" {
		t.Errorf("winner %s, want GOOGLE_OAUTH_ACCESS_TOKEN", cred.Source)
	}
}

func TestResolveNothing(t *testing.T) {
	isolateEnv(t)
	start := time.Now()
	_, skipped, err := Resolve(testContext(t), DefaultSources(Options{}))
	if !errors.Is(err, ErrNoCredentials) || len(skipped) != 6 {
		t.Fatalf("err %v, skipped %+v", err, skipped)
	}
	if !strings.HasPrefix(skipped[5].Reason, "no metadata server at ") {
		t.Errorf("metadata skip reason %q", skipped[4].Reason)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("finding nothing took %v off Google Cloud", d)
	}
}

func TestResolveBrokenSourceStops(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	key := g.WriteServiceAccountKey(t, t.TempDir(), "keyed@proj.iam.gserviceaccount.com")
	bad := writeTestFile(t, "bad.json", []byte(`{"type":`))
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", bad)
	_, _, err := Resolve(testContext(t), DefaultSources(Options{KeyFile: key}))
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoCredentials) {
		t.Fatalf("err = %v, want the broken GOOGLE_APPLICATION_CREDENTIALS", err)
	}
	if !strings.HasPrefix(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS ("+bad+"): ") {
		t.Errorf("error %q does not name the source", err)
	}
}

func TestMintRetries(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	key := g.ServiceAccountKey(t, "retry@proj.iam.gserviceaccount.com")

	g.FailNext(2, http.StatusServiceUnavailable, nil, "backend unavailable")
	mintToken(t, mustFind(t, FromJSON("k", key, nil)))
	if n := g.Count("jwt"); n != 3 {
		t.Errorf("jwt requests = %d, want 3 (two 503s, one success)", n)
	}

	g.FailNext(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, `{"error":"rate_limit_exceeded"}`)
	start := time.Now()
	mintToken(t, mustFind(t, FromJSON("k", key, nil)))
	if d := time.Since(start); d < time.Second || d > 3*time.Second {
		t.Errorf("429 with Retry-After: 1 took %v, want about 1s", d)
	}
	if n := g.Count("jwt"); n != 5 {
		t.Errorf("jwt requests = %d, want 5", n)
	}

	g.FailNext(10, http.StatusInternalServerError, nil, "boom")
	_, err := mustFind(t, FromJSON("stored key", key, nil)).TokenSource.Token()
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "retry@proj") {
		t.Errorf("error %v, want HTTP 500 naming the service account", err)
	}
	if n := g.Count("jwt"); n != 9 {
		t.Errorf("jwt requests = %d, want 9 (1+3 retries)", n)
	}
}

func TestMintRefusalsNotRetriedAndSecretFree(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	const (
		email    = "revoked@proj.iam.gserviceaccount.com"
		clientID = "cid.apps.googleusercontent.com"
		secret   = "GOCSPX-client-secret-value"
		refresh  = "1//refresh-token-secret-value"
	)
	key := g.ServiceAccountKey(t, email)
	keyPath := writeTestFile(t, "k.json", key)
	user := g.AuthorizedUserJSON(clientID, secret, refresh)
	var privateKey string
	if i := strings.Index(string(key), "-----BEGIN"); i >= 0 {
		privateKey = string(key[i:])
		privateKey = privateKey[:strings.Index(privateKey, "-----END")]
	}
	pemLine := strings.Split(strings.ReplaceAll(privateKey, `\n`, "\n"), "\n")[2]

	g.Revoke(email)
	g.RevokeWith(clientID, http.StatusUnauthorized)
	tests := []struct {
		name    string
		src     Source
		kind    string
		want    []string
		secrets []string
	}{
		{"revoked key", keyFileSource{path: keyPath, scopes: []string{CloudPlatformScope}}, "jwt",
			[]string{email, "token endpoint refused the key: invalid_grant", "Invalid JWT Signature", "HTTP 400", "deleted or disabled"},
			[]string{privateKey, pemLine}},
		{"invalid client", FromJSON("gcloud ADC", user, nil), "refresh",
			[]string{clientID, "invalid_client", "HTTP 401"},
			[]string{secret, refresh}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.Count(tt.kind)
			_, err := mustFind(t, tt.src).TokenSource.Token()
			if err == nil {
				t.Fatal("minting succeeded")
			}
			if n := g.Count(tt.kind) - before; n != 1 {
				t.Errorf("%d %s requests, want 1: a refusal is not retried", n, tt.kind)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, s := range tt.secrets {
				if s == "" || strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains secret material %q", err, s)
				}
			}
		})
	}

	// A revoked refresh token, and a user whose refresh token fails.
	g.RevokeWith(clientID, 0)
	_, err := mustFind(t, FromJSON("gcloud ADC", user, nil)).TokenSource.Token()
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") || !strings.Contains(err.Error(), "gcloud auth application-default login") {
		t.Errorf("error %v, want invalid_grant with a login hint", err)
	}
	if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), refresh)) {
		t.Errorf("error %q contains a secret", err)
	}
}

func TestMintMalformedAndHangingEndpoint(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	key := g.ServiceAccountKey(t, "m@proj.iam.gserviceaccount.com")

	g.SetMalformed(true)
	_, err := mustFind(t, FromJSON("k", key, nil)).TokenSource.Token()
	if err == nil {
		t.Fatal("a malformed answer minted a token")
	}
	g.SetMalformed(false)

	g.SetHang(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cred, err := FromJSON("k", key, nil).Find(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = cred.TokenSource.Token()
	if err == nil {
		t.Fatal("a hanging endpoint minted a token")
	}
	if !strings.Contains(err.Error(), "did not answer in time; check the network and proxy settings") {
		t.Errorf("error %q does not say the endpoint did not answer in time", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a hanging token endpoint held minting %v past a 300ms deadline", d)
	}
}

func TestCredentialFileLimits(t *testing.T) {
	isolateEnv(t)
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = ' '
	}
	tests := []struct {
		name, path, want string
	}{
		{"directory", t.TempDir(), "is a directory"},
		{"oversize", writeTestFile(t, "big.json", big), "larger than 1 MiB"},
	}
	if _, err := os.Stat("/dev/null"); err == nil {
		tests = append(tests, struct{ name, path, want string }{"device", "/dev/null", "is not a regular file"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			wantBroken(t, keyFileSource{path: tt.path}, tt.want)
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", tt.path)
			wantBroken(t, adcEnvSource{}, tt.want)
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// The "did not answer in time" hint survives an error text long enough
// to be cut short where it is quoted.
func TestMintErrorTimeoutHintOnLongError(t *testing.T) {
	long := fmt.Errorf(`Post "https://oauth2.example/%s": %w`, strings.Repeat("p", 400), context.DeadlineExceeded)
	msg := explainMintError(typeServiceAccount, long, nil)
	if !strings.Contains(msg, "did not answer in time") {
		t.Errorf("explainMintError(%d-char timeout) = %q, want the timeout hint", len(long.Error()), msg)
	}
}
