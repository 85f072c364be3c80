package cmd

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

const testSAEmail = "builder@test-project.iam.gserviceaccount.com"

// withServiceAccountKey isolates the environment and points
// GOOGLE_APPLICATION_CREDENTIALS at a key the fake token endpoint accepts.
func withServiceAccountKey(t *testing.T) (*fake.Google, *testEnv, string) {
	t.Helper()
	env := isolateEnv(t)
	g := fake.NewGoogle(t)
	keyPath := g.WriteServiceAccountKey(t, t.TempDir(), testSAEmail)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", keyPath)
	return g, env, keyPath
}

func TestTokenPrintsIssuedTokenAndUsesCache(t *testing.T) {
	g, _, _ := withServiceAccountKey(t)

	var tokens []string
	for _, name := range []string{"token", "print-access-token"} {
		out, stderr, err := runInProcess(t, Token)
		if err != nil {
			t.Fatalf("%s: %v (stderr %q)", name, err, stderr)
		}
		if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Fatalf("%s printed %q, want one line", name, out)
		}
		tokens = append(tokens, strings.TrimSuffix(out, "\n"))
	}
	issued, ok := g.Issued(tokens[0])
	if !ok {
		t.Fatalf("printed token %q was not issued by the fake", tokens[0])
	}
	if issued.Principal != testSAEmail {
		t.Errorf("token issued to %q, want %q", issued.Principal, testSAEmail)
	}
	if !strings.Contains(issued.Scope, token.CloudPlatformScope) {
		t.Errorf("token scope %q, want %s", issued.Scope, token.CloudPlatformScope)
	}
	if tokens[1] != tokens[0] {
		t.Errorf("second call printed another token; want the cached one")
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("token endpoint saw %d JWT grants for two calls, want 1 (cache)", n)
	}
}

func TestTokenFormatJSON(t *testing.T) {
	g, _, _ := withServiceAccountKey(t)

	out, _, err := runInProcess(t, Token, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Expiry      string `json:"expiry"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	issued, ok := g.Issued(got.AccessToken)
	if !ok {
		t.Fatalf("access_token %q was not issued by the fake", got.AccessToken)
	}
	if got.TokenType != "Bearer" {
		t.Errorf("token_type = %q, want Bearer", got.TokenType)
	}
	expiry, err := time.Parse(time.RFC3339, got.Expiry)
	if err != nil {
		t.Fatalf("expiry %q is not RFC 3339: %v", got.Expiry, err)
	}
	if d := expiry.Sub(issued.Expiry); d < -time.Second || d > time.Second {
		t.Errorf("expiry = %s, the fake issued it until %s", expiry, issued.Expiry)
	}
	if left := time.Until(expiry); got.ExpiresIn <= 0 || got.ExpiresIn > int64(left/time.Second)+2 {
		t.Errorf("expires_in = %d, want about %d", got.ExpiresIn, int64(left/time.Second))
	}
}

func TestTokenRegistryFlag(t *testing.T) {
	g, _, _ := withServiceAccountKey(t)

	out, _, err := runInProcess(t, Token, "--registry", "https://europe-docker.pkg.dev/project/repo")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Issued(strings.TrimSpace(out)); !ok {
		t.Errorf("printed %q, not a token the fake issued", out)
	}
}

func TestTokenRefusesBadInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"non-Google registry", []string{"--registry", "gcr.io.evil.com"}, "not a Google registry"},
		{"unparseable registry", []string{"--registry", "gcr.io@evil.com"}, "--registry"},
		{"unknown format", []string{"--format", "yaml"}, "--format"},
		{"unknown flag", []string{"--bogus"}, "bogus"},
		{"stray argument", []string{"gcr.io"}, "unexpected argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, _, _ := withServiceAccountKey(t)
			out, _, err := runInProcess(t, Token, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed %q on error", out)
			}
			if n := g.Count("any"); n != 0 {
				t.Errorf("%d token requests, want none", n)
			}
		})
	}
}

func TestTokenNoCredentials(t *testing.T) {
	isolateEnv(t)

	out, _, err := runInProcess(t, Token)
	if err == nil {
		t.Fatalf("no error; printed %q", out)
	}
	if err.Error() != ErrNoCredentials.Error() {
		t.Errorf("error = %q, want %q", err, ErrNoCredentials)
	}
	if !errors.Is(err, token.ErrNoCredentials) {
		t.Errorf("error does not match token.ErrNoCredentials")
	}
	if !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS") || !strings.Contains(err.Error(), "configure-docker --key-file") {
		t.Errorf("error %q does not say what to do", err)
	}
}

func TestTokenReadyMadeToken(t *testing.T) {
	isolateEnv(t)
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.ready-made-token")

	out, _, err := runInProcess(t, Token)
	if err != nil {
		t.Fatal(err)
	}
	if out != "ya29.ready-made-token\n" {
		t.Errorf("printed %q, want the GOOGLE_OAUTH_ACCESS_TOKEN value", out)
	}
}

func TestTokenHelp(t *testing.T) {
	isolateEnv(t)
	stdout, _, err := runInProcess(t, Token, "--help")
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: docker-credential-gcp token", "--password-stdin", "--format", "--registry"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help output lacks %q:\n%s", want, stdout)
		}
	}
}
