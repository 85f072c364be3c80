package token

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// defaultIAMEndpoint serves generateAccessToken.
const defaultIAMEndpoint = "https://iamcredentials.googleapis.com"

// ImpersonationTarget is the service account named by
// DOCKER_CREDENTIAL_GCP_IMPERSONATE, or "" when every credential is used as
// itself.
func ImpersonationTarget() string {
	return strings.TrimSpace(os.Getenv("DOCKER_CREDENTIAL_GCP_IMPERSONATE"))
}

// iamEndpoint is DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT, for Private Service
// Connect endpoints (and tests), else defaultIAMEndpoint. It must be https
// unless it is a loopback address, since it receives a bearer token.
func iamEndpoint() (string, error) {
	return endpointFromEnv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", defaultIAMEndpoint)
}

// Impersonate wraps cred so that its tokens are exchanged, through the IAM
// Credentials API's generateAccessToken, for tokens of the service account
// target. cred's principal needs roles/iam.serviceAccountTokenCreator on target.
func Impersonate(ctx context.Context, cred *Credential, target string, scopes []string) (*Credential, error) {
	if cred == nil {
		return nil, errors.New("impersonation needs a base credential")
	}
	target = strings.TrimSpace(target)
	if target == "" {
		return nil, errors.New("impersonation needs a target service account")
	}
	endpoint, err := iamEndpoint()
	if err != nil {
		return nil, err
	}
	scopes = scopesOrDefault(scopes)
	source := cred.Source + " impersonating " + target
	ts := &impersonationTokenSource{
		ctx:           ctx,
		base:          cred.TokenSource,
		url:           endpoint + "/v1/projects/-/serviceAccounts/" + url.PathEscape(target) + ":generateAccessToken",
		target:        target,
		basePrincipal: cred.Principal,
		scopes:        scopes,
	}
	return &Credential{
		Source:      source,
		Kind:        "impersonated:" + cred.Kind,
		Principal:   ShownPrincipal(target),
		Identity:    "impersonated:" + hashHex(cred.Identity, target, scopeKey(scopes)),
		Cacheable:   true,
		TokenSource: oauth2.ReuseTokenSource(nil, ts),
	}, nil
}

// impersonationTokenSource calls generateAccessToken with the base
// credential's token.
type impersonationTokenSource struct {
	ctx           context.Context
	base          oauth2.TokenSource
	url           string
	target        string
	basePrincipal string
	scopes        []string
}

func (s *impersonationTokenSource) Token() (*oauth2.Token, error) {
	baseTok, err := s.base.Token()
	if err != nil {
		// The caller names the source, "... impersonating TARGET", already.
		return nil, fmt.Errorf("getting the base token: %w", err)
	}
	tok, err := s.generate(baseTok)
	if err != nil {
		return nil, &mintError{msg: redact(err.Error(), []string{baseTok.AccessToken}), err: err}
	}
	return tok, nil
}

func (s *impersonationTokenSource) generate(baseTok *oauth2.Token) (*oauth2.Token, error) {
	reqBody, err := json.Marshal(map[string]any{"scope": s.scopes, "lifetime": "3600s"})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.url, bytes.NewReader(reqBody))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	baseTok.SetAuthHeader(req)
	resp, err := tokenHTTPClient.Do(req)
	if err != nil {
		if explained := answerOrReachError(err); explained != err {
			return nil, fmt.Errorf("IAM: %w", explained)
		}
		return nil, fmt.Errorf("asking IAM: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("reading IAM's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// The answer may echo our request, bearer token and all: redact
		// before refusal quotes (and shortens) it.
		return nil, s.refusal(resp.StatusCode, []byte(redact(string(body), []string{baseTok.AccessToken})))
	}
	var r struct {
		AccessToken string `json:"accessToken"`
		ExpireTime  string `json:"expireTime"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("unreadable answer from IAM: %v", jsonProblem(err, body))
	}
	if r.AccessToken == "" {
		return nil, errors.New("IAM's answer has no accessToken")
	}
	expiry, err := time.Parse(time.RFC3339, r.ExpireTime)
	if err != nil {
		return nil, fmt.Errorf("IAM's answer has no valid expireTime")
	}
	return &oauth2.Token{AccessToken: r.AccessToken, TokenType: "Bearer", Expiry: expiry}, nil
}

// refusal explains a non-200 answer from generateAccessToken.
func (s *impersonationTokenSource) refusal(status int, body []byte) error {
	detail := answerDetail(body)
	if !refusal(status) {
		return &statusError{status: status, msg: failingAnswer("IAM", status, detail)}
	}
	msg := fmt.Sprintf("IAM refused to impersonate %s: HTTP %d", s.target, status)
	if detail != "" {
		msg += ": " + detail
	}
	who := s.basePrincipal
	if who == "" {
		who = "the base credential's principal"
	}
	switch {
	case status == http.StatusUnauthorized:
		msg += ": IAM did not accept the base credential's token"
	case status == http.StatusForbidden:
		msg += fmt.Sprintf(": %s needs roles/iam.serviceAccountTokenCreator on %s", who, s.target)
	case status == http.StatusNotFound:
		msg += fmt.Sprintf(": check that the service account %s exists", s.target)
	}
	return &statusError{status: status, msg: msg}
}
