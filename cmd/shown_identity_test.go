package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// A client_email holding other text (here a pasted private key) is never
// printed as the principal, by doctor or by configure-docker.
func TestPrincipalShownOnlyWhenAccountLike(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	const pasted = "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	var key map[string]any
	if err := json.Unmarshal(g.ServiceAccountKey(t, pasted), &key); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(key)
	keyPath := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(keyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	secret := "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7"

	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", keyPath)
	out, stderr, _ := runInProcess(t, Doctor)
	assertNoSecret(t, out+stderr, secret)
	assertContains(t, out, "principal: "+token.UnrecognizedPrincipal)

	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	out, stderr, err := runInProcess(t, ConfigureDocker, "--key-file", keyPath)
	if err != nil {
		t.Fatalf("configure-docker --key-file: %v\n%s", err, stderr)
	}
	assertNoSecret(t, out+stderr, secret)
	if !strings.Contains(out+stderr, keyPath+" ("+token.UnrecognizedPrincipal+")") {
		t.Errorf("configure-docker does not say the principal is unrecognized:\n%s%s", out, stderr)
	}
}

// doctor --registry with user info in the URL prints the host, never the
// password.
func TestDoctorRegistryUserInfoNotPrinted(t *testing.T) {
	withServiceAccountKey(t)
	for _, arg := range []string{"https://ci:PASSWORD@gcr.io", "ci:PASSWORD@gcr.io/p/i", "https://ci:PASSWORD@evil.example", "https://ci:PASSWORD@bad_host"} {
		out, stderr, _ := runInProcess(t, Doctor, "--registry", arg)
		if strings.Contains(out+stderr, "PASSWORD") {
			t.Errorf("doctor --registry %q prints the password:\n%s%s", arg, out, stderr)
		}
	}
	out, _, _ := runInProcess(t, Doctor, "--registry", "https://ci:PASSWORD@gcr.io")
	assertContains(t, out, "Registry: gcr.io\n")
}
