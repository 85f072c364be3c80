package fake

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"runtime"
	"testing"

	"golang.org/x/oauth2/google"
)

// TestServiceAccountKey is not parallel: it watches the shared key pool.
func TestServiceAccountKey(t *testing.T) {
	g := NewGoogle(t)
	first := g.ServiceAccountKey(t, saEmail)
	var f serviceAccountFile
	if err := json.Unmarshal(first, &f); err != nil {
		t.Fatal(err)
	}
	if f.Type != "service_account" || f.ProjectID != "my-proj" || f.ClientEmail != saEmail ||
		f.TokenURI != g.TokenURL() || len(f.PrivateKeyID) != 40 || len(f.ClientID) != 21 {
		t.Errorf("key file fields: %+v", f)
	}
	block, _ := pem.Decode([]byte(f.PrivateKey))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("private_key is not a PKCS#8 PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if rk, ok := k.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 2048 {
		t.Errorf("private key is %T, want RSA 2048", k)
	}
	if cfg, err := google.JWTConfigFromJSON(first, CloudPlatformScope); err != nil || cfg.TokenURL != g.TokenURL() {
		t.Errorf("JWTConfigFromJSON: %v, token URL %q", err, cfg.TokenURL)
	}

	if again := g.ServiceAccountKey(t, saEmail); string(again) != string(first) {
		t.Error("the same e-mail got a different key file")
	}
	g.ServiceAccountKey(t, targetEmail)
	a, b := g.keys[saEmail], g.keys[targetEmail]
	if a.keyID == b.keyID || a.key.N.Cmp(b.key.N) == 0 {
		t.Error("distinct e-mails share a key or key ID")
	}

	// A second fake reuses pooled keys instead of generating new ones.
	keyPool.mu.Lock()
	pooled := len(keyPool.keys)
	keyPool.mu.Unlock()
	g2 := NewGoogle(t)
	g2.ServiceAccountKey(t, saEmail)
	g2.ServiceAccountKey(t, targetEmail)
	keyPool.mu.Lock()
	defer keyPool.mu.Unlock()
	if len(keyPool.keys) != pooled {
		t.Errorf("pool grew from %d to %d keys", pooled, len(keyPool.keys))
	}
	if g2.keys[saEmail].keyID == a.keyID {
		t.Error("a second fake reused a key ID")
	}
}

func TestWriteServiceAccountKey(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	path := g.WriteServiceAccountKey(t, t.TempDir(), saEmail)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(g.ServiceAccountKey(t, saEmail)) {
		t.Error("written file differs from ServiceAccountKey")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestProjectOf(t *testing.T) {
	for email, want := range map[string]string{
		"sa@my-proj.iam.gserviceaccount.com":        "my-proj",
		"123-compute@developer.gserviceaccount.com": "fake-project",
		"nobody": "fake-project",
	} {
		if got := projectOf(email); got != want {
			t.Errorf("projectOf(%q) = %q, want %q", email, got, want)
		}
	}
}
