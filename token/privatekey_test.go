package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// withPrivateKey returns the key JSON with its private_key replaced by key.
func withPrivateKey(t *testing.T, keyJSON []byte, key string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(keyJSON, &m); err != nil {
		t.Fatal(err)
	}
	m["private_key"] = key
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func privateKeyOf(t *testing.T, keyJSON []byte) string {
	t.Helper()
	var k struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(keyJSON, &k); err != nil {
		t.Fatal(err)
	}
	return k.PrivateKey
}

// A key whose private_key cannot be parsed is refused when it is checked
// (configure-docker --key-file, store _json_key) and before a mint, with
// one message that says it is damaged and what to do, never an asn1 dump
// and never the key.
func TestDamagedPrivateKey(t *testing.T) {
	isolateEnv(t)
	g := fake.NewGoogle(t)
	good := g.ServiceAccountKey(t, "damaged@proj.iam.gserviceaccount.com")
	pemKey := privateKeyOf(t, good)
	block, _ := pem.Decode([]byte(pemKey))
	rsaKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey.(*rsa.PrivateKey))}))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))

	for _, c := range []struct {
		name, key, want string
	}{
		{"line breaks turned into spaces", strings.ReplaceAll(pemKey, "\n", " "), "line breaks are missing"},
		{"line breaks as the text \\n", strings.ReplaceAll(pemKey, "\n", `\n`), `the two characters \n`},
		{"no PEM at all", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "not PEM-encoded"},
		{"base64 body cut short", pemKey[:len(pemKey)/2] + "\n-----END PRIVATE KEY-----\n", "PEM"},
		{"text after the key", pemKey + "pasted twice?", "extra text after the -----END line"},
		{"an EC key", ecPEM, "not an RSA key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := withPrivateKey(t, good, c.key)
			_, err := ValidateJSON(data)
			wantDamaged(t, err, "the private key in the credential JSON is damaged", c.want)

			path := writeTestFile(t, "key.json", data)
			_, err = ValidateFile(path)
			wantDamaged(t, err, "the private key in "+path+" is damaged", c.want)

			// A key recorded before this check existed fails the same way at get.
			cred := mustFind(t, keyFileSource{path: path})
			_, err = cred.TokenSource.Token()
			wantDamaged(t, err, "damaged@proj.iam.gserviceaccount.com: the private key in the credential JSON is damaged", c.want)
			for _, line := range strings.Split(c.key, "\n") {
				if len(line) >= 16 && strings.Contains(err.Error(), line) {
					t.Errorf("the error quotes the key: %v", err)
				}
			}

			// Signing a JWT with it locally says the same.
			_, err = WithSelfSignedJWT(mustFind(t, keyFileSource{path: path})).TokenSource.Token()
			wantDamaged(t, err, "self-signed JWT of service account damaged@proj.iam.gserviceaccount.com: the private key in the credential JSON is damaged", c.want)
		})
	}
	// The source key of an impersonated credential is checked too.
	_, err = ValidateJSON(g.ImpersonatedJSON(withPrivateKey(t, good, strings.ReplaceAll(pemKey, "\n", " ")), "target@proj.iam.gserviceaccount.com"))
	wantDamaged(t, err, "the private key in the credential JSON is damaged", "line breaks are missing")

	for name, key := range map[string]string{"PKCS#8": pemKey, "PKCS#1": pkcs1} {
		if _, err := ValidateJSON(withPrivateKey(t, good, key)); err != nil {
			t.Errorf("a good %s key is refused: %v", name, err)
		}
	}
	if n := g.Count("any"); n != 0 {
		t.Errorf("%d token requests for damaged keys, want 0", n)
	}
}

func wantDamaged(t *testing.T, err error, parts ...string) {
	t.Helper()
	var damaged *DamagedKeyError
	if !errors.As(err, &damaged) {
		t.Fatalf("error %v is not a DamagedKeyError", err)
	}
	for _, p := range append(parts, "download the key again") {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
	if strings.Contains(err.Error(), "asn1") {
		t.Errorf("error %q carries an asn1 dump", err)
	}
}
