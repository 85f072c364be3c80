package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google/externalaccount"
)

// This file is the keyless CI source (SPEC §3.3b): the job's own OIDC ID
// token, which the CI system hands it, exchanged at Google's STS for the
// workload identity provider DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER
// names. As in cosign's pkg/providers, each CI system is one row of
// ciSystems, tried in order.

// Environment variables of the keyless CI source.
const (
	// EnvWorkloadIdentityProvider turns the source on; the kubelet
	// provider reads it too, for its pod path.
	EnvWorkloadIdentityProvider = "DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER"
	// EnvIDToken is an ID token given directly (GitLab's id_tokens, any CI).
	EnvIDToken = "DOCKER_CREDENTIAL_GCP_ID_TOKEN"
	// EnvIDTokenFile names a file holding the ID token.
	EnvIDTokenFile = "DOCKER_CREDENTIAL_GCP_ID_TOKEN_FILE"
	// EnvIDTokenAudience overrides the audience of the ID tokens we request.
	EnvIDTokenAudience = "DOCKER_CREDENTIAL_GCP_ID_TOKEN_AUDIENCE"
	// EnvAzureServiceConnection names the Azure Pipelines service
	// connection whose ID token to request (else
	// AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, which Azure's CLI tasks set).
	EnvAzureServiceConnection = "DOCKER_CREDENTIAL_GCP_AZURE_SERVICE_CONNECTION_ID"
)

const (
	// idTokenMaxSize bounds an ID token file or answer: a few KiB in practice.
	idTokenMaxSize = 64 << 10
	// defaultBuildkiteEndpoint is the agent API when BUILDKITE_AGENT_ENDPOINT is unset.
	defaultBuildkiteEndpoint = "https://agent.buildkite.com/v3"
	// azureOIDCAPIVersion is the version of Azure DevOps' oidctoken API.
	azureOIDCAPIVersion = "7.1"
)

// IDTokenOrigin says where a CI job's ID token comes from, for the source
// and for doctor. What it exports never holds a token.
type IDTokenOrigin struct {
	// CI is the CI system, e.g. "GitHub Actions"; "" for a token given
	// directly outside any CI we know.
	CI string
	// From names the variables the token (or the request for it) comes from.
	From string
	// Audience is the audience we ask for; "" when the CI fixes it.
	Audience string
	// FixedAudience says, when the CI fixes the audience, which one the
	// provider must allow.
	FixedAudience string
	// Refreshable is true when a fresh ID token is fetched for every mint;
	// false for a token fixed for the job.
	Refreshable bool
	// Expiry is a fixed token's exp claim; zero for refreshable ones.
	Expiry time.Time

	job   string                                    // the job's identity for the cache key: variables and hashes, no secret
	fixed string                                    // a fixed token itself: secret
	fetch func(ctx context.Context) (string, error) // requests a fresh token
}

// ciSystem finds the ID token of one CI system: nil, nil when the job does
// not run there; an error when it does but its ID token cannot be had.
type ciSystem func(audience string) (*IDTokenOrigin, error)

// ciSystems is the order of SPEC §3.3b. GitLab comes last: its ID token
// is DOCKER_CREDENTIAL_GCP_ID_TOKEN (first row), so its row only explains
// what is missing.
var ciSystems = []ciSystem{directIDToken, githubActions, buildkite, azurePipelines, circleCI, bitbucket, gitlab}

// Keyless is what doctor shows of the keyless CI source.
type Keyless struct {
	// Provider is DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER; "" = off.
	Provider string
	// Origin is where the ID token comes from; nil when none was found.
	Origin *IDTokenOrigin
	// Err says why a detected CI's ID token cannot be had.
	Err error
}

// DetectKeyless reports the keyless CI source's state without sending
// any request.
func DetectKeyless() Keyless {
	k := Keyless{Provider: strings.TrimSpace(os.Getenv(EnvWorkloadIdentityProvider))}
	if k.Provider != "" {
		k.Origin, k.Err = findIDToken(k.Provider)
	}
	return k
}

// DefaultIDTokenAudience is the audience a workload identity pool
// provider allows by default, and what google-github-actions/auth asks
// for: the provider's name as an https URL.
func DefaultIDTokenAudience(provider string) string {
	return "https:" + provider
}

// findIDToken tries each CI system in order.
func findIDToken(provider string) (*IDTokenOrigin, error) {
	aud := strings.TrimSpace(os.Getenv(EnvIDTokenAudience))
	if aud == "" {
		aud = DefaultIDTokenAudience(provider)
	}
	for _, ci := range ciSystems {
		if o, err := ci(aud); o != nil || err != nil {
			return o, err
		}
	}
	return nil, nil
}

// ciSource is the keyless CI source.
type ciSource struct{ scopes []string }

func (ciSource) Name() string { return "keyless CI (" + EnvWorkloadIdentityProvider + ")" }

func (s ciSource) Find(ctx context.Context) (*Credential, error) {
	provider := strings.TrimSpace(os.Getenv(EnvWorkloadIdentityProvider))
	if provider == "" {
		return nil, NotFound("%s is not set", EnvWorkloadIdentityProvider)
	}
	origin, err := findIDToken(provider)
	if err != nil {
		return nil, err
	}
	if origin == nil {
		// A laptop, or the kubelet's node path: the chain goes on.
		return nil, NotFound("%s is set, but there is no %s or %s and no CI system (GitHub Actions, Buildkite, Azure Pipelines, CircleCI, Bitbucket, GitLab) in the environment", EnvWorkloadIdentityProvider, EnvIDToken, EnvIDTokenFile)
	}
	if err := CheckProvider(provider); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvWorkloadIdentityProvider, err)
	}
	sts, err := endpointFromEnv("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", defaultSTSEndpoint)
	if err != nil {
		return nil, err
	}
	return &Credential{
		Source:    fmt.Sprintf("%s exchanged at STS for %s", origin.describe(), provider),
		Kind:      typeExternalAccount,
		Identity:  "ci:" + hashHex(provider, sts, origin.CI, origin.From, origin.Audience, origin.job, scopeKey(s.scopes)),
		Cacheable: true,
		TokenSource: &ciTokenSource{
			ctx: ctx, origin: origin, provider: provider, sts: sts, scopes: s.scopes,
		},
	}, nil
}

// describe names the ID token for people, e.g. "GitHub Actions' ID token
// (ACTIONS_ID_TOKEN_REQUEST_URL)".
func (o *IDTokenOrigin) describe() string {
	if o.CI == "" {
		return "the ID token in " + o.From
	}
	possessive := "'s"
	if strings.HasSuffix(o.CI, "s") {
		possessive = "'"
	}
	return o.CI + possessive + " ID token (" + o.From + ")"
}

// ciTokenSource gets an ID token (a fresh one where the CI allows) and
// exchanges it at STS: one mint.
type ciTokenSource struct {
	ctx      context.Context
	origin   *IDTokenOrigin
	provider string
	sts      string
	scopes   []string
}

func (s *ciTokenSource) Token() (*oauth2.Token, error) {
	idToken := s.origin.fixed
	if s.origin.fetch != nil {
		var err error
		if idToken, err = s.origin.fetch(s.ctx); err != nil {
			return nil, err
		}
	}
	hint := fmt.Sprintf("check that %s's issuer is the one the provider trusts, that its attribute condition admits this job", s.origin.describe())
	if s.origin.Audience != "" {
		hint += ", and that the provider allows the audience " + s.origin.Audience
	} else {
		hint += ", and that the provider allows " + s.origin.FixedAudience
	}
	ts := &stsTokenSource{
		secret: idToken,
		hint:   hint,
		build: func() (oauth2.TokenSource, error) {
			return externalaccount.NewTokenSource(withHTTPClient(s.ctx), externalaccount.Config{
				Audience:             s.provider,
				SubjectTokenType:     subjectTokenTypeJWT,
				TokenURL:             s.sts,
				Scopes:               s.scopes,
				SubjectTokenSupplier: subjectToken(idToken),
			})
		},
	}
	return ts.Token()
}

// directIDToken is DOCKER_CREDENTIAL_GCP_ID_TOKEN or _FILE: any CI (and
// GitLab's recipe: id_tokens: DOCKER_CREDENTIAL_GCP_ID_TOKEN: aud: ...).
func directIDToken(string) (*IDTokenOrigin, error) {
	ci := ""
	if os.Getenv("GITLAB_CI") == "true" {
		ci = "GitLab CI"
	}
	if tok := strings.TrimSpace(os.Getenv(EnvIDToken)); tok != "" {
		return fixedIDToken(ci, EnvIDToken, tok, "the ID token's aud claim (GitLab: id_tokens' aud)")
	}
	path := strings.TrimSpace(os.Getenv(EnvIDTokenFile))
	if path == "" {
		return nil, nil
	}
	data, err := readIDTokenFile(path)
	if err != nil {
		return nil, err
	}
	return fixedIDToken(ci, EnvIDTokenFile+" ("+path+")", string(data), "the ID token's aud claim")
}

// readIDTokenFile reads the file EnvIDTokenFile names as a credential
// file is read (bounded, never a FIFO): someone named it, so a missing one
// is an error.
func readIDTokenFile(path string) ([]byte, error) {
	data, err := readCredentialFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s names %s, which does not exist: point it at the file holding the job's ID token, or unset it", EnvIDTokenFile, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvIDTokenFile, err)
	}
	return data, nil
}

// githubActions is GitHub Actions' ID-token endpoint: GET the request URL
// with &audience=AUD, "Authorization: bearer" the request token, answer
// {"value": JWT}. Both variables exist only with `permissions: id-token:
// write`. See GitHub's "About security hardening with OpenID Connect"
// (docs.github.com, "Methods for requesting the OIDC token") and cosign's
// pkg/providers/github/github.go, which does the same request.
func githubActions(aud string) (*IDTokenOrigin, error) {
	reqURL := strings.TrimSpace(os.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL"))
	reqToken := strings.TrimSpace(os.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
	if reqURL == "" || reqToken == "" {
		if os.Getenv("GITHUB_ACTIONS") == "true" {
			return nil, errors.New("GitHub Actions gives this job no ID token (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set): add `permissions: id-token: write` to the workflow or the job")
		}
		return nil, nil
	}
	u, err := ciURL("ACTIONS_ID_TOKEN_REQUEST_URL", reqURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("audience", aud)
	u.RawQuery = q.Encode()
	target := u.String()
	return &IDTokenOrigin{
		CI:          "GitHub Actions",
		From:        "ACTIONS_ID_TOKEN_REQUEST_URL",
		Audience:    aud,
		Refreshable: true,
		job:         jobIdentity(reqToken, "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB"),
		fetch: func(ctx context.Context) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			if err != nil {
				return "", err
			}
			req.Header.Set("Authorization", "bearer "+reqToken)
			req.Header.Set("Accept", "application/json")
			var answer struct {
				Value string `json:"value"`
			}
			return requestIDToken(req, "GitHub Actions", reqToken, "check that the job has `permissions: id-token: write`", &answer, &answer.Value)
		},
	}, nil
}

// buildkite is the Buildkite agent's OIDC endpoint, what `buildkite-agent
// oidc request-token` calls: POST {BUILDKITE_AGENT_ENDPOINT}/jobs/{job}/oidc/tokens
// with {"audience": AUD}, "Authorization: Token" the agent's access token,
// answer {"token": JWT} (buildkite/agent api/oidc.go and api/auth.go).
func buildkite(aud string) (*IDTokenOrigin, error) {
	access := strings.TrimSpace(os.Getenv("BUILDKITE_AGENT_ACCESS_TOKEN"))
	job := strings.TrimSpace(os.Getenv("BUILDKITE_JOB_ID"))
	if access == "" || job == "" {
		if os.Getenv("BUILDKITE") == "true" {
			return nil, errors.New("no ID token from Buildkite: the job has no agent access (BUILDKITE_AGENT_ACCESS_TOKEN and BUILDKITE_JOB_ID must both be set): run the helper in the job's own environment, e.g. pass them into a docker plugin's container with its `propagate-environment` or `environment` options")
		}
		return nil, nil
	}
	endpoint, err := endpointFromEnv("BUILDKITE_AGENT_ENDPOINT", defaultBuildkiteEndpoint)
	if err != nil {
		return nil, err
	}
	target := endpoint + "/jobs/" + url.PathEscape(job) + "/oidc/tokens"
	return &IDTokenOrigin{
		CI:          "Buildkite",
		From:        "BUILDKITE_AGENT_ENDPOINT",
		Audience:    aud,
		Refreshable: true,
		job:         jobIdentity(access, "BUILDKITE_JOB_ID"),
		fetch: func(ctx context.Context) (string, error) {
			body, err := json.Marshal(map[string]string{"audience": aud})
			if err != nil {
				return "", err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
			if err != nil {
				return "", err
			}
			req.Header.Set("Authorization", "Token "+access)
			req.Header.Set("Content-Type", "application/json")
			var answer struct {
				Token string `json:"token"`
			}
			return requestIDToken(req, "Buildkite", access, "check that the agent is v3.41 or later and that the job is still running", &answer, &answer.Token)
		},
	}, nil
}

// azurePipelines is Azure DevOps' oidctoken API: POST
// {SYSTEM_OIDCREQUESTURI}?api-version=7.1&serviceConnectionId=ID with
// "Authorization: Bearer" $(System.AccessToken), answer {"oidcToken": JWT}
// (Azure DevOps sprint 240 release notes, "Pipelines and tasks populate
// variables to customize Workload identity federation authentication";
// azure-sdk's AzurePipelinesCredential). Its audience is fixed:
// api://AzureADTokenExchange.
func azurePipelines(string) (*IDTokenOrigin, error) {
	reqURL := strings.TrimSpace(os.Getenv("SYSTEM_OIDCREQUESTURI"))
	access := strings.TrimSpace(os.Getenv("SYSTEM_ACCESSTOKEN"))
	if os.Getenv("TF_BUILD") == "" && reqURL == "" {
		return nil, nil
	}
	conn := strings.TrimSpace(os.Getenv(EnvAzureServiceConnection))
	if conn == "" {
		conn = strings.TrimSpace(os.Getenv("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"))
	}
	switch {
	case reqURL == "":
		return nil, errors.New("no ID token from Azure Pipelines: the job has no SYSTEM_OIDCREQUESTURI: use an agent and Azure DevOps recent enough to have it")
	case access == "":
		return nil, errors.New("no ID token from Azure Pipelines: SYSTEM_ACCESSTOKEN is not set: map it into the step with `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`")
	case conn == "":
		return nil, fmt.Errorf("no ID token from Azure Pipelines: no service connection to request one for: set %s to the ID of the service connection the provider trusts (or run in an AzureCLI@2 task, which sets AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)", EnvAzureServiceConnection)
	}
	u, err := ciURL("SYSTEM_OIDCREQUESTURI", reqURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("api-version", azureOIDCAPIVersion)
	q.Set("serviceConnectionId", conn)
	u.RawQuery = q.Encode()
	target := u.String()
	return &IDTokenOrigin{
		CI:            "Azure Pipelines",
		From:          "SYSTEM_OIDCREQUESTURI",
		FixedAudience: "api://AzureADTokenExchange",
		Refreshable:   true,
		job:           jobIdentity(access, "SYSTEM_TEAMPROJECTID", "BUILD_BUILDID", "SYSTEM_JOBID") + "/" + conn,
		fetch: func(ctx context.Context) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader("{}"))
			if err != nil {
				return "", err
			}
			req.Header.Set("Authorization", "Bearer "+access)
			req.Header.Set("Content-Type", "application/json")
			var answer struct {
				OIDCToken string `json:"oidcToken"`
			}
			return requestIDToken(req, "Azure Pipelines", access, "check that the service connection "+conn+" exists, uses workload identity federation and that this pipeline may use it", &answer, &answer.OIDCToken)
		},
	}, nil
}

// circleCI is CIRCLE_OIDC_TOKEN_V2, else CIRCLE_OIDC_TOKEN: fixed for the
// job, an hour long, audience the organization ID (CircleCI's "Using
// OpenID Connect tokens in jobs").
func circleCI(string) (*IDTokenOrigin, error) {
	for _, name := range []string{"CIRCLE_OIDC_TOKEN_V2", "CIRCLE_OIDC_TOKEN"} {
		if tok := strings.TrimSpace(os.Getenv(name)); tok != "" {
			return fixedIDToken("CircleCI", name, tok, "your CircleCI organization ID")
		}
	}
	if os.Getenv("CIRCLECI") == "true" {
		return nil, errors.New("CircleCI gives this job no ID token (CIRCLE_OIDC_TOKEN_V2 and CIRCLE_OIDC_TOKEN are not set): CircleCI sets them only in jobs that use a context; add one to the job in your workflow")
	}
	return nil, nil
}

// bitbucket is BITBUCKET_STEP_OIDC_TOKEN, present in steps with `oidc:
// true` (Atlassian's "Integrate Pipelines with resource servers using
// OIDC"); fixed for the step.
func bitbucket(string) (*IDTokenOrigin, error) {
	if tok := strings.TrimSpace(os.Getenv("BITBUCKET_STEP_OIDC_TOKEN")); tok != "" {
		return fixedIDToken("Bitbucket Pipelines", "BITBUCKET_STEP_OIDC_TOKEN", tok, "the audience on the repository's OpenID Connect settings page (or one set with the step's oidc: audiences)")
	}
	if os.Getenv("BITBUCKET_BUILD_NUMBER") != "" {
		return nil, errors.New("no ID token from Bitbucket Pipelines: BITBUCKET_STEP_OIDC_TOKEN is not set: add `oidc: true` to the step")
	}
	return nil, nil
}

// gitlab explains what a GitLab job misses: its ID token comes through
// id_tokens, as DOCKER_CREDENTIAL_GCP_ID_TOKEN (GitLab's "OpenID Connect
// (OIDC) Authentication Using ID Tokens").
func gitlab(aud string) (*IDTokenOrigin, error) {
	if os.Getenv("GITLAB_CI") != "true" {
		return nil, nil
	}
	return nil, fmt.Errorf("GitLab CI gives this job no ID token: add `id_tokens: %s: aud: %s` to the job", EnvIDToken, aud)
}

// ciURL checks a URL a CI system gave us: it is sent the job's request
// token, so it must be https, or http to a loopback address.
func ciURL(name, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("%s is not an http(s) URL", name)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%s must use https unless it is a loopback address: it is sent the job's token", name)
	}
	return u, nil
}

// jobIdentity keys the cache to one job: the CI's job variables and a
// hash of its request token, which lasts only the job, so a later job on a
// reused runner never gets an earlier job's token.
func jobIdentity(requestToken string, vars ...string) string {
	parts := []string{hashHex(requestToken)}
	for _, v := range vars {
		parts = append(parts, v+"="+os.Getenv(v))
	}
	return strings.Join(parts, ",")
}

// fixedIDToken is an ID token fixed for the job, read as is: the cache key
// is its hash, and an expired one is an error naming where it came from.
func fixedIDToken(ci, from, tok, fixedAudience string) (*IDTokenOrigin, error) {
	tok = strings.TrimSpace(tok)
	o := &IDTokenOrigin{CI: ci, From: from, FixedAudience: fixedAudience, job: hashHex(tok), fixed: tok}
	claims, err := idTokenClaims(tok)
	if err != nil {
		return nil, fmt.Errorf("%s %w", o.describe(), err)
	}
	if claims.Exp != 0 {
		o.Expiry = time.Unix(claims.Exp, 0)
		if !time.Now().Before(o.Expiry) {
			return nil, fmt.Errorf("%s expired at %s: %s", o.describe(), o.Expiry.UTC().Format(time.RFC3339), expiredAdvice(ci))
		}
	}
	return o, nil
}

// expiredAdvice says what to do about an expired fixed ID token.
func expiredAdvice(ci string) string {
	advice := "give the job a fresh one, or use DOCKER_CREDENTIAL_GCP_IMPERSONATE so that one exchange yields a 1-hour token"
	switch ci {
	case "CircleCI":
		advice = "CircleCI's ID tokens last an hour from the job's start; rerun the job, or split it"
	case "Bitbucket Pipelines":
		advice = "rerun the step, or split it"
	}
	return advice
}

// idClaims are the claims of an ID token we read (never verify: STS does).
type idClaims struct {
	Exp int64 `json:"exp"`
}

// idTokenClaims reads an ID token's claims. Errors describe the token,
// never quote it.
func idTokenClaims(tok string) (idClaims, error) {
	var c idClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("is not a JWT (want three dot-separated parts, got %d)", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return c, errors.New("is not a JWT: its payload is not base64url")
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, errors.New("is not a JWT: its payload is not a JSON object of claims")
	}
	return c, nil
}

// requestIDToken sends req to a CI's ID-token endpoint and returns the
// token found in field once the answer is decoded into answer. Errors name
// the CI and the next step, and never quote the request token or an ID
// token; a 4xx is a refusal, which the cache does not paper over.
func requestIDToken(req *http.Request, ci, requestToken, advice string, answer any, field *string) (string, error) {
	secrets := []string{requestToken}
	resp, err := tokenHTTPClient.Do(req)
	if err != nil {
		if explained := answerOrReachError(err); explained != err {
			return "", fmt.Errorf("%s's ID-token endpoint: %w", ci, explained)
		}
		return "", fmt.Errorf("cannot reach %s's ID-token endpoint: %s", ci, oneLine(redact(err.Error(), secrets)))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, idTokenMaxSize))
	if err != nil {
		return "", fmt.Errorf("reading %s's ID-token answer: %w", ci, err)
	}
	if resp.StatusCode != http.StatusOK {
		detail := answerDetail([]byte(redact(string(body), secrets)))
		if !refusal(resp.StatusCode) {
			return "", &statusError{status: resp.StatusCode, msg: failingAnswer(ci+"'s ID-token endpoint", resp.StatusCode, detail)}
		}
		msg := fmt.Sprintf("%s refused the ID token request: HTTP %d", ci, resp.StatusCode)
		if detail != "" {
			msg += ": " + detail
		}
		return "", &statusError{status: resp.StatusCode, msg: msg + ": " + advice}
	}
	if err := json.Unmarshal(body, answer); err != nil {
		return "", fmt.Errorf("unreadable answer from %s's ID-token endpoint: %v", ci, jsonProblem(err, body))
	}
	tok := strings.TrimSpace(*field)
	if tok == "" {
		return "", fmt.Errorf("%s's ID-token endpoint answered without a token", ci)
	}
	claims, err := idTokenClaims(tok)
	if err != nil {
		return "", fmt.Errorf("%s's ID-token endpoint answered with a token that %w", ci, err)
	}
	if claims.Exp != 0 && !time.Now().Before(time.Unix(claims.Exp, 0)) {
		return "", fmt.Errorf("%s's ID-token endpoint answered with a token that expired at %s: check the runner's clock", ci, time.Unix(claims.Exp, 0).UTC().Format(time.RFC3339))
	}
	return tok, nil
}
