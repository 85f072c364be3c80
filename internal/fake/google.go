// Package fake provides loopback fakes of Google's OAuth2 token endpoint,
// STS, IAM Credentials and the metadata server, so tests prove that real
// minting happens without ever reaching the internet.
package fake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// CloudPlatformScope is the scope every grant at the fakes must ask for.
const CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// Grant and token types the fakes understand, as Google spells them.
const (
	jwtBearerGrant     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType    = "urn:ietf:params:oauth:token-type:access_token"
	jwtTokenType       = "urn:ietf:params:oauth:token-type:jwt"
	iamPathPrefix      = "/iam/v1/projects/-/serviceAccounts/"
	iamPathSuffix      = ":generateAccessToken"
	defaultLifetime    = time.Hour
	maxIAMLifetime     = time.Hour
)

// Issued describes a token a fake handed out, so tests can check who a
// minted token belongs to and how it was obtained.
type Issued struct {
	// Principal is the service-account e-mail (jwt), OAuth client ID
	// (refresh), STS audience (sts; the federated principal of the subject
	// for tokens registered with TrustSubjectToken) or impersonation
	// target (iam).
	Principal string
	// Scope is the space-separated scope the token was granted.
	Scope string
	// Expiry is when the fake stops recognising the token.
	Expiry time.Time
	// Via is "jwt", "refresh", "sts", "iam" or "manual" (IssueToken).
	Via string
	// Source is, for "iam", the principal whose bearer token authorised
	// the impersonation; empty otherwise.
	Source string
}

// Google fakes the OAuth2 token endpoint, STS and IAM Credentials on one
// loopback httptest server, verifying what clients send as strictly as
// Google does for the parts our helper relies on.
type Google struct {
	// URL is the server's base address, http://127.0.0.1:port, no trailing slash.
	URL string

	srv   *httptest.Server
	done  chan struct{}
	keyMu sync.Mutex // serialises key registration (key generation is slow)

	mu        sync.Mutex
	counts    map[string]int
	issued    map[string]Issued
	keys      map[string]*serviceAccount // by client_email
	keyIDs    map[string]*serviceAccount // by private_key_id
	refresh   map[string]oauthClient     // by refresh token
	audiences map[string]bool
	subjects  map[string]map[string]string // audience -> subject token -> principal
	revoked   map[string]int               // principal -> status, 0 meaning the endpoint's usual one
	trusted   []*Metadata
	lifetime  time.Duration
	latency   time.Duration
	fail      failure
	hang      bool
	malformed bool
	echo      func(r *http.Request, body []byte) (int, string)
	redirect  string
}

type oauthClient struct{ id, secret string }

type failure struct {
	n      int
	status int
	header http.Header
	body   string
}

// countKinds are the kinds Count accepts.
var countKinds = map[string]bool{"jwt": true, "refresh": true, "sts": true, "iam": true, "token": true, "any": true}

// NewGoogle starts a fake on 127.0.0.1; t.Cleanup closes it, releasing
// any request held by SetHang or SetLatency first.
func NewGoogle(t testing.TB) *Google {
	t.Helper()
	g := &Google{
		done:      make(chan struct{}),
		counts:    map[string]int{},
		issued:    map[string]Issued{},
		keys:      map[string]*serviceAccount{},
		keyIDs:    map[string]*serviceAccount{},
		refresh:   map[string]oauthClient{},
		audiences: map[string]bool{},
		subjects:  map[string]map[string]string{},
		revoked:   map[string]int{},
		lifetime:  defaultLifetime,
	}
	g.srv = httptest.NewServer(http.HandlerFunc(g.handle))
	g.URL = g.srv.URL
	t.Cleanup(func() {
		close(g.done)
		g.srv.Close()
	})
	return g
}

// TokenURL is the OAuth2 token endpoint (jwt-bearer and refresh_token grants).
func (g *Google) TokenURL() string { return g.URL + "/token" }

// STSURL is the Security Token Service endpoint (token exchange).
func (g *Google) STSURL() string { return g.URL + "/sts" }

// IAMURL is the IAM Credentials base URL; generateAccessToken lives at
// IAMURL()+"/v1/projects/-/serviceAccounts/{email}:generateAccessToken".
func (g *Google) IAMURL() string { return g.URL + "/iam" }

// Count reports how many requests of a kind reached the fake, rejected ones
// included: "jwt", "refresh", "sts", "iam", "token" (everything sent to
// /token) or "any" (every request to /token, /sts and /iam). It panics on
// any other kind so a typo cannot make an assertion pass.
func (g *Google) Count(kind string) int {
	if !countKinds[kind] {
		panic(fmt.Sprintf("fake: unknown count kind %q", kind))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.counts[kind]
}

// Issued reports whether accessToken was issued by this fake and is still
// unexpired, and how.
func (g *Google) Issued(accessToken string) (Issued, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	is, ok := g.issued[accessToken]
	if !ok || !time.Now().Before(is.Expiry) {
		return Issued{}, false
	}
	return is, true
}

// IssueToken hands out a token for principal without any request, as if
// it came from elsewhere (e.g. GOOGLE_OAUTH_ACCESS_TOKEN), so it can
// authorise impersonation at the IAM endpoint. It is not counted.
func (g *Google) IssueToken(principal string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.issueLocked(principal, CloudPlatformScope, "manual", "", time.Now().Add(wholeSeconds(g.lifetime)))
}

// TrustMetadata makes the IAM endpoint accept tokens issued by m as
// bearer credentials, as real IAM accepts metadata-server tokens.
func (g *Google) TrustMetadata(m *Metadata) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.trusted = append(g.trusted, m)
}

// SetLifetime sets the lifetime of tokens issued from now on (default one
// hour), rounded up to whole seconds, at least one. IAM tokens get the
// shorter of this and the lifetime the client asked for.
func (g *Google) SetLifetime(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lifetime = d
}

// SetLatency delays every answer of the token-issuing endpoints by d.
func (g *Google) SetLatency(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.latency = d
}

// FailNext makes the next n token-issuing requests answer status with
// header and body (e.g. 503, or 429 with Retry-After). A body starting
// with "{" is sent as JSON unless header sets Content-Type.
func (g *Google) FailNext(n int, status int, header http.Header, body string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail = failure{n: n, status: status, header: header.Clone(), body: body}
}

// SetHang makes token-issuing requests block until the client goes away
// or the fake closes; the connection is then dropped without an answer.
func (g *Google) SetHang(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hang = on
}

// SetMalformed makes token-issuing requests answer 200 with a body that
// claims to be JSON but is not.
func (g *Google) SetMalformed(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.malformed = on
}

// SetEcho makes token-issuing requests answer what render returns (status
// and body, a body starting with "{" sent as JSON), given the request and
// its body as the client sent it: an endpoint that echoes the request,
// secrets and all, in its error. nil stops it.
func (g *Google) SetEcho(render func(r *http.Request, body []byte) (int, string)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.echo = render
}

// SetRedirect makes token-issuing requests answer 307 to `to`; "" stops it.
func (g *Google) SetRedirect(to string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.redirect = to
}

// Revoke makes further grants for principal fail the way Google fails
// them: a service-account e-mail or OAuth client ID or refresh token at
// /token (400 invalid_grant), an STS audience (400 invalid_grant) or an
// impersonation target at IAM (403 PERMISSION_DENIED). Tokens already
// issued stay valid, as with Google.
func (g *Google) Revoke(principal string) { g.RevokeWith(principal, 0) }

// RevokeWith is Revoke answering status instead (e.g. 401 or 403); 0 means
// the endpoint's usual status.
func (g *Google) RevokeWith(principal string, status int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.revoked[principal] = status
}

// handle counts the request, applies the configured faults, then routes it.
func (g *Google) handle(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	g.mu.Lock()
	echo := g.echo
	g.mu.Unlock()
	if echo != nil {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.counts["any"]++
		g.mu.Unlock()
		status, answer := echo(r, body)
		ct := "text/plain; charset=utf-8"
		if strings.HasPrefix(answer, "{") {
			ct = "application/json; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
		return
	}
	var serve http.HandlerFunc
	var kinds []string
	switch {
	case r.URL.Path == "/token":
		_ = r.ParseForm()
		kinds = []string{"token"}
		switch r.PostForm.Get("grant_type") {
		case jwtBearerGrant:
			kinds = append(kinds, "jwt")
		case "refresh_token":
			kinds = append(kinds, "refresh")
		}
		serve = g.serveToken
	case r.URL.Path == "/sts":
		_ = r.ParseForm()
		kinds = []string{"sts"}
		serve = g.serveSTS
	case strings.HasPrefix(r.URL.Path, "/iam/"):
		kinds = []string{"iam"}
		serve = g.serveIAM
	default:
		http.NotFound(w, r)
		return
	}
	g.mu.Lock()
	g.counts["any"]++
	for _, k := range kinds {
		g.counts[k]++
	}
	g.mu.Unlock()
	if g.fault(w, r) {
		return
	}
	serve(w, r)
}

// fault applies latency, hang, FailNext, redirect and malformed answers,
// in that order, and reports whether it answered the request.
func (g *Google) fault(w http.ResponseWriter, r *http.Request) bool {
	g.mu.Lock()
	latency, hang := g.latency, g.hang
	g.mu.Unlock()
	wait(r, g.done, latency)
	if hang {
		wait(r, g.done, -1)
	}

	g.mu.Lock()
	f := g.fail
	if g.fail.n > 0 {
		g.fail.n--
	}
	redirect, malformed := g.redirect, g.malformed
	g.mu.Unlock()

	switch {
	case f.n > 0:
		for k, vs := range f.header {
			w.Header()[k] = vs
		}
		if w.Header().Get("Content-Type") == "" {
			ct := "text/plain; charset=utf-8"
			if strings.HasPrefix(strings.TrimSpace(f.body), "{") {
				ct = "application/json; charset=utf-8"
			}
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, f.body)
	case redirect != "":
		http.Redirect(w, r, redirect, http.StatusTemporaryRedirect)
	case malformed:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>\n")
	default:
		return false
	}
	return true
}

// wait sleeps d (forever if d < 0) and drops the connection if the client
// goes away or the fake closes meanwhile, so Close never blocks on it.
func wait(r *http.Request, done <-chan struct{}, d time.Duration) {
	if d == 0 {
		return
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
	case <-r.Context().Done():
		panic(http.ErrAbortHandler)
	case <-done:
		panic(http.ErrAbortHandler)
	}
}

func (g *Google) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST required.")
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case jwtBearerGrant:
		g.grantJWT(w, r)
	case "refresh_token":
		g.grantRefresh(w, r)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
}

func (g *Google) grantJWT(w http.ResponseWriter, r *http.Request) {
	claims, err := g.verifyAssertion(r.PostForm.Get("assertion"))
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
		return
	}
	if g.rejectRevoked(w, http.StatusBadRequest, "Invalid JWT Signature.", claims.Iss) {
		return
	}
	g.answerToken(w, claims.Iss, claims.Scope, "jwt", "")
}

func (g *Google) grantRefresh(w http.ResponseWriter, r *http.Request) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: form-encoded before base64.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	rt := r.PostForm.Get("refresh_token")
	g.mu.Lock()
	c, ok := g.refresh[rt]
	g.mu.Unlock()
	switch {
	case rt == "" || !ok:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Bad Request")
		return
	case c.id != id || c.secret != secret:
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Unauthorized")
		return
	}
	if g.rejectRevoked(w, http.StatusBadRequest, "Token has been expired or revoked.", c.id, rt) {
		return
	}
	scope := r.PostForm.Get("scope")
	if scope == "" {
		scope = CloudPlatformScope
	}
	g.answerToken(w, c.id, scope, "refresh", scope)
}

func (g *Google) serveSTS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST required.")
		return
	}
	f := r.PostForm
	aud := f.Get("audience")
	g.mu.Lock()
	known := g.audiences[aud]
	subjects := g.subjects[aud]
	principal, trusted := subjects[f.Get("subject_token")]
	g.mu.Unlock()
	if principal == "" {
		principal = aud
	}
	switch {
	case f.Get("grant_type") != tokenExchangeGrant:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+f.Get("grant_type"))
	case !known:
		oauthError(w, http.StatusBadRequest, "invalid_target", "The target service indicated by the \"audience\" parameters is invalid.")
	case f.Get("subject_token") == "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "The subject_token is missing.")
	case !knownSubjectTokenType(f.Get("subject_token_type")):
		oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid subject_token_type: "+f.Get("subject_token_type"))
	case f.Get("requested_token_type") != accessTokenType:
		oauthError(w, http.StatusBadRequest, "invalid_request", "Invalid requested_token_type.")
	case !hasScope(f.Get("scope"), CloudPlatformScope):
		oauthError(w, http.StatusBadRequest, "invalid_scope", "The scope must include "+CloudPlatformScope+".")
	case subjects != nil && !trusted:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The ID Token could not be verified with the issuer's keys.")
	case subjects != nil && f.Get("subject_token_type") != jwtTokenType:
		oauthError(w, http.StatusBadRequest, "invalid_request", "The subject_token_type does not match the provider's type (OIDC: "+jwtTokenType+").")
	case subjects != nil && jwtExpired(f.Get("subject_token")):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "The ID Token has expired.")
	default:
		if g.rejectRevoked(w, http.StatusBadRequest, "The subject token is not valid for this audience.", aud, principal) {
			return
		}
		g.answerTokenUntil(w, principal, f.Get("scope"), "sts", "", jwtExpiry(f.Get("subject_token")))
	}
}

func (g *Google) serveIAM(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, iamPathPrefix)
	target, ok2 := strings.CutSuffix(rest, iamPathSuffix)
	if !ok || !ok2 || !strings.Contains(target, "@") || strings.Contains(target, "/") {
		googleError(w, http.StatusNotFound, "Method not found.")
		return
	}
	if r.Method != http.MethodPost {
		googleError(w, http.StatusMethodNotAllowed, "POST required.")
		return
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	source, ok := g.bearerPrincipal(bearer)
	if !ok {
		googleError(w, http.StatusUnauthorized, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	var body struct {
		Scope     []string `json:"scope"`
		Lifetime  string   `json:"lifetime"`
		Delegates []string `json:"delegates"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		googleError(w, http.StatusBadRequest, "Invalid JSON payload received: "+err.Error())
		return
	}
	scope := strings.Join(body.Scope, " ")
	if !hasScope(scope, CloudPlatformScope) {
		googleError(w, http.StatusBadRequest, "Scope must include "+CloudPlatformScope+".")
		return
	}
	life := maxIAMLifetime
	if body.Lifetime != "" {
		d, err := time.ParseDuration(body.Lifetime)
		if err != nil || !strings.HasSuffix(body.Lifetime, "s") || d <= 0 || d > maxIAMLifetime {
			googleError(w, http.StatusBadRequest, "Invalid lifetime "+body.Lifetime+": must be a positive number of seconds up to 3600s.")
			return
		}
		life = d
	}
	if g.rejectRevokedIAM(w, target) {
		return
	}
	g.mu.Lock()
	// expireTime carries whole seconds; round up so client and fake agree.
	exp := time.Now().Add(min(life, g.lifetime))
	if exp.Truncate(time.Second) != exp {
		exp = exp.Truncate(time.Second).Add(time.Second)
	}
	tok := g.issueLocked(target, scope, "iam", source, exp)
	g.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"accessToken": tok,
		"expireTime":  exp.UTC().Format(time.RFC3339),
	})
}

// rejectRevokedIAM answers IAM's error if target is revoked and reports
// whether it did.
func (g *Google) rejectRevokedIAM(w http.ResponseWriter, target string) bool {
	g.mu.Lock()
	status, revoked := g.revoked[target]
	g.mu.Unlock()
	if !revoked {
		return false
	}
	if status == 0 {
		status = http.StatusForbidden
	}
	googleError(w, status, "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")
	return true
}

// bearerPrincipal returns who a bearer token belongs to, if this fake or a
// trusted metadata fake issued it and it is unexpired.
func (g *Google) bearerPrincipal(tok string) (string, bool) {
	if tok == "" {
		return "", false
	}
	if is, ok := g.Issued(tok); ok {
		return is.Principal, true
	}
	g.mu.Lock()
	trusted := append([]*Metadata(nil), g.trusted...)
	g.mu.Unlock()
	for _, m := range trusted {
		if m.Issued(tok) {
			return m.email, true
		}
	}
	return "", false
}

// rejectRevoked answers the OAuth error for the first revoked principal
// and reports whether it did.
func (g *Google) rejectRevoked(w http.ResponseWriter, status int, desc string, principals ...string) bool {
	g.mu.Lock()
	st, revoked := 0, false
	for _, p := range principals {
		if st, revoked = g.revoked[p]; revoked {
			break
		}
	}
	g.mu.Unlock()
	if !revoked {
		return false
	}
	if st == 0 {
		st = status
	}
	code := "invalid_grant"
	switch st {
	case http.StatusUnauthorized:
		code = "invalid_client"
	case http.StatusForbidden:
		code = "access_denied"
	}
	oauthError(w, st, code, desc)
	return true
}

// answerToken issues a token and writes Google's token-endpoint answer.
func (g *Google) answerToken(w http.ResponseWriter, principal, scope, via, echoScope string) {
	g.answerTokenUntil(w, principal, scope, via, echoScope, time.Time{})
}

// answerTokenUntil is answerToken for a token that lives no longer than
// until (unless it is zero), as STS's tokens live no longer than the ID
// token exchanged for them.
func (g *Google) answerTokenUntil(w http.ResponseWriter, principal, scope, via, echoScope string, until time.Time) {
	g.mu.Lock()
	life := g.lifetime
	if !until.IsZero() {
		life = min(life, time.Until(until))
	}
	life = wholeSeconds(life)
	tok := g.issueLocked(principal, scope, via, "", time.Now().Add(life))
	g.mu.Unlock()
	resp := map[string]any{
		"access_token": tok,
		"expires_in":   int64(life / time.Second),
		"token_type":   "Bearer",
	}
	if via == "sts" {
		resp["issued_token_type"] = accessTokenType
	}
	if echoScope != "" {
		resp["scope"] = echoScope
	}
	writeJSON(w, http.StatusOK, resp)
}

// issueLocked records a fresh, never reused token; g.mu must be held.
func (g *Google) issueLocked(principal, scope, via, source string, exp time.Time) string {
	for {
		tok := newAccessToken()
		if _, dup := g.issued[tok]; dup {
			continue
		}
		g.issued[tok] = Issued{Principal: principal, Scope: scope, Expiry: exp, Via: via, Source: source}
		return tok
	}
}

// wholeSeconds rounds d up to whole seconds, at least one, as expires_in
// can only say whole seconds.
func wholeSeconds(d time.Duration) time.Duration {
	return time.Duration(max(1, int64((d+time.Second-1)/time.Second))) * time.Second
}

// newAccessToken returns a random token shaped like Google's.
func newAccessToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "ya29.fake-" + base64.RawURLEncoding.EncodeToString(b)
}

func knownSubjectTokenType(t string) bool {
	switch t {
	case jwtTokenType, "urn:ietf:params:oauth:token-type:id_token",
		"urn:ietf:params:oauth:token-type:saml2", "urn:ietf:params:aws:token-type:aws4_request":
		return true
	}
	return false
}

// hasScope reports whether the space-separated list holds want.
func hasScope(list, want string) bool {
	for _, s := range strings.Fields(list) {
		if s == want {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError writes an RFC 6749 error as Google's token endpoint and STS do.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// googleError writes an error as Google's JSON APIs (IAM) do.
func googleError(w http.ResponseWriter, status int, msg string) {
	st := map[int]string{
		http.StatusBadRequest:          "INVALID_ARGUMENT",
		http.StatusUnauthorized:        "UNAUTHENTICATED",
		http.StatusForbidden:           "PERMISSION_DENIED",
		http.StatusNotFound:            "NOT_FOUND",
		http.StatusTooManyRequests:     "RESOURCE_EXHAUSTED",
		http.StatusServiceUnavailable:  "UNAVAILABLE",
		http.StatusInternalServerError: "INTERNAL",
	}[status]
	if st == "" {
		st = "UNKNOWN"
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": status, "message": msg, "status": st}})
}
