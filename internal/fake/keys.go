package fake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyPool holds RSA keys generated so far in this process. Generating a
// 2048-bit key costs tens to hundreds of milliseconds, so every Google
// fake reuses them; within one fake each e-mail still gets its own key.
var keyPool struct {
	mu   sync.Mutex
	keys []*rsa.PrivateKey
}

// pooledKey returns a pooled key that is not in used, generating one when
// every pooled key is.
func pooledKey(t testing.TB, used map[*rsa.PrivateKey]bool) *rsa.PrivateKey {
	t.Helper()
	keyPool.mu.Lock()
	for _, k := range keyPool.keys {
		if !used[k] {
			keyPool.mu.Unlock()
			return k
		}
	}
	keyPool.mu.Unlock()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("fake: generating RSA key: %v", err)
	}
	keyPool.mu.Lock()
	keyPool.keys = append(keyPool.keys, k)
	keyPool.mu.Unlock()
	return k
}

// serviceAccount is a key registered with a Google fake.
type serviceAccount struct {
	email string
	keyID string
	key   *rsa.PrivateKey
	json  []byte
}

// serviceAccountFile is the JSON shape of a Google service-account key,
// fields in the order Google writes them.
type serviceAccountFile struct {
	Type           string `json:"type"`
	ProjectID      string `json:"project_id"`
	PrivateKeyID   string `json:"private_key_id"`
	PrivateKey     string `json:"private_key"`
	ClientEmail    string `json:"client_email"`
	ClientID       string `json:"client_id"`
	TokenURI       string `json:"token_uri"`
	UniverseDomain string `json:"universe_domain"`
}

// ServiceAccountKey returns a service-account key file for email whose
// token_uri is TokenURL(), registering its public key so the fake accepts
// JWTs it signs. The same e-mail always gets the same key file; distinct
// e-mails get distinct keys and key IDs.
func (g *Google) ServiceAccountKey(t testing.TB, email string) []byte {
	t.Helper()
	g.keyMu.Lock()
	defer g.keyMu.Unlock()

	g.mu.Lock()
	if sa, ok := g.keys[email]; ok {
		g.mu.Unlock()
		return append([]byte(nil), sa.json...)
	}
	used := map[*rsa.PrivateKey]bool{}
	for _, sa := range g.keys {
		used[sa.key] = true
	}
	g.mu.Unlock()

	key := pooledKey(t, used)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("fake: encoding private key: %v", err)
	}
	sa := &serviceAccount{email: email, keyID: randomHex(20), key: key}
	sa.json, err = json.MarshalIndent(serviceAccountFile{
		Type:           "service_account",
		ProjectID:      projectOf(email),
		PrivateKeyID:   sa.keyID,
		PrivateKey:     string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		ClientEmail:    email,
		ClientID:       randomDigits(21),
		TokenURI:       g.TokenURL(),
		UniverseDomain: "googleapis.com",
	}, "", "  ")
	if err != nil {
		t.Fatalf("fake: encoding key file: %v", err)
	}

	g.mu.Lock()
	g.keys[email] = sa
	g.keyIDs[sa.keyID] = sa
	g.mu.Unlock()
	return append([]byte(nil), sa.json...)
}

// WriteServiceAccountKey writes ServiceAccountKey(t, email) to dir with
// mode 0600 and returns its path.
func (g *Google) WriteServiceAccountKey(t testing.TB, dir, email string) string {
	t.Helper()
	path := filepath.Join(dir, strings.NewReplacer("/", "_", `\`, "_", ":", "_").Replace(email)+".json")
	if err := os.WriteFile(path, g.ServiceAccountKey(t, email), 0o600); err != nil {
		t.Fatalf("fake: writing key file: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatalf("fake: writing key file: %v", err)
	}
	return path
}

// AuthorizedUserJSON returns gcloud-style user credentials whose token_uri
// is TokenURL(), registering refreshToken as valid for that client.
func (g *Google) AuthorizedUserJSON(clientID, clientSecret, refreshToken string) []byte {
	g.mu.Lock()
	g.refresh[refreshToken] = oauthClient{id: clientID, secret: clientSecret}
	g.mu.Unlock()
	return mustJSON(map[string]string{
		"type":          "authorized_user",
		"client_id":     clientID,
		"client_secret": clientSecret,
		"refresh_token": refreshToken,
		"token_uri":     g.TokenURL(),
	})
}

// ExternalAccountJSON returns a workload-identity-federation config that
// reads a JWT subject token from subjectTokenFile and exchanges it at
// STSURL() for audience, without impersonation. It registers audience.
func (g *Google) ExternalAccountJSON(subjectTokenFile, audience string) []byte {
	g.mu.Lock()
	g.audiences[audience] = true
	g.mu.Unlock()
	return mustJSON(map[string]any{
		"type":               "external_account",
		"audience":           audience,
		"subject_token_type": jwtTokenType,
		"token_url":          g.STSURL(),
		"credential_source":  map[string]string{"file": subjectTokenFile},
	})
}

// ImpersonatedJSON returns gcloud-style impersonation credentials: tokens
// for target minted at IAMURL() with a token from sourceKeyJSON (any
// credential JSON this fake produced, usually a service-account key).
func (g *Google) ImpersonatedJSON(sourceKeyJSON []byte, target string) []byte {
	return mustJSON(map[string]any{
		"type":                              "impersonated_service_account",
		"service_account_impersonation_url": g.URL + iamPathPrefix + target + iamPathSuffix,
		"delegates":                         []string{},
		"source_credentials":                json.RawMessage(sourceKeyJSON),
	})
}

// jwtClaims are the claims Google's token endpoint reads from a
// jwt-bearer assertion.
type jwtClaims struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

// clockSkew is how far a JWT's iat may lie in the future.
const clockSkew = 5 * time.Minute

// verifyAssertion checks a jwt-bearer assertion as Google does: RS256
// signature by a registered key (found by kid, else by iss), iss, aud,
// scope and a lifetime of at most an hour that includes now.
func (g *Google) verifyAssertion(assertion string) (jwtClaims, error) {
	c, err := g.verifySigned(assertion, false)
	if err != nil {
		return c, err
	}
	switch {
	case c.Aud != g.TokenURL():
		return c, fmt.Errorf("Invalid JWT: Failed audience check. The expected value was %s.", g.TokenURL())
	case !hasScope(c.Scope, CloudPlatformScope):
		return c, fmt.Errorf("Invalid JWT: scope must include %s.", CloudPlatformScope)
	}
	return c, nil
}

// VerifySelfSignedJWT checks a self-signed JWT access token as Google's
// APIs do and returns its service account: RS256, kid naming a key
// registered with ServiceAccountKey and the signature verifying with that
// key's public key, iss = sub = the key's client_email, the cloud-platform
// scope, a lifetime of at most an hour that includes now, and the account
// not revoked. A JWT signed by any other key is refused.
func (g *Google) VerifySelfSignedJWT(tok string) (string, error) {
	c, err := g.verifySigned(tok, true)
	if err != nil {
		return "", err
	}
	g.mu.Lock()
	_, revoked := g.revoked[c.Iss]
	g.mu.Unlock()
	switch {
	case c.Sub != c.Iss:
		return "", errors.New("Invalid JWT: sub must equal iss.")
	case !hasScope(c.Scope, CloudPlatformScope):
		return "", fmt.Errorf("Invalid JWT: scope must include %s.", CloudPlatformScope)
	case revoked:
		return "", errors.New("Invalid JWT Signature.")
	}
	return c.Iss, nil
}

// RegistryLogin is a registry's check of Basic credentials as gcr.io makes
// it: the username oauth2accesstoken and, as password, an unexpired token
// this fake issued to principal or a self-signed JWT of principal's key.
func (g *Google) RegistryLogin(principal string) func(user, password string) bool {
	return func(user, password string) bool {
		if user != "oauth2accesstoken" {
			return false
		}
		if is, ok := g.Issued(password); ok {
			return is.Principal == principal
		}
		who, err := g.VerifySelfSignedJWT(password)
		return err == nil && who == principal
	}
}

// verifySigned checks what every Google JWT needs: the RS256 signature of
// a registered key (by kid, which needKid requires, else by iss), iss
// being that key's account, and a lifetime of at most an hour that
// includes now.
func (g *Google) verifySigned(assertion string, needKid bool) (jwtClaims, error) {
	var c jwtClaims
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return c, errors.New("Invalid JWT: malformed assertion.")
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &h); err != nil {
		return c, fmt.Errorf("Invalid JWT: header: %v", err)
	}
	if err := decodeSegment(parts[1], &c); err != nil {
		return c, fmt.Errorf("Invalid JWT: claims: %v", err)
	}
	if h.Alg != "RS256" {
		return c, fmt.Errorf("Invalid JWT: unsupported alg %q.", h.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return c, errors.New("Invalid JWT Signature.")
	}

	if needKid && h.Kid == "" {
		return c, errors.New("Invalid JWT: no kid in the header.")
	}
	g.mu.Lock()
	sa, ok := g.keys[c.Iss]
	if h.Kid != "" {
		sa, ok = g.keyIDs[h.Kid]
	}
	g.mu.Unlock()
	if !ok {
		return c, errors.New("Invalid JWT Signature.")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&sa.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return c, errors.New("Invalid JWT Signature.")
	}

	now := time.Now()
	switch {
	case c.Iss != sa.email:
		return c, errors.New("Invalid JWT Signature.")
	case c.Iat == 0 || c.Exp == 0 || c.Exp <= c.Iat || c.Exp-c.Iat > 3600 ||
		!now.Before(time.Unix(c.Exp, 0)) || time.Unix(c.Iat, 0).After(now.Add(clockSkew)):
		return c, errors.New("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
	}
	return c, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// projectOf derives a project ID from a service-account e-mail such as
// sa@my-proj.iam.gserviceaccount.com.
func projectOf(email string) string {
	_, domain, ok := strings.Cut(email, "@")
	if p, _, found := strings.Cut(domain, ".iam.gserviceaccount.com"); ok && found && p != "" {
		return p
	}
	return "fake-project"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomDigits(n int) string {
	var sb strings.Builder
	for i := range n {
		lo := int64(0)
		if i == 0 {
			lo = 1
		}
		d, _ := rand.Int(rand.Reader, big.NewInt(10-lo))
		sb.WriteByte(byte('0' + lo + d.Int64()))
	}
	return sb.String()
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("fake: encoding JSON: %v", err))
	}
	return b
}
