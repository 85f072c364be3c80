package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// Keyless CI (SPEC §3.3b): DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER
// set, the job's own ID token found in the CI's environment and exchanged
// at STS, through the built binary, with loopback fakes of each CI's
// ID-token endpoint, STS and IAM.

const (
	ciProvider = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/ci/providers/github"
	// ciAudience is the provider's default allowed audience.
	ciAudience     = "https://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/ci/providers/github"
	ciRequestToken = "ci-request-token-0123456789abcdef"
	ciTarget       = "pusher@proj.iam.gserviceaccount.com"
)

// ciWorld is a job of one CI system: its ID-token endpoint, Google's STS
// and IAM, and the job's environment.
type ciWorld struct {
	e  *Env
	g  *fake.Google
	ci *fake.CIIDTokens
}

// newCIWorld is a job of kind with the provider variable set and STS and
// IAM pointed at the fake.
func newCIWorld(t testing.TB, kind string) *ciWorld {
	t.Helper()
	w := &ciWorld{e: NewEnv(t), g: fake.NewGoogle(t), ci: fake.NewCIIDTokens(t, kind, ciRequestToken)}
	w.ci.TrustedBy(w.g, ciProvider)
	w.e.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", ciProvider)
	w.e.Set("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", w.g.STSURL())
	w.e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", w.g.IAMURL())
	w.job("build")
	return w
}

// job sets the environment of the CI's job named name.
func (w *ciWorld) job(name string) {
	for _, kv := range w.ci.Env(name) {
		k, v, _ := strings.Cut(kv, "=")
		w.e.Set(k, v)
	}
}

// ciNoSecrets fails if any output of r holds the request token or an ID
// token the CI issued.
func ciNoSecrets(t *testing.T, w *ciWorld, r Result) {
	t.Helper()
	for _, s := range append(w.ci.Issued(), ciRequestToken) {
		if strings.Contains(r.Stdout+r.Stderr, s) || strings.Contains(r.Stdout+r.Stderr, s[len(s)-20:]) {
			t.Errorf("output leaks the request token or an ID token:\nstdout: %s\nstderr: %s", r.Stdout, r.Stderr)
		}
	}
}

// ciGet runs get and returns the token, checking that nothing leaks.
func ciGet(t *testing.T, w *ciWorld) (string, Result) {
	t.Helper()
	r := w.e.Run("gcr.io", "get")
	ciNoSecrets(t, w, r)
	return protoExpectCreds(t, r, "gcr.io"), r
}

// Each CI whose ID token we request: the helper asks the CI's endpoint
// (which checks the job's request token and the audience), exchanges the
// ID token at STS for the provider, hands out STS's token, and a warm get
// asks nothing of anyone.
func TestKeylessCIRequestedIDTokens(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ kind, audience string }{
		{fake.GitHubActions, ciAudience},
		{fake.Buildkite, ciAudience},
		{fake.AzurePipelines, fake.AzureAudience},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			w := newCIWorld(t, tt.kind)
			tok, _ := ciGet(t, w)
			is := protoExpectIssued(t, w.g, tok, "principal://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/ci/subject/"+tt.kind+":job:1", "sts")
			if left := time.Until(is.Expiry); left > 5*time.Minute {
				t.Errorf("a direct federated token lives %v, more than the 5-minute ID token behind it", left)
			}
			if got := w.ci.Audiences(); len(got) != 1 || got[0] != tt.audience {
				t.Errorf("ID tokens requested for %q, want one for %q", got, tt.audience)
			}
			if n := w.g.Count("sts"); n != 1 {
				t.Errorf("%d STS exchanges, want 1", n)
			}
			for range 3 {
				if again, _ := ciGet(t, w); again != tok {
					t.Fatal("a warm get did not serve the cached token")
				}
			}
			if w.ci.Count() != 1 || w.g.Count("any") != 1 {
				t.Errorf("warm gets sent requests: %d to the CI, %d to Google; want 1 and 1 in all", w.ci.Count(), w.g.Count("any"))
			}
		})
	}
}

// Every mint fetches a fresh ID token where the CI allows it: once the
// cached token is past the reuse threshold, the next get asks the CI for
// a new ID token and exchanges that one.
func TestKeylessCIFreshIDTokenPerMint(t *testing.T) {
	t.Parallel()
	w := newCIWorld(t, fake.GitHubActions)
	first, _ := ciGet(t, w)
	cacheAge(t, w.e, time.Minute) // a 5-minute token is reused only in its first 30 s
	second, _ := ciGet(t, w)
	if second == first {
		t.Fatal("a 5-minute token a minute old was handed out again")
	}
	issued := w.ci.Issued()
	if len(issued) != 2 || issued[0] == issued[1] || w.g.Count("sts") != 2 {
		t.Fatalf("%d ID tokens fetched, %d STS exchanges; want 2 distinct and 2", len(issued), w.g.Count("sts"))
	}
}

// DOCKER_CREDENTIAL_GCP_ID_TOKEN_AUDIENCE replaces the default audience.
func TestKeylessCIAudienceOverride(t *testing.T) {
	t.Parallel()
	w := newCIWorld(t, fake.Buildkite)
	w.e.Set("DOCKER_CREDENTIAL_GCP_ID_TOKEN_AUDIENCE", "https://example.com/custom")
	ciGet(t, w)
	if got := w.ci.Audiences(); len(got) != 1 || got[0] != "https://example.com/custom" {
		t.Errorf("ID token requested for %q, want https://example.com/custom", got)
	}
}

// Eight concurrent cold gets against a slow CI endpoint: one ID-token
// fetch, one STS exchange and, impersonating, one IAM call; all eight get
// the same token.
func TestKeylessCIConcurrentColdGets(t *testing.T) {
	t.Parallel()
	for _, impersonate := range []bool{false, true} {
		t.Run(fmt.Sprintf("impersonate=%v", impersonate), func(t *testing.T) {
			t.Parallel()
			w := newCIWorld(t, fake.GitHubActions)
			w.ci.SetLatency(300 * time.Millisecond)
			if impersonate {
				w.e.Set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", ciTarget)
			}
			var wg sync.WaitGroup
			toks := make([]string, 8)
			results := make([]Result, 8)
			for i := range toks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = w.e.Run("gcr.io", "get")
				}()
			}
			wg.Wait()
			for i, r := range results {
				ciNoSecrets(t, w, r)
				toks[i] = protoExpectCreds(t, r, "gcr.io")
				if toks[i] != toks[0] {
					t.Errorf("get %d got another token than get 0", i)
				}
			}
			wantIAM := 0
			if impersonate {
				wantIAM = 1
				protoExpectIssued(t, w.g, toks[0], ciTarget, "iam")
			}
			if w.ci.Count() != 1 || w.g.Count("sts") != 1 || w.g.Count("iam") != wantIAM {
				t.Errorf("8 cold gets: %d ID-token fetches, %d STS, %d IAM; want 1, 1, %d", w.ci.Count(), w.g.Count("sts"), w.g.Count("iam"), wantIAM)
			}
		})
	}
}

// The cache is scoped to the CI job: a later job on the same runner (same
// HOME and cache) never gets the earlier job's token.
func TestKeylessCIJobScopedCache(t *testing.T) {
	t.Parallel()
	w := newCIWorld(t, fake.GitHubActions)
	w.e.Set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", ciTarget) // 1-hour tokens: reusable within a job
	first, _ := ciGet(t, w)
	if again, _ := ciGet(t, w); again != first {
		t.Fatal("the same job did not reuse its token")
	}
	w.job("deploy")
	if next, _ := ciGet(t, w); next == first {
		t.Error("another job got the earlier job's token")
	}
	if w.ci.Count() != 2 {
		t.Errorf("%d ID-token fetches, want 2 (one per job)", w.ci.Count())
	}
}

// A GitHub job without `permissions: id-token: write` has neither
// request variable: get fails naming the permission, never "not found",
// and no other source is tried.
func TestKeylessCIGitHubWithoutPermission(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	m := fake.NewMetadata(t, protoVMEmail)
	e.Set("GCE_METADATA_HOST", m.Host())
	e.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", ciProvider)
	e.Set("GITHUB_ACTIONS", "true")
	protoExpectError(t, e.Run("gcr.io", "get"), nil, "GitHub Actions", "permissions: id-token: write")
	if m.Count() != 0 {
		t.Errorf("the metadata server was asked %d times: the error fell through", m.Count())
	}
	d := e.Run("", "doctor")
	if !strings.Contains(d.Stdout, "permissions: id-token: write") {
		t.Errorf("doctor does not say what is missing:\n%s", d.Stdout)
	}
}

// Each CI's endpoint refuses a request token it did not issue (the fakes
// check it as the CIs do), and each refusal, echoing the token back, is an
// error naming the CI with its next step, quoting nothing secret, never a
// fall-through to another source.
func TestKeylessCIEndpointRefusals(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ kind, ci, tokenVar string }{
		{fake.GitHubActions, "GitHub Actions", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"},
		{fake.Buildkite, "Buildkite", "BUILDKITE_AGENT_ACCESS_TOKEN"},
		{fake.AzurePipelines, "Azure Pipelines", "SYSTEM_ACCESSTOKEN"},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			w := newCIWorld(t, tt.kind)
			m := fake.NewMetadata(t, protoVMEmail)
			w.e.Set("GCE_METADATA_HOST", m.Host())
			const wrong = "another-jobs-request-token-0123456789"
			w.e.Set(tt.tokenVar, wrong)
			r := w.e.Run("gcr.io", "get")
			protoExpectError(t, r, []string{wrong, ciRequestToken}, tt.ci+" refused the ID token request: HTTP 401")

			w.e.Set(tt.tokenVar, ciRequestToken)
			w.ci.Refuse(http.StatusForbidden, `{"message":"denied","echo":"`+ciRequestToken+`"}`)
			r = w.e.Run("gcr.io", "get")
			protoExpectError(t, r, []string{ciRequestToken}, tt.ci+" refused the ID token request: HTTP 403")
			ciNoSecrets(t, w, r)
			if m.Count() != 0 || w.g.Count("any") != 0 {
				t.Errorf("after the refusals the metadata server got %d requests and Google %d: an error fell through", m.Count(), w.g.Count("any"))
			}
		})
	}
}

// STS refusing the job's ID token (the provider's condition does not
// admit it) is an error naming STS and what to check, never a
// fall-through to another source.
func TestKeylessCISTSRefusal(t *testing.T) {
	t.Parallel()
	w := newCIWorld(t, fake.GitHubActions)
	m := fake.NewMetadata(t, protoVMEmail)
	w.e.Set("GCE_METADATA_HOST", m.Host())
	w.g.Revoke(ciProvider)
	r := w.e.Run("gcr.io", "get")
	protoExpectError(t, r, nil, "STS refused", "attribute condition")
	ciNoSecrets(t, w, r)
	if m.Count() != 0 {
		t.Errorf("the metadata server was asked %d times: an error fell through", m.Count())
	}
}

// A CI URL that is neither https nor loopback http is refused before the
// request token goes anywhere.
func TestKeylessCIURLMustBeHTTPS(t *testing.T) {
	t.Parallel()
	w := newCIWorld(t, fake.GitHubActions)
	w.e.Set("ACTIONS_ID_TOKEN_REQUEST_URL", "http://ci.example.com/idtoken?api-version=2.0")
	protoExpectError(t, w.e.Run("gcr.io", "get"), []string{ciRequestToken}, "ACTIONS_ID_TOKEN_REQUEST_URL", "https")
	if w.ci.Count() != 0 {
		t.Errorf("the CI endpoint got %d requests", w.ci.Count())
	}
}

// ID tokens fixed for the job: given directly (any CI, GitLab's recipe),
// in a file, CircleCI's (V2 before V1) and Bitbucket's. Each is exchanged
// as is; an expired one is an error naming where it came from.
func TestKeylessCIFixedIDTokens(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		vars []string // the variables holding the token, the first one used
		env  map[string]string
		want string // in doctor
	}{
		{"direct", []string{"DOCKER_CREDENTIAL_GCP_ID_TOKEN"}, map[string]string{"GITLAB_CI": "true"}, "GitLab CI"},
		{"file", []string{"DOCKER_CREDENTIAL_GCP_ID_TOKEN_FILE"}, nil, "DOCKER_CREDENTIAL_GCP_ID_TOKEN_FILE"},
		{"circleci", []string{"CIRCLE_OIDC_TOKEN_V2", "CIRCLE_OIDC_TOKEN"}, map[string]string{"CIRCLECI": "true"}, "CircleCI"},
		{"bitbucket", []string{"BITBUCKET_STEP_OIDC_TOKEN"}, map[string]string{"BITBUCKET_BUILD_NUMBER": "12"}, "Bitbucket"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t)
			g := fake.NewGoogle(t)
			e.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", ciProvider)
			e.Set("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", g.STSURL())
			for k, v := range tt.env {
				e.Set(k, v)
			}
			set := func(exp time.Time) []string {
				var toks []string
				for _, name := range tt.vars {
					tok := fake.IDToken("https://ci.example", "job:"+name, ciAudience, exp)
					toks = append(toks, tok)
					if name == "DOCKER_CREDENTIAL_GCP_ID_TOKEN_FILE" {
						e.Set(name, protoWrite(t, e.Home, "id-token", []byte(tok+"\n")))
					} else {
						e.Set(name, tok)
					}
				}
				return toks
			}
			toks := set(time.Now().Add(time.Hour))
			g.TrustSubjectToken(ciProvider, toks[0])
			r := e.Run("gcr.io", "get")
			tok := protoExpectCreds(t, r, "gcr.io")
			protoExpectIssued(t, g, tok, "principal://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/ci/subject/job:"+tt.vars[0], "sts")
			if again := cacheGet(t, e, "gcr.io"); again != tok || g.Count("any") != 1 {
				t.Errorf("a warm get minted again (%d requests)", g.Count("any"))
			}
			d := cmdsMustRun(t, e, "", "doctor")
			for _, s := range toks {
				if strings.Contains(r.Stdout+r.Stderr+d.Stdout+d.Stderr, s) {
					t.Error("an output leaks the ID token")
				}
			}
			if !strings.Contains(d.Stdout, tt.want) || !strings.Contains(d.Stdout, "fixed for the job") {
				t.Errorf("doctor does not name the ID token's origin %q:\n%s", tt.want, d.Stdout)
			}

			// The job's token, now expired: an error naming it, not a
			// cached token of another token's identity, not "not found".
			expired := set(time.Now().Add(-time.Minute))
			r = e.Run("gcr.io", "get")
			protoExpectError(t, r, expired, "expired", tt.vars[0])
		})
	}
}

// A fixed ID token near its expiry can only give a token that expires with
// it: get hands it out, and says so once on stderr, naming the fix.
func TestKeylessCIFixedIDTokenNearExpiry(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	g := fake.NewGoogle(t)
	e.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", ciProvider)
	e.Set("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", g.STSURL())
	tok := fake.IDToken("https://gitlab.example", "project_path:g/p:ref_type:branch:ref:main", ciAudience, time.Now().Add(3*time.Minute))
	g.TrustSubjectToken(ciProvider, tok)
	e.Set("DOCKER_CREDENTIAL_GCP_ID_TOKEN", tok)
	r := e.Run("gcr.io", "get")
	access := protoExpectCreds(t, r, "gcr.io")
	if is := protoExpectIssued(t, g, access, "principal://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/ci/subject/project_path:g/p:ref_type:branch:ref:main", "sts"); time.Until(is.Expiry) > 3*time.Minute {
		t.Errorf("STS's token outlives the ID token: %v left", time.Until(is.Expiry))
	}
	if strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, "DOCKER_CREDENTIAL_GCP_IMPERSONATE") || strings.Contains(r.Stderr, tok) {
		t.Errorf("stderr %q; want one warning naming DOCKER_CREDENTIAL_GCP_IMPERSONATE", r.Stderr)
	}
}

// With the provider variable set but neither an ID-token variable nor a
// CI in the environment (a laptop, a kubelet node), the chain goes on.
func TestKeylessCIAbsentOutsideCI(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	m := fake.NewMetadata(t, protoVMEmail)
	e.Set("GCE_METADATA_HOST", m.Host())
	e.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", ciProvider)
	if tok := cacheGet(t, e, "gcr.io"); !m.Issued(tok) {
		t.Error("outside CI the metadata server's token was not used")
	}
	d := cmdsMustRun(t, e, "", "doctor")
	if !strings.Contains(d.Stdout, "no CI system") {
		t.Errorf("doctor does not say why the keyless CI source was skipped:\n%s", d.Stdout)
	}
}

// The 5-minute rule: tokens of direct federation from 5-minute ID tokens
// are reused only in their first 30 s, and get says once per mint, on
// stderr, that they are too short, naming DOCKER_CREDENTIAL_GCP_IMPERSONATE;
// impersonated 1-hour tokens keep the 45-minute policy and say nothing.
func TestKeylessCIFiveMinuteRule(t *testing.T) {
	t.Parallel()
	t.Run("direct", func(t *testing.T) {
		t.Parallel()
		w := newCIWorld(t, fake.GitHubActions)
		tok, r := ciGet(t, w)
		if strings.Count(r.Stderr, "DOCKER_CREDENTIAL_GCP_IMPERSONATE") != 1 || !strings.Contains(r.Stderr, "5 minutes") {
			t.Errorf("a mint of a 5-minute token did not warn once on stderr: %q", r.Stderr)
		}
		again, r := ciGet(t, w)
		if again != tok || r.Stderr != "" {
			t.Errorf("a warm get within 30 s: reused %v, stderr %q; want the cached token, quietly", again == tok, r.Stderr)
		}
		cacheAge(t, w.e, 40*time.Second)
		if next, _ := ciGet(t, w); next == tok {
			t.Error("a 5-minute token 40 s old was handed out again")
		}
		d := cmdsMustRun(t, w.e, "", "doctor")
		if !strings.Contains(d.Stdout, "DOCKER_CREDENTIAL_GCP_IMPERSONATE") || !strings.Contains(d.Stdout, "direct federation") {
			t.Errorf("doctor does not explain the short tokens and the fix:\n%s", d.Stdout)
		}
		ciNoSecrets(t, w, d)
	})
	t.Run("impersonated", func(t *testing.T) {
		t.Parallel()
		w := newCIWorld(t, fake.GitHubActions)
		w.e.Set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", ciTarget)
		tok, r := ciGet(t, w)
		if r.Stderr != "" {
			t.Errorf("an impersonated 1-hour token warned: %q", r.Stderr)
		}
		if is := protoExpectIssued(t, w.g, tok, ciTarget, "iam"); time.Until(is.Expiry) < 55*time.Minute {
			t.Errorf("the impersonated token lives %v, want an hour", time.Until(is.Expiry))
		}
		cacheAge(t, w.e, 10*time.Minute)
		if again, _ := ciGet(t, w); again != tok {
			t.Error("a 1-hour token 10 min old was not reused")
		}
		cacheAge(t, w.e, 6*time.Minute)
		if next, _ := ciGet(t, w); next == tok {
			t.Error("a 1-hour token 16 min old (44 min left) was handed out again")
		}
		d := cmdsMustRun(t, w.e, "", "doctor")
		if !strings.Contains(d.Stdout, "impersonat") || !strings.Contains(d.Stdout, "1 hour") {
			t.Errorf("doctor does not give the impersonated lifetime:\n%s", d.Stdout)
		}
	})
}

// The kubelet provider reads the same provider variable for pods; its node
// path (no service-account token in the request) on a node outside any
// CI is unchanged: the node's own credential, here the metadata server's.
func TestKeylessCIKubeletNodePathUnchanged(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	m := fake.NewMetadata(t, protoVMEmail)
	e.Set("GCE_METADATA_HOST", m.Host())
	e.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", ciProvider)
	resp := podRun(t, e, podRequest(t, "gcr.io/p/i:1", "", nil))
	auth, ok := resp.Auth["gcr.io"]
	if !ok || auth.Username != "oauth2accesstoken" || !m.Issued(auth.Password) {
		t.Errorf("the node path did not answer with the metadata server's token: %+v", resp.Auth)
	}
}
