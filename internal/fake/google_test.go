package fake

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

const (
	saEmail     = "builder@my-proj.iam.gserviceaccount.com"
	targetEmail = "pusher@other-proj.iam.gserviceaccount.com"
	wifAudience = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/gh/providers/gh"
)

// credentials builds a token source through x/oauth2/google, the code
// path the helper itself uses.
func credentials(t *testing.T, ctx context.Context, jsonKey []byte, typ google.CredentialsType) oauth2.TokenSource {
	t.Helper()
	creds, err := google.CredentialsFromJSONWithTypeAndParams(ctx, jsonKey, typ,
		google.CredentialsParams{Scopes: []string{CloudPlatformScope}})
	if err != nil {
		t.Fatalf("CredentialsFromJSONWithTypeAndParams(%s): %v", typ, err)
	}
	return creds.TokenSource
}

// mint returns one token from a fresh token source for jsonKey.
func mint(t *testing.T, jsonKey []byte, typ google.CredentialsType) (*oauth2.Token, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return credentials(t, ctx, jsonKey, typ).Token()
}

func subjectTokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oidc-token")
	if err := os.WriteFile(path, []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm8vciJ9.c2ln"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMintEachCredentialType(t *testing.T) {
	tests := []struct {
		name       string
		typ        google.CredentialsType
		json       func(t *testing.T, g *Google) []byte
		principal  string
		via        string
		source     string
		wantCounts map[string]int
	}{
		{
			name:       "service account",
			typ:        google.ServiceAccount,
			json:       func(t *testing.T, g *Google) []byte { return g.ServiceAccountKey(t, saEmail) },
			principal:  saEmail,
			via:        "jwt",
			wantCounts: map[string]int{"jwt": 1, "token": 1, "any": 1},
		},
		{
			name: "authorized user",
			typ:  google.AuthorizedUser,
			json: func(t *testing.T, g *Google) []byte {
				return g.AuthorizedUserJSON("client-1.apps.googleusercontent.com", "s3cret", "1//refresh-token")
			},
			principal:  "client-1.apps.googleusercontent.com",
			via:        "refresh",
			wantCounts: map[string]int{"refresh": 1, "token": 1, "any": 1},
		},
		{
			name: "external account",
			typ:  google.ExternalAccount,
			json: func(t *testing.T, g *Google) []byte {
				return g.ExternalAccountJSON(subjectTokenFile(t), wifAudience)
			},
			principal:  wifAudience,
			via:        "sts",
			wantCounts: map[string]int{"sts": 1, "any": 1},
		},
		{
			name: "impersonated service account",
			typ:  google.ImpersonatedServiceAccount,
			json: func(t *testing.T, g *Google) []byte {
				return g.ImpersonatedJSON(g.ServiceAccountKey(t, saEmail), targetEmail)
			},
			principal:  targetEmail,
			via:        "iam",
			source:     saEmail,
			wantCounts: map[string]int{"jwt": 1, "iam": 1, "any": 2},
		},
		{
			name: "impersonated from user credentials",
			typ:  google.ImpersonatedServiceAccount,
			json: func(t *testing.T, g *Google) []byte {
				return g.ImpersonatedJSON(g.AuthorizedUserJSON("client-2", "s", "1//rt"), targetEmail)
			},
			principal:  targetEmail,
			via:        "iam",
			source:     "client-2",
			wantCounts: map[string]int{"refresh": 1, "iam": 1, "any": 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewGoogle(t)
			tok, err := mint(t, tt.json(t, g), tt.typ)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if !strings.HasPrefix(tok.AccessToken, "ya29.fake-") {
				t.Errorf("token %q lacks the ya29.fake- prefix", tok.AccessToken)
			}
			if d := time.Until(tok.Expiry); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("client sees expiry in %v, want about an hour", d)
			}
			is, ok := g.Issued(tok.AccessToken)
			if !ok {
				t.Fatalf("Issued(%q) = false", tok.AccessToken)
			}
			if is.Principal != tt.principal || is.Via != tt.via || is.Source != tt.source {
				t.Errorf("Issued = %+v, want principal %q via %q source %q", is, tt.principal, tt.via, tt.source)
			}
			if !hasScope(is.Scope, CloudPlatformScope) {
				t.Errorf("scope %q lacks cloud-platform", is.Scope)
			}
			for kind, want := range tt.wantCounts {
				if got := g.Count(kind); got != want {
					t.Errorf("Count(%q) = %d, want %d", kind, got, want)
				}
			}
		})
	}
}

// signJWT signs header and claims with key as RS256.
func signJWT(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(header) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func postForm(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestJWTBearerVerifiesAssertion(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	g.ServiceAccountKey(t, saEmail)
	sa := g.keys[saEmail]
	used := map[*rsa.PrivateKey]bool{sa.key: true}
	unregistered := pooledKey(t, used)

	now := time.Now().Unix()
	header := func(mod func(map[string]any)) map[string]any {
		h := map[string]any{"alg": "RS256", "typ": "JWT", "kid": sa.keyID}
		if mod != nil {
			mod(h)
		}
		return h
	}
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": saEmail, "aud": g.TokenURL(), "scope": CloudPlatformScope, "iat": now - 10, "exp": now + 3590}
		if mod != nil {
			mod(c)
		}
		return c
	}
	valid := signJWT(t, sa.key, header(nil), claims(nil))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(
		fmt.Sprintf(`{"iss":%q,"aud":%q,"scope":%q,"iat":%d,"exp":%d}`, targetEmail, g.TokenURL(), CloudPlatformScope, now-10, now+3590))) + "." + parts[2]

	tests := []struct {
		name      string
		assertion string
		ok        bool
	}{
		{"valid", valid, true},
		{"valid, key found by iss", signJWT(t, sa.key, header(func(h map[string]any) { delete(h, "kid") }), claims(nil)), true},
		{"unregistered key under registered kid", signJWT(t, unregistered, header(nil), claims(nil)), false},
		{"unregistered key without kid", signJWT(t, unregistered, header(func(h map[string]any) { delete(h, "kid") }), claims(nil)), false},
		{"unknown kid", signJWT(t, sa.key, header(func(h map[string]any) { h["kid"] = "0123abcd" }), claims(nil)), false},
		{"tampered payload", tampered, false},
		{"truncated signature", valid[:len(valid)-8], false},
		{"iss is not the key's account", signJWT(t, sa.key, header(nil), claims(func(c map[string]any) { c["iss"] = targetEmail })), false},
		{"wrong aud", signJWT(t, sa.key, header(nil), claims(func(c map[string]any) { c["aud"] = "https://oauth2.googleapis.com/token" })), false},
		{"other scope", signJWT(t, sa.key, header(nil), claims(func(c map[string]any) { c["scope"] = "https://www.googleapis.com/auth/devstorage.read_only" })), false},
		{"no scope", signJWT(t, sa.key, header(nil), claims(func(c map[string]any) { delete(c, "scope") })), false},
		{"lifetime over an hour", signJWT(t, sa.key, header(nil), claims(func(c map[string]any) { c["exp"] = now + 7200 })), false},
		{"expired", signJWT(t, sa.key, header(nil), claims(func(c map[string]any) { c["iat"], c["exp"] = now-7200, now-3600 })), false},
		{"issued in the future", signJWT(t, sa.key, header(nil), claims(func(c map[string]any) { c["iat"], c["exp"] = now+3600, now+7000 })), false},
		{"no iat", signJWT(t, sa.key, header(nil), claims(func(c map[string]any) { delete(c, "iat") })), false},
		{"alg HS256", signJWT(t, sa.key, header(func(h map[string]any) { h["alg"] = "HS256" }), claims(nil)), false},
		{"not a JWT", "not-a-jwt", false},
	}
	for i, tt := range tests {
		status, body := postForm(t, g.TokenURL(), url.Values{"grant_type": {jwtBearerGrant}, "assertion": {tt.assertion}})
		if tt.ok {
			if status != http.StatusOK || body["access_token"] == nil {
				t.Errorf("%s: got %d %v, want 200 with a token", tt.name, status, body)
			}
		} else if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("%s: got %d %v, want 400 invalid_grant", tt.name, status, body)
		}
		if got := g.Count("jwt"); got != i+1 {
			t.Errorf("%s: Count(jwt) = %d, want %d", tt.name, got, i+1)
		}
	}
}

// retrieveError asserts err is an OAuth error with status and code. The
// jwt-bearer flow of x/oauth2 leaves RetrieveError.ErrorCode empty, so the
// code is read from the body.
func retrieveError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not an *oauth2.RetrieveError", err, err)
	}
	var body struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(re.Body, &body)
	if re.Response.StatusCode != status || body.Error != code {
		t.Fatalf("got %d %q (%v), want %d %q", re.Response.StatusCode, body.Error, err, status, code)
	}
}

func TestUnregisteredKeyFileRejected(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	var f map[string]any
	if err := json.Unmarshal(g.ServiceAccountKey(t, saEmail), &f); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(pooledKey(t, map[*rsa.PrivateKey]bool{g.keys[saEmail].key: true}))
	if err != nil {
		t.Fatal(err)
	}
	f["private_key"] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	_, err = mint(t, mustJSON(f), google.ServiceAccount)
	retrieveError(t, err, http.StatusBadRequest, "invalid_grant")
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	t.Run("service account", func(t *testing.T) {
		t.Parallel()
		g := NewGoogle(t)
		key := g.ServiceAccountKey(t, saEmail)
		g.Revoke(saEmail)
		_, err := mint(t, key, google.ServiceAccount)
		retrieveError(t, err, http.StatusBadRequest, "invalid_grant")
		if !strings.Contains(err.Error(), "Invalid JWT Signature.") {
			t.Errorf("error %q lacks Google's description", err)
		}
		g.RevokeWith(saEmail, http.StatusUnauthorized)
		_, err = mint(t, key, google.ServiceAccount)
		retrieveError(t, err, http.StatusUnauthorized, "invalid_client")
	})
	t.Run("refresh token", func(t *testing.T) {
		t.Parallel()
		g := NewGoogle(t)
		creds := g.AuthorizedUserJSON("client-1", "s", "1//rt")
		g.Revoke("client-1")
		_, err := mint(t, creds, google.AuthorizedUser)
		retrieveError(t, err, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("sts audience", func(t *testing.T) {
		t.Parallel()
		g := NewGoogle(t)
		creds := g.ExternalAccountJSON(subjectTokenFile(t), wifAudience)
		g.Revoke(wifAudience)
		if _, err := mint(t, creds, google.ExternalAccount); err == nil || !strings.Contains(err.Error(), "status code 400") {
			t.Fatalf("Token error = %v, want status code 400", err)
		}
	})
	t.Run("impersonation target", func(t *testing.T) {
		t.Parallel()
		g := NewGoogle(t)
		creds := g.ImpersonatedJSON(g.ServiceAccountKey(t, saEmail), targetEmail)
		g.Revoke(targetEmail)
		if _, err := mint(t, creds, google.ImpersonatedServiceAccount); err == nil || !strings.Contains(err.Error(), "status code 403") {
			t.Fatalf("Token error = %v, want status code 403", err)
		}
	})
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	key := g.ServiceAccountKey(t, saEmail)
	g.FailNext(2, http.StatusServiceUnavailable, nil, `{"error":"backend_error"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts := credentials(t, ctx, key, google.ServiceAccount)
	for i := range 2 {
		_, err := ts.Token()
		retrieveError(t, err, http.StatusServiceUnavailable, "backend_error")
		if got := g.Count("any"); got != i+1 {
			t.Fatalf("x/oauth2 retried: Count(any) = %d after %d calls", got, i+1)
		}
	}
	if _, err := ts.Token(); err != nil {
		t.Fatalf("third Token: %v", err)
	}

	g.FailNext(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, "quota")
	_, err := mint(t, key, google.ServiceAccount)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusTooManyRequests || re.Response.Header.Get("Retry-After") != "7" {
		t.Fatalf("got %v, want 429 with Retry-After: 7", err)
	}
	if got := g.Count("jwt"); got != 4 {
		t.Errorf("Count(jwt) = %d, want 4", got)
	}
}

func TestMalformedAnswer(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	key := g.ServiceAccountKey(t, saEmail)
	g.SetMalformed(true)
	if tok, err := mint(t, key, google.ServiceAccount); err == nil {
		t.Fatalf("Token = %v, want an error", tok)
	}
	g.SetMalformed(false)
	if _, err := mint(t, key, google.ServiceAccount); err != nil {
		t.Fatalf("Token after SetMalformed(false): %v", err)
	}
}

func TestRedirect(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	g.SetRedirect("http://127.0.0.1:1/elsewhere")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(g.TokenURL(), url.Values{"grant_type": {jwtBearerGrant}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "http://127.0.0.1:1/elsewhere" {
		t.Fatalf("got %d to %q, want 307 to the target", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestHangAndLatency(t *testing.T) {
	t.Parallel()
	t.Run("hang ends at client deadline", func(t *testing.T) {
		t.Parallel()
		g := NewGoogle(t)
		key := g.ServiceAccountKey(t, saEmail)
		user := g.AuthorizedUserJSON("c", "s", "rt")
		g.SetHang(true)

		// The refresh flow honours the context's deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := credentials(t, ctx, user, google.AuthorizedUser).Token(); err == nil {
			t.Fatal("Token succeeded against a hanging server")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("refresh Token took %v", d)
		}

		// The jwt-bearer flow of x/oauth2 sends its request without the
		// context, so only the context's HTTP client timeout bounds it.
		ctx = context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 150 * time.Millisecond})
		start = time.Now()
		if _, err := credentials(t, ctx, key, google.ServiceAccount).Token(); err == nil {
			t.Fatal("Token succeeded against a hanging server")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("jwt Token took %v", d)
		}
	})

	errc := make(chan error, 1)
	t.Run("close releases a hung request", func(t *testing.T) {
		g := NewGoogle(t)
		g.SetHang(true)
		go func() {
			resp, err := http.PostForm(g.STSURL(), nil)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		for g.Count("sts") == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	select {
	case err := <-errc:
		if err == nil {
			t.Error("hung request got an answer, want a dropped connection")
		}
	case <-time.After(2 * time.Second):
		t.Error("closing the fake did not release the hung request")
	}

	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		g := NewGoogle(t)
		creds := g.AuthorizedUserJSON("c", "s", "rt")
		g.SetLatency(100 * time.Millisecond)
		start := time.Now()
		if _, err := mint(t, creds, google.AuthorizedUser); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("Token took %v, want at least the latency", d)
		}
	})
}

func TestSetLifetime(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	g.SetLifetime(90 * time.Second)
	tok, err := mint(t, g.AuthorizedUserJSON("c", "s", "rt"), google.AuthorizedUser)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(tok.Expiry); d < 85*time.Second || d > 90*time.Second {
		t.Errorf("client sees expiry in %v, want 90s", d)
	}
	is, _ := g.Issued(tok.AccessToken)
	if d := is.Expiry.Sub(tok.Expiry); d < -time.Second || d > time.Second {
		t.Errorf("fake expiry %v differs from client's %v", is.Expiry, tok.Expiry)
	}

	// IAM answers the shorter of the configured and the requested lifetime.
	imp, err := mint(t, g.ImpersonatedJSON(g.AuthorizedUserJSON("c", "s", "rt"), targetEmail), google.ImpersonatedServiceAccount)
	if err != nil {
		t.Fatal(err)
	}
	is, _ = g.Issued(imp.AccessToken)
	if !is.Expiry.Equal(imp.Expiry) || time.Until(imp.Expiry) > 91*time.Second {
		t.Errorf("IAM expiry: fake %v, client %v, want equal and about 90s away", is.Expiry, imp.Expiry)
	}

	g.issued[tok.AccessToken] = Issued{Expiry: time.Now().Add(-time.Second)}
	if _, ok := g.Issued(tok.AccessToken); ok {
		t.Error("Issued recognises an expired token")
	}
}

func TestIAMRequiresIssuedBearer(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	m := NewMetadata(t, saEmail)
	u := g.URL + iamPathPrefix + targetEmail + iamPathSuffix
	expired := g.IssueToken("old@p.iam.gserviceaccount.com")
	g.mu.Lock()
	g.issued[expired] = Issued{Expiry: time.Now().Add(-time.Minute)}
	g.mu.Unlock()

	post := func(bearer, url, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	metadataToken := func() string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+m.Host()+metadataPrefix+"instance/service-accounts/default/token", nil)
		req.Header.Set("Metadata-Flavor", "Google")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		return tok.AccessToken
	}()
	good := `{"scope":["` + CloudPlatformScope + `"],"lifetime":"3600s"}`

	tests := []struct {
		name, bearer, url, body string
		status                  int
	}{
		{"no bearer", "", u, good, 401},
		{"foreign token", "ya29.real-google-token", u, good, 401},
		{"expired token", expired, u, good, 401},
		{"untrusted metadata token", metadataToken, u, good, 401},
		{"manual token", g.IssueToken(saEmail), u, good, 200},
		{"no scope", g.IssueToken(saEmail), u, `{"lifetime":"3600s"}`, 400},
		{"lifetime too long", g.IssueToken(saEmail), u, `{"scope":["` + CloudPlatformScope + `"],"lifetime":"7200s"}`, 400},
		{"not JSON", g.IssueToken(saEmail), u, `scope=x`, 400},
		{"wrong path", g.IssueToken(saEmail), g.IAMURL() + "/v1/projects/-/serviceAccounts/" + targetEmail + ":signJwt", good, 404},
	}
	for _, tt := range tests {
		if status, body := post(tt.bearer, tt.url, tt.body); status != tt.status {
			t.Errorf("%s: got %d %s, want %d", tt.name, status, body, tt.status)
		}
	}

	g.TrustMetadata(m)
	status, body := post(metadataToken, u, good)
	if status != http.StatusOK {
		t.Fatalf("trusted metadata token: got %d %s", status, body)
	}
	var resp struct{ AccessToken, ExpireTime string }
	_ = json.Unmarshal([]byte(body), &resp)
	if is, ok := g.Issued(resp.AccessToken); !ok || is.Principal != targetEmail || is.Source != saEmail {
		t.Errorf("Issued = %+v, %v; want target minted from the metadata account", is, ok)
	}
	if _, err := time.Parse(time.RFC3339, resp.ExpireTime); err != nil {
		t.Errorf("expireTime %q: %v", resp.ExpireTime, err)
	}
	if got := g.Count("iam"); got != len(tests)+1 {
		t.Errorf("Count(iam) = %d, want %d", got, len(tests)+1)
	}
}

func TestSTSChecksRequest(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	g.ExternalAccountJSON("/dev/null", wifAudience)
	base := func(mod func(url.Values)) url.Values {
		v := url.Values{
			"grant_type":           {tokenExchangeGrant},
			"audience":             {wifAudience},
			"subject_token":        {"eyJ.eyJ.sig"},
			"subject_token_type":   {jwtTokenType},
			"requested_token_type": {accessTokenType},
			"scope":                {CloudPlatformScope},
		}
		if mod != nil {
			mod(v)
		}
		return v
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
	}{
		{"valid", base(nil), 200},
		{"wrong grant", base(func(v url.Values) { v.Set("grant_type", "refresh_token") }), 400},
		{"unknown audience", base(func(v url.Values) { v.Set("audience", "//iam.googleapis.com/other") }), 400},
		{"empty subject token", base(func(v url.Values) { v.Set("subject_token", "") }), 400},
		{"unknown subject token type", base(func(v url.Values) { v.Set("subject_token_type", "x") }), 400},
		{"no scope", base(func(v url.Values) { v.Del("scope") }), 400},
	}
	for _, tt := range tests {
		status, body := postForm(t, g.STSURL(), tt.form)
		if status != tt.status {
			t.Errorf("%s: got %d %v, want %d", tt.name, status, body, tt.status)
		}
		if status == 200 && body["issued_token_type"] != accessTokenType {
			t.Errorf("%s: issued_token_type = %v", tt.name, body["issued_token_type"])
		}
	}
}

func TestRefreshChecksClient(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	g.AuthorizedUserJSON("client-1", "s3cret", "1//rt")

	status, body := postForm(t, g.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"1//rt"}, "client_id": {"client-1"}, "client_secret": {"wrong"}})
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("wrong client secret: got %d %v", status, body)
	}

	status, body = postForm(t, g.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"1//unknown"}, "client_id": {"client-1"}, "client_secret": {"s3cret"}})
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("unknown refresh token: got %d %v", status, body)
	}

	req, _ := http.NewRequest(http.MethodPost, g.TokenURL(), strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"1//rt"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("client-1", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("client in Basic auth: got %d", resp.StatusCode)
	}

	status, body = postForm(t, g.TokenURL(), url.Values{"grant_type": {"password"}})
	if status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
		t.Errorf("password grant: got %d %v", status, body)
	}
	if got, want := g.Count("token"), g.Count("refresh")+1; got != want {
		t.Errorf("Count(token) = %d, want %d", got, want)
	}
}

func TestTokensAreUniqueUnderConcurrency(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	g.AuthorizedUserJSON("c", "s", "rt")
	const n = 32
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := http.PostForm(g.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt"}, "client_id": {"c"}, "client_secret": {"s"}})
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&tok)
			mu.Lock()
			seen[tok.AccessToken] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(seen) != n || seen[""] {
		t.Errorf("%d distinct tokens from %d grants", len(seen), n)
	}
	if got := g.Count("refresh"); got != n {
		t.Errorf("Count(refresh) = %d, want %d", got, n)
	}
	if _, ok := g.Issued("ya29.fake-never-issued"); ok {
		t.Error("Issued recognises a token it never issued")
	}
}

func TestCountRejectsUnknownKind(t *testing.T) {
	t.Parallel()
	g := NewGoogle(t)
	defer func() {
		if recover() == nil {
			t.Error("Count(\"jwts\") did not panic")
		}
	}()
	g.Count("jwts")
}
