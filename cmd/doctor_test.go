package cmd

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// keySecrets are the lines of a service-account key's private key PEM,
// without the BEGIN/END armour, which are no secret.
func keySecrets(t *testing.T, keyPath string) []string {
	t.Helper()
	data, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	var key struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(data, &key); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.SplitSeq(key.PrivateKey, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "-----") {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no private key in %s", keyPath)
	}
	return lines
}

// assertNoSecret fails when out contains any of secrets.
func assertNoSecret(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret: the test lost track of what to look for")
		}
		if strings.Contains(out, s) {
			t.Errorf("doctor output contains a secret (%.12s...):\n%s", s, out)
		}
	}
}

// assertContains fails for each of wants missing from out.
func assertContains(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("doctor output lacks %q:\n%s", w, out)
		}
	}
}

// currentToken is the token `token` prints now: the cached one, when a
// doctor run has just minted it.
func currentToken(t *testing.T) string {
	t.Helper()
	out, _, err := runInProcess(t, Token)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestDoctorServiceAccountKey(t *testing.T) {
	g, _, keyPath := withServiceAccountKey(t)

	out, stderr, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s%s", err, out, stderr)
	}
	tok := currentToken(t)
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d JWT grants for doctor then token, want 1 (doctor fills the cache)", n)
	}
	assertContains(t, out,
		"Credential sources (first found wins):",
		"GOOGLE_APPLICATION_CREDENTIALS",
		testSAEmail,
		"service_account",
		"miss",
		"minted now",
		"min left",
	)
	assertNoSecret(t, out+stderr, append(keySecrets(t, keyPath), tok)...)

	// A second run finds the token in the cache and says so.
	out, stderr, err = runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	assertContains(t, out, "hit, valid until", "from the cache")
	assertNoSecret(t, out+stderr, append(keySecrets(t, keyPath), tok)...)
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d JWT grants after a cached doctor run, want 1", n)
	}
}

func TestDoctorSkippedSourcesExplained(t *testing.T) {
	env := isolateEnv(t)
	g := fake.NewGoogle(t)
	// The gcloud ADC file exists but GOOGLE_APPLICATION_CREDENTIALS wins;
	// the access-token source before it is skipped with a reason.
	keyPath := g.WriteServiceAccountKey(t, t.TempDir(), testSAEmail)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", keyPath)
	writeGcloudADC(t, env, g.AuthorizedUserJSON("client-id", "client-secret-doctor", "refresh-token-doctor"))

	out, _, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	for _, source := range []string{"stored for gcr.io", "GOOGLE_OAUTH_ACCESS_TOKEN"} {
		if skip := lineWith(out, source); !strings.Contains(skip, "skip") || !strings.Contains(skip, ": ") {
			t.Errorf("skipped source %s not explained:\n%s", source, out)
		}
	}
	if used := lineWith(out, "  used  "); !strings.Contains(used, "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Errorf("used source line %q, want GOOGLE_APPLICATION_CREDENTIALS", used)
	}
	if g.Count("refresh") != 0 {
		t.Errorf("doctor used the gcloud ADC file although an earlier source won")
	}
}

func writeGcloudADC(t *testing.T, env *testEnv, data []byte) string {
	t.Helper()
	path := filepath.Join(env.Gcloud, "application_default_credentials.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lineWith is the first line of out containing s.
func lineWith(out, s string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

func TestDoctorAuthorizedUserFromGcloud(t *testing.T) {
	env := isolateEnv(t)
	g := fake.NewGoogle(t)
	const clientSecret, refreshToken = "client-secret-3f9a1c", "1//refresh-token-8d2e7b"
	writeGcloudADC(t, env, g.AuthorizedUserJSON("client-id.apps.googleusercontent.com", clientSecret, refreshToken))

	out, stderr, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s%s", err, out, stderr)
	}
	tok := currentToken(t)
	if _, ok := g.Issued(tok); !ok {
		t.Fatalf("token %q not issued by the fake", tok)
	}
	if used := lineWith(out, "  used  "); !strings.Contains(used, "application_default_credentials.json") && !strings.Contains(used, "gcloud") {
		t.Errorf("used source line %q, want gcloud's ADC file", used)
	}
	assertContains(t, out, "authorized_user")
	// The client_id is gcloud's OAuth client, the same for every user: it
	// is not who the token stands for.
	assertContains(t, out, "principal: unknown (the credential file does not record its account")
	if strings.Contains(out, "client-id.apps.googleusercontent.com") {
		t.Errorf("doctor shows the OAuth client_id as if it were an identity:\n%s", out)
	}
	assertNoSecret(t, out+stderr, clientSecret, refreshToken, tok)
}

func TestDoctorMetadataServer(t *testing.T) {
	isolateEnv(t)
	const email = "node-sa@test-project.iam.gserviceaccount.com"
	md := fake.NewMetadata(t, email)
	t.Setenv("GCE_METADATA_HOST", md.Host())

	out, stderr, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s%s", err, out, stderr)
	}
	tok := currentToken(t)
	if used := lineWith(out, "  used  "); !strings.Contains(strings.ToLower(used), "metadata") {
		t.Errorf("used source line %q, want the metadata server", used)
	}
	assertContains(t, out, email)
	assertNoSecret(t, out+stderr, tok)
}

func TestDoctorReadyMadeAccessToken(t *testing.T) {
	isolateEnv(t)
	const tok = "ya29.ready-made-doctor-token"
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", tok)

	out, stderr, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s%s", err, out, stderr)
	}
	if used := lineWith(out, "  used  "); !strings.Contains(used, "GOOGLE_OAUTH_ACCESS_TOKEN") {
		t.Errorf("used source line %q, want GOOGLE_OAUTH_ACCESS_TOKEN", used)
	}
	assertContains(t, out, "access_token", "ready-made")
	assertNoSecret(t, out+stderr, tok)
}

func TestDoctorNoCredentials(t *testing.T) {
	isolateEnv(t)

	out, _, err := runInProcess(t, Doctor)
	if err == nil {
		t.Fatalf("doctor returned nil without credentials:\n%s", out)
	}
	if !errors.Is(err, token.ErrNoCredentials) || !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Errorf("error = %q, want %q", err, ErrNoCredentials)
	}
	assertContains(t, out, "FAIL", ErrNoCredentials.Error(), "GOOGLE_OAUTH_ACCESS_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS")
	if n := strings.Count(out, "  skip  "); n < 4 {
		t.Errorf("%d skipped sources explained, want every source:\n%s", n, out)
	}
	// The rest of the report still helps.
	assertContains(t, out, "Docker config:", "Helper on PATH:")
}

func TestDoctorBrokenKeyFails(t *testing.T) {
	isolateEnv(t)
	bad := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(bad, []byte(`{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", bad)

	out, _, err := runInProcess(t, Doctor)
	if err == nil {
		t.Fatalf("doctor returned nil with a broken key:\n%s", out)
	}
	assertContains(t, out, "FAIL", "GOOGLE_APPLICATION_CREDENTIALS")
	assertNoSecret(t, out+err.Error(), "c2VjcmV0LWtleS1tYXRlcmlhbA==")
}

func TestDoctorRefusesNonGoogleRegistry(t *testing.T) {
	g, _, _ := withServiceAccountKey(t)
	out, _, err := runInProcess(t, Doctor, "--registry", "gcr.io.evil.com")
	if err == nil || !strings.Contains(err.Error(), "not a Google registry") {
		t.Errorf("error = %v, want one saying it is not a Google registry", err)
	}
	assertContains(t, out, "FAIL")
	if n := g.Count("any"); n != 0 {
		t.Errorf("%d token requests for a foreign host, want none", n)
	}
}

func TestDoctorCacheDisabled(t *testing.T) {
	withServiceAccountKey(t)
	t.Setenv("DOCKER_CREDENTIAL_GCP_NO_CACHE", "1")

	out, _, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	assertContains(t, out, "disabled (DOCKER_CREDENTIAL_GCP_NO_CACHE)")
}

func TestDoctorDockerConfigState(t *testing.T) {
	_, env, _ := withServiceAccountKey(t)
	config := `{
	"auths": {
		"https://us.gcr.io": {"auth": "X2pzb25fa2V5Ont9"},
		"gcr.io": {"auth": "X2pzb25fa2V5Ont9"}
	},
	"credHelpers": {"gcr.io": "gcp", "asia.gcr.io": "gcp", "eu.gcr.io": "gcloud"},
	"credsStore": "desktop"
}`
	if err := os.WriteFile(filepath.Join(env.Docker, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	out, _, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	assertContains(t, out, filepath.Join(env.Docker, "config.json"), `"desktop"`)
	if l := lineWith(out, `route to "gcp"`); !strings.Contains(l, "gcr.io, asia.gcr.io") {
		t.Errorf("routed line %q, want gcr.io and asia.gcr.io", l)
	}
	if l := lineWith(out, "route elsewhere"); !strings.Contains(l, "eu.gcr.io -> docker-credential-gcloud") {
		t.Errorf("elsewhere line %q, want eu.gcr.io -> gcloud", l)
	}
	if l := lineWith(out, "used instead of this helper"); !strings.Contains(l, "us.gcr.io") || strings.Contains(l, " gcr.io") {
		t.Errorf("shadowing line %q, want us.gcr.io only", l)
	}
	if l := lineWith(out, "stale static login"); !strings.Contains(l, "gcr.io") || strings.Contains(l, "us.gcr.io") {
		t.Errorf("stale line %q, want gcr.io only", l)
	}
	assertNoSecret(t, out, "X2pzb25fa2V5Ont9")
}

func TestDoctorDockerConfigMissing(t *testing.T) {
	withServiceAccountKey(t)
	out, _, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	assertContains(t, out, "does not exist: run docker-credential-gcp configure-docker")
}

func TestDoctorHelperOnPath(t *testing.T) {
	withServiceAccountKey(t)
	bin := t.TempDir()
	helperPath := filepath.Join(bin, "docker-credential-gcp")
	if err := os.WriteFile(helperPath, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	t.Setenv("PATH", bin)
	out, _, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	if l := lineWith(out, helperPath); !strings.Contains(l, "ok") {
		t.Errorf("PATH line %q, want ok %s", l, helperPath)
	}

	t.Setenv("PATH", t.TempDir())
	out, _, err = runInProcess(t, Doctor)
	if err != nil {
		t.Errorf("doctor failed only because the helper is not on PATH: %v", err)
	}
	assertContains(t, out, "docker-credential-gcp is not on PATH")
}

func TestDoctorHelp(t *testing.T) {
	isolateEnv(t)
	stdout, _, err := runInProcess(t, Doctor, "--help")
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	assertContains(t, stdout, "Usage: docker-credential-gcp doctor", "--registry", "never prints a token")
}

// A source that shadows another (a stale GOOGLE_OAUTH_ACCESS_TOKEN hiding
// GOOGLE_APPLICATION_CREDENTIALS) is the usual puzzle doctor must solve, so
// the sources after the winner are named too, without being consulted.
func TestDoctorNamesSourcesNotChecked(t *testing.T) {
	g, _, keyPath := withServiceAccountKey(t)
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.shadowing-doctor-token")

	out, _, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	for _, source := range []string{"GOOGLE_APPLICATION_CREDENTIALS (" + keyPath + ")", "configure-docker --key-file", "gcloud application default credentials", "metadata server"} {
		if l := lineWith(out, source); !strings.Contains(l, "skip") || !strings.Contains(l, "not checked, GOOGLE_OAUTH_ACCESS_TOKEN comes first") {
			t.Errorf("source %s after the winner: line %q, want it named as not checked:\n%s", source, l, out)
		}
	}
	if n := g.Count("any"); n != 0 {
		t.Errorf("%d requests to Google for sources after the winner, want 0", n)
	}
	assertNoSecret(t, out, "ya29.shadowing-doctor-token")
}

// docker looks credHelpers up by the bare host exactly as written, so a key
// such as "https://gcr.io" routes nothing and doctor must not say it does.
func TestDoctorCredHelpersKeysMatchExactly(t *testing.T) {
	_, env, _ := withServiceAccountKey(t)
	config := `{"credHelpers": {"https://gcr.io/": "gcp", "us.gcr.io": "gcp"}}`
	if err := os.WriteFile(filepath.Join(env.Docker, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	out, _, err := runInProcess(t, Doctor)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	if l := lineWith(out, `route to "gcp"`); !strings.HasSuffix(l, ": us.gcr.io") {
		t.Errorf("routed line %q, want us.gcr.io only", l)
	}
	if l := lineWith(out, "not routed to this helper"); !strings.Contains(l, ": gcr.io,") {
		t.Errorf("not-routed line %q, want it to start with gcr.io", l)
	}
	if l := lineWith(out, `"https://gcr.io/"`); !strings.Contains(l, "warn") || !strings.Contains(l, `docker looks up "gcr.io" exactly`) {
		t.Errorf("line for the misspelt key %q, want a warning", l)
	}
}

// doctor only reads docker's config: a broken one is reported with where
// it breaks, without "refusing to modify" and without repeating the path
// the section title already shows.
func TestDoctorBrokenDockerConfig(t *testing.T) {
	env := isolateEnv(t)
	path := filepath.Join(env.Docker, "config.json")
	writeFile(t, path, "{\n\t\"auths\": {},\n}\n", 0o600)
	out, _, _ := runInProcess(t, Doctor)
	assertContains(t, out, "Docker config: "+path+"\n  FAIL  it is not valid JSON: invalid character '}' looking for beginning of object key string at line 3, column 1; docker ignores the file too: fix it or move it away")
	if strings.Contains(out, "refusing") {
		t.Errorf("doctor says it refuses to modify a file it only reads:\n%s", out)
	}
	if n := strings.Count(out, path); n != 1 {
		t.Errorf("doctor prints %s %d times, want once:\n%s", path, n, out)
	}
}
