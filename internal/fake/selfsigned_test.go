package fake_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2/google"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

const (
	jwtSA    = "signer@my-proj.iam.gserviceaccount.com"
	jwtOther = "other@my-proj.iam.gserviceaccount.com"
)

// selfSignedJWT signs a JWT access token with keyJSON as x/oauth2/google does.
func selfSignedJWT(t *testing.T, keyJSON []byte, scopes ...string) string {
	t.Helper()
	ts, err := google.JWTAccessTokenSourceWithScope(keyJSON, scopes...)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// withKeyField returns keyJSON with one field replaced.
func withKeyField(t *testing.T, keyJSON []byte, field, value string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(keyJSON, &m); err != nil {
		t.Fatal(err)
	}
	m[field] = value
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The registry fake accepts a self-signed JWT only when the key registered
// for its kid and iss verifies the signature.
func TestRegistryVerifiesSelfSignedJWT(t *testing.T) {
	g := fake.NewGoogle(t)
	key := g.ServiceAccountKey(t, jwtSA)
	otherKey := g.ServiceAccountKey(t, jwtOther)
	login := g.RegistryLogin(jwtSA)

	foreign, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(foreign)
	if err != nil {
		t.Fatal(err)
	}
	foreignPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))

	good := selfSignedJWT(t, key, fake.CloudPlatformScope)
	if who, err := g.VerifySelfSignedJWT(good); err != nil || who != jwtSA {
		t.Fatalf("VerifySelfSignedJWT(good) = %q, %v", who, err)
	}
	refused := map[string]string{
		// Same kid, iss and sub, but signed by a key Google never saw.
		"signed by a foreign key": selfSignedJWT(t, withKeyField(t, key, "private_key", foreignPEM), fake.CloudPlatformScope),
		// Another registered key, claiming to be jwtSA.
		"signed by another account's key": selfSignedJWT(t, withKeyField(t, otherKey, "client_email", jwtSA), fake.CloudPlatformScope),
		"unknown kid":                     selfSignedJWT(t, withKeyField(t, key, "private_key_id", strings.Repeat("0", 40)), fake.CloudPlatformScope),
		"wrong scope":                     selfSignedJWT(t, key, "https://www.googleapis.com/auth/devstorage.read_only"),
		"tampered":                        good[:len(good)-4] + "AAAA",
		"another account":                 selfSignedJWT(t, otherKey, fake.CloudPlatformScope),
	}
	for name, tok := range refused {
		if name != "another account" {
			if _, err := g.VerifySelfSignedJWT(tok); err == nil {
				t.Errorf("%s: VerifySelfSignedJWT accepted it", name)
			}
		}
		if login("oauth2accesstoken", tok) {
			t.Errorf("%s: the registry login accepted it", name)
		}
	}

	reg := fake.NewRegistry(t, login)
	reg.Seed(t, "p/i")
	for _, tt := range []struct {
		password string
		want     int
	}{{good, http.StatusOK}, {refused["signed by a foreign key"], http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodGet, reg.URL+"/v2/token?scope=repository:p/i:pull", nil)
		req.SetBasicAuth("oauth2accesstoken", tt.password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("registry token endpoint answered %d, want %d", resp.StatusCode, tt.want)
		}
	}
	if !login("oauth2accesstoken", g.IssueToken(jwtSA)) {
		t.Error("the registry login refused a token issued to the account")
	}
}
