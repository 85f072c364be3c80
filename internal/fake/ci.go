package fake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// CI systems whose ID-token endpoint CIIDTokens can fake.
const (
	// GitHubActions: GET ?audience=AUD with "Authorization: bearer TOKEN",
	// answer {"value": JWT}.
	GitHubActions = "github"
	// Buildkite: POST /v3/jobs/{job}/oidc/tokens {"audience": AUD} with
	// "Authorization: Token TOKEN", answer {"token": JWT}.
	Buildkite = "buildkite"
	// AzurePipelines: POST ?api-version=7.1&serviceConnectionId=ID with
	// "Authorization: Bearer TOKEN", answer {"oidcToken": JWT}.
	AzurePipelines = "azure"
)

// Paths and fixed values of the CI fakes.
const (
	githubIDTokenPath = "/_apis/pipelines/1/runs/7/idtoken"
	azureIDTokenPath  = "/org/project/_apis/distributedtask/hubs/build/plans/plan/jobs/job/oidctoken"
	// AzureAudience is the audience Azure Pipelines' ID tokens always carry.
	AzureAudience = "api://AzureADTokenExchange"
	// AzureServiceConnection is the service connection ID CIIDTokens for
	// Azure Pipelines issues tokens for.
	AzureServiceConnection = "4d3c2b1a-0000-4000-8000-00000000abcd"
	// BuildkiteJob is the job ID CIIDTokens for Buildkite serves.
	BuildkiteJob = "01890000-aaaa-4bbb-8ccc-000000000001"
)

// CIIDTokens fakes one CI system's ID-token endpoint on a loopback
// httptest server: it checks the job's request token and the audience as
// the CI does, issues JWTs that the fake STS of Google trusts (see
// TrustedBy), and can refuse or answer slowly.
type CIIDTokens struct {
	// URL is the server's base address, http://127.0.0.1:port.
	URL string

	kind         string
	requestToken string
	srv          *httptest.Server
	done         chan struct{}

	mu        sync.Mutex
	count     int
	audiences []string
	issued    []string
	google    *Google
	provider  string
	lifetime  time.Duration
	latency   time.Duration
	refuse    int
	refusal   string
}

// NewCIIDTokens starts a fake ID-token endpoint of kind (GitHubActions,
// Buildkite or AzurePipelines) that accepts requestToken, the job's
// secret; t.Cleanup closes it, releasing any request held by SetLatency.
// Its ID tokens last 5 minutes unless SetLifetime says otherwise.
func NewCIIDTokens(t testing.TB, kind, requestToken string) *CIIDTokens {
	t.Helper()
	switch kind {
	case GitHubActions, Buildkite, AzurePipelines:
	default:
		t.Fatalf("fake.NewCIIDTokens: unknown CI %q", kind)
	}
	c := &CIIDTokens{kind: kind, requestToken: requestToken, done: make(chan struct{}), lifetime: 5 * time.Minute}
	c.srv = httptest.NewServer(http.HandlerFunc(c.handle))
	c.URL = c.srv.URL
	t.Cleanup(func() {
		close(c.done)
		c.srv.Close()
	})
	return c
}

// Env is the environment a job of this CI sees, as KEY=VALUE: the
// endpoint, the request token and the job's identity (job names the job,
// so that two jobs differ).
func (c *CIIDTokens) Env(job string) []string {
	switch c.kind {
	case GitHubActions:
		return []string{
			"GITHUB_ACTIONS=true",
			"ACTIONS_ID_TOKEN_REQUEST_URL=" + c.URL + githubIDTokenPath + "?api-version=2.0",
			"ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + c.requestToken,
			"GITHUB_REPOSITORY=acme/app",
			"GITHUB_RUN_ID=4242",
			"GITHUB_RUN_ATTEMPT=1",
			"GITHUB_JOB=" + job,
		}
	case Buildkite:
		return []string{
			"BUILDKITE=true",
			"BUILDKITE_AGENT_ENDPOINT=" + c.URL + "/v3",
			"BUILDKITE_AGENT_ACCESS_TOKEN=" + c.requestToken,
			"BUILDKITE_JOB_ID=" + BuildkiteJob,
			"BUILDKITE_STEP_KEY=" + job,
		}
	default:
		return []string{
			"TF_BUILD=True",
			"SYSTEM_OIDCREQUESTURI=" + c.URL + azureIDTokenPath,
			"SYSTEM_ACCESSTOKEN=" + c.requestToken,
			"AZURESUBSCRIPTION_SERVICE_CONNECTION_ID=" + AzureServiceConnection,
			"SYSTEM_TEAMPROJECTID=proj",
			"BUILD_BUILDID=99",
			"SYSTEM_JOBID=" + job,
		}
	}
}

// TrustedBy makes g's STS accept, for provider, every ID token this fake
// issues from now on, as Google accepts tokens its provider can verify.
func (c *CIIDTokens) TrustedBy(g *Google, provider string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.google, c.provider = g, provider
}

// Count is how many requests reached the endpoint, refused ones included.
func (c *CIIDTokens) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// Audiences are the audiences asked for, one per request, in order.
func (c *CIIDTokens) Audiences() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.audiences...)
}

// Issued are the ID tokens handed out, in order, so tests can check that
// none of them leaks.
func (c *CIIDTokens) Issued() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.issued...)
}

// SetLifetime sets how long ID tokens issued from now on last.
func (c *CIIDTokens) SetLifetime(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lifetime = d
}

// SetLatency delays every answer by d.
func (c *CIIDTokens) SetLatency(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latency = d
}

// Refuse makes every request answer status with body; 0 stops it.
func (c *CIIDTokens) Refuse(status int, body string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse, c.refusal = status, body
}

func (c *CIIDTokens) handle(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.count++
	latency, refuse, refusal := c.latency, c.refuse, c.refusal
	c.mu.Unlock()
	if latency > 0 {
		wait(r, c.done, latency)
	}
	if refuse != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(refuse)
		_, _ = w.Write([]byte(refusal))
		return
	}
	aud, field, ok := c.check(w, r)
	if !ok {
		return
	}
	tok := c.issue(aud)
	writeJSON(w, http.StatusOK, map[string]string{field: tok})
}

// check verifies a request as the CI does and returns the audience to
// issue for and the answer's field.
func (c *CIIDTokens) check(w http.ResponseWriter, r *http.Request) (aud, field string, ok bool) {
	auth := r.Header.Get("Authorization")
	switch c.kind {
	case GitHubActions:
		aud, field = r.URL.Query().Get("audience"), "value"
		switch {
		case r.Method != http.MethodGet || r.URL.Path != githubIDTokenPath:
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		case !strings.EqualFold(auth, "bearer "+c.requestToken):
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		case r.URL.Query().Get("api-version") == "":
			http.Error(w, `{"message":"api-version is required"}`, http.StatusBadRequest)
		case aud == "":
			http.Error(w, `{"message":"audience is required here"}`, http.StatusBadRequest)
		default:
			return aud, field, true
		}
	case Buildkite:
		var body struct {
			Audience string `json:"audience"`
		}
		field = "token"
		decodeErr := json.NewDecoder(r.Body).Decode(&body)
		aud = body.Audience
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/v3/jobs/"+BuildkiteJob+"/oidc/tokens":
			http.Error(w, `{"message":"No job found"}`, http.StatusNotFound)
		case auth != "Token "+c.requestToken:
			http.Error(w, `{"message":"Invalid access token"}`, http.StatusUnauthorized)
		case decodeErr != nil || aud == "":
			http.Error(w, `{"message":"audience is required here"}`, http.StatusUnprocessableEntity)
		default:
			return aud, field, true
		}
	default:
		q := r.URL.Query()
		aud, field = AzureAudience, "oidcToken"
		switch {
		case r.Method != http.MethodPost || r.URL.Path != azureIDTokenPath:
			http.Error(w, `{"message":"not found"}`, http.StatusNotFound)
		case auth != "Bearer "+c.requestToken:
			http.Error(w, `{"message":"TF400813: The user is not authorized to access this resource."}`, http.StatusUnauthorized)
		case q.Get("api-version") == "":
			http.Error(w, `{"message":"No api-version was supplied"}`, http.StatusBadRequest)
		case q.Get("serviceConnectionId") != AzureServiceConnection:
			http.Error(w, `{"message":"Service connection not found"}`, http.StatusNotFound)
		default:
			return aud, field, true
		}
	}
	return "", "", false
}

// issue mints a JWT for aud and registers it with the trusting STS.
func (c *CIIDTokens) issue(aud string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	tok := IDToken("https://ci.example/"+c.kind, c.kind+":job:"+fmt.Sprint(len(c.issued)+1), aud, now.Add(c.lifetime))
	c.issued = append(c.issued, tok)
	c.audiences = append(c.audiences, aud)
	if c.google != nil {
		c.google.TrustSubjectToken(c.provider, tok)
	}
	return tok
}

// IDToken returns a JWT shaped like a CI system's ID token, from issuer
// for sub and aud, expiring at exp. Its signature is random: the fake STS
// recognises the tokens registered with TrustSubjectToken.
func IDToken(issuer, sub, aud string, exp time.Time) string {
	header := mustJSON(map[string]string{"alg": "RS256", "kid": randomHex(8), "typ": "JWT"})
	claims := mustJSON(map[string]any{
		"iss": issuer,
		"sub": sub,
		"aud": aud,
		"exp": exp.Unix(),
		"iat": time.Now().Unix(),
		"nbf": time.Now().Unix(),
		"jti": randomHex(16),
	})
	enc := base64.RawURLEncoding.EncodeToString
	return enc(header) + "." + enc(claims) + "." + enc([]byte(randomHex(64)))
}
