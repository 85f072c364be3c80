package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google/externalaccount"
)

// This file is the kubelet's pod identity (KEP-4412): the pod's
// Kubernetes service-account token, exchanged through workload identity
// federation at Google's STS.

// defaultSTSEndpoint is Google's token-exchange endpoint.
const defaultSTSEndpoint = "https://sts.googleapis.com/v1/token"

// subjectTokenTypeJWT is the STS subject token type of a Kubernetes
// service-account token (an OIDC JWT).
const subjectTokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"

// providerPattern is a workload identity pool provider's full resource name.
var providerPattern = lazyRegexp(`^//iam\.googleapis\.com/(projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]+)/providers/[a-z0-9-]+$`)

// PodExchange is what the kubelet tells us about a pod, and where to
// exchange it.
type PodExchange struct {
	// Provider is the workload identity pool provider, e.g.
	// //iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/X.
	Provider string
	// SubjectToken is the pod's service-account token. It is secret: it
	// never appears in an error.
	SubjectToken string
	// Scopes to request; nil means cloud-platform.
	Scopes []string
}

// CheckProvider checks the shape of a workload identity pool provider name.
func CheckProvider(provider string) error {
	if !providerPattern().MatchString(provider) {
		return fmt.Errorf("workload identity provider %q is not //iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER", provider)
	}
	return nil
}

// PodCredential is the credential of the pod whose service-account token
// ex carries: tokens come from STS's token exchange for ex.Provider. It
// checks the token's shape and expiry without sending it anywhere. The
// token's claims are read, never verified (STS does that), so the cache
// key holds a hash of the whole token besides the service account: a token
// that copies another's claims is a new key and goes to STS, which refuses
// it, instead of being served the other's cached Google token. Each token
// is exchanged once; its repeats are served from the cache.
func PodCredential(ctx context.Context, ex PodExchange) (*Credential, error) {
	if err := CheckProvider(ex.Provider); err != nil {
		return nil, err
	}
	sa, err := parseServiceAccountToken(ex.SubjectToken, time.Now())
	if err != nil {
		return nil, err
	}
	sts, err := endpointFromEnv("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", defaultSTSEndpoint)
	if err != nil {
		return nil, err
	}
	scopes := scopesOrDefault(ex.Scopes)
	pool := providerPattern().FindStringSubmatch(ex.Provider)[1]
	source := fmt.Sprintf("the pod's service-account token (%s) exchanged at STS for %s", sa.name(), ex.Provider)
	ts := &stsTokenSource{
		secret: ex.SubjectToken,
		hint:   "check that the pool's provider trusts the cluster's issuer and JWKS, that its attribute condition admits this service account, and that the kubelet's serviceAccountTokenAudience is one the provider accepts",
		build: func() (oauth2.TokenSource, error) {
			return externalaccount.NewTokenSource(withHTTPClient(ctx), externalaccount.Config{
				Audience:             ex.Provider,
				SubjectTokenType:     subjectTokenTypeJWT,
				TokenURL:             sts,
				Scopes:               scopes,
				SubjectTokenSupplier: subjectToken(ex.SubjectToken),
			})
		},
	}
	return &Credential{
		Source:      source,
		Kind:        typeExternalAccount,
		Principal:   ShownPrincipal("principal://iam.googleapis.com/" + pool + "/subject/" + sa.Sub),
		Identity:    "pod:" + hashHex(ex.Provider, sts, sa.Iss, sa.Sub, sa.uid(), scopeKey(scopes), hashHex(ex.SubjectToken)),
		Cacheable:   true,
		TokenSource: ts,
	}, nil
}

// subjectToken hands x/oauth2 the kubelet's token.
type subjectToken string

func (s subjectToken) SubjectToken(context.Context, externalaccount.SupplierOptions) (string, error) {
	return string(s), nil
}

// stsTokenSource explains STS's refusals and keeps the subject token out of them.
type stsTokenSource struct {
	secret string
	hint   string // what to check when STS refuses
	build  func() (oauth2.TokenSource, error)
}

// stsStatus finds the HTTP status in x/oauth2's STS error text.
var stsStatus = lazyRegexp(`(?s)status code ([0-9]{3}): (.*)`)

func (s *stsTokenSource) Token() (*oauth2.Token, error) {
	ts, err := s.build()
	if err == nil {
		var tok *oauth2.Token
		if tok, err = ts.Token(); err == nil {
			return tok, nil
		}
	}
	// Redact before oneLine shortens it: a cut token would escape redact.
	msg := redact(err.Error(), []string{s.secret})
	m := stsStatus().FindStringSubmatch(msg)
	if m == nil {
		if explained := explainAnswer(msg); explained != "" {
			return nil, &mintError{msg: "the token exchange failed: " + explained, err: err}
		}
		return nil, &mintError{msg: "the token exchange failed: " + oneLine(msg), err: err}
	}
	status, _ := strconv.Atoi(m[1])
	detail := answerDetail([]byte(m[2]))
	if !refusal(status) {
		return nil, &statusError{status: status, msg: failingAnswer("STS", status, detail)}
	}
	msg = fmt.Sprintf("STS refused the token exchange: HTTP %d: %s", status, detail)
	if status >= 400 {
		msg += ": " + s.hint
	}
	return nil, &statusError{status: status, msg: msg}
}

// serviceAccountClaims are the claims of a Kubernetes service-account
// token that we read (never verify: STS does).
type serviceAccountClaims struct {
	Iss        string `json:"iss"`
	Sub        string `json:"sub"`
	Exp        int64  `json:"exp"`
	Kubernetes struct {
		ServiceAccount struct {
			UID string `json:"uid"`
		} `json:"serviceaccount"`
	} `json:"kubernetes.io"`
}

func (c serviceAccountClaims) name() string {
	ns, name, _ := strings.Cut(strings.TrimPrefix(c.Sub, "system:serviceaccount:"), ":")
	return ns + "/" + name
}

func (c serviceAccountClaims) uid() string { return c.Kubernetes.ServiceAccount.UID }

// parseServiceAccountToken reads the claims of a Kubernetes
// service-account token. Errors describe it, never quote it.
func parseServiceAccountToken(tok string, now time.Time) (serviceAccountClaims, error) {
	var c serviceAccountClaims
	const what = "the serviceAccountToken in the CredentialProviderRequest"
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("%s is not a JWT (want three dot-separated parts, got %d)", what, len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return c, fmt.Errorf("%s is not a JWT: its payload is not base64url", what)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, fmt.Errorf("%s is not a JWT: its payload is not a JSON object of claims", what)
	}
	rest, ok := strings.CutPrefix(c.Sub, "system:serviceaccount:")
	if ns, name, ok2 := strings.Cut(rest, ":"); !ok || !ok2 || ns == "" || name == "" || strings.Contains(name, ":") {
		return c, fmt.Errorf("%s is not a Kubernetes service-account token: its sub is not system:serviceaccount:NAMESPACE:NAME", what)
	}
	if c.Iss == "" {
		return c, fmt.Errorf("%s has no iss claim", what)
	}
	if c.Exp != 0 && !now.Before(time.Unix(c.Exp, 0)) {
		return c, fmt.Errorf("%s for %s expired at %s", what, c.name(), time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}
