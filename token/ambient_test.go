package token

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

const testProvider = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x"

// Which CI the keyless source finds, in the order of SPEC §3.3b, and what
// it says when a detected CI cannot give its ID token. Nothing here sends
// a request.
func TestFindIDToken(t *testing.T) {
	valid := fake.IDToken("https://ci", "sub", "aud", time.Now().Add(time.Hour))
	for _, tt := range []struct {
		name    string
		env     map[string]string
		wantCI  string // "" with wantErr "" means no CI
		wantErr string
	}{
		{"nothing: the chain goes on", nil, "", ""},
		{"a direct token beats GitHub", map[string]string{EnvIDToken: valid, "GITHUB_ACTIONS": "true"}, "", ""},
		{"GitHub", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "https://gh.example/t?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "x"}, "GitHub Actions", ""},
		{"GitHub without the permission", map[string]string{"GITHUB_ACTIONS": "true"}, "", "permissions: id-token: write"},
		{"GitHub over plain http", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "http://gh.example/t", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "x"}, "", "must use https"},
		{"GitHub over loopback http", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:1/t", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "x"}, "GitHub Actions", ""},
		{"Buildkite", map[string]string{"BUILDKITE_AGENT_ACCESS_TOKEN": "x", "BUILDKITE_JOB_ID": "j"}, "Buildkite", ""},
		{"Buildkite without access", map[string]string{"BUILDKITE": "true"}, "", "BUILDKITE_AGENT_ACCESS_TOKEN"},
		{"Buildkite over plain http", map[string]string{"BUILDKITE_AGENT_ACCESS_TOKEN": "x", "BUILDKITE_JOB_ID": "j", "BUILDKITE_AGENT_ENDPOINT": "http://agent.example/v3"}, "", "https"},
		{"Azure", map[string]string{"TF_BUILD": "True", "SYSTEM_OIDCREQUESTURI": "https://dev.azure.com/o", "SYSTEM_ACCESSTOKEN": "x", EnvAzureServiceConnection: "c"}, "Azure Pipelines", ""},
		{"Azure without the access token", map[string]string{"TF_BUILD": "True", "SYSTEM_OIDCREQUESTURI": "https://dev.azure.com/o"}, "", "$(System.AccessToken)"},
		{"Azure without a service connection", map[string]string{"TF_BUILD": "True", "SYSTEM_OIDCREQUESTURI": "https://dev.azure.com/o", "SYSTEM_ACCESSTOKEN": "x"}, "", EnvAzureServiceConnection},
		{"CircleCI", map[string]string{"CIRCLECI": "true", "CIRCLE_OIDC_TOKEN": valid}, "CircleCI", ""},
		{"CircleCI without a context", map[string]string{"CIRCLECI": "true"}, "", "context"},
		{"Bitbucket", map[string]string{"BITBUCKET_BUILD_NUMBER": "1", "BITBUCKET_STEP_OIDC_TOKEN": valid}, "Bitbucket Pipelines", ""},
		{"Bitbucket without oidc", map[string]string{"BITBUCKET_BUILD_NUMBER": "1"}, "", "oidc: true"},
		{"GitLab with its token", map[string]string{"GITLAB_CI": "true", EnvIDToken: valid}, "GitLab CI", ""},
		{"GitLab without id_tokens", map[string]string{"GITLAB_CI": "true"}, "", "id_tokens: " + EnvIDToken},
		{"a direct token that is no JWT", map[string]string{EnvIDToken: "not-a-jwt"}, "", "is not a JWT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			o, err := findIDToken(testProvider)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				if errors.Is(err, ErrNotFound) {
					t.Fatal("a detected CI without its ID token is reported as not found")
				}
				if strings.Contains(err.Error(), valid) {
					t.Fatal("the error quotes the ID token")
				}
			case err != nil:
				t.Fatalf("err %v", err)
			case tt.env == nil:
				if o != nil {
					t.Fatalf("found %+v outside any CI", o)
				}
			case o == nil || o.CI != tt.wantCI:
				t.Fatalf("found %+v, want CI %q", o, tt.wantCI)
			}
		})
	}
}

// The default audience is the provider's as an https URL, what a
// provider allows unless told otherwise.
func TestDefaultIDTokenAudience(t *testing.T) {
	if got, want := DefaultIDTokenAudience(testProvider), "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x"; got != want {
		t.Errorf("audience %q, want %q", got, want)
	}
}

// The cache identity follows the job: another run, attempt, job or
// request token is another identity; the same job is the same.
func TestKeylessIdentityIsJobScoped(t *testing.T) {
	identity := func(env map[string]string) string {
		t.Helper()
		isolateEnv(t)
		t.Setenv(EnvWorkloadIdentityProvider, testProvider)
		for k, v := range env {
			t.Setenv(k, v)
		}
		cred, err := ciSource{scopes: []string{CloudPlatformScope}}.Find(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		return cred.Identity
	}
	job := map[string]string{
		"ACTIONS_ID_TOKEN_REQUEST_URL": "https://gh.example/t", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "rt",
		"GITHUB_REPOSITORY": "a/b", "GITHUB_RUN_ID": "1", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "build",
	}
	base := identity(job)
	if identity(job) != base {
		t.Fatal("the same job has two identities")
	}
	for _, change := range []map[string]string{
		{"GITHUB_RUN_ID": "2"}, {"GITHUB_RUN_ATTEMPT": "2"}, {"GITHUB_JOB": "deploy"},
		{"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "rt2"}, {EnvIDTokenAudience: "https://other"},
	} {
		other := map[string]string{}
		for k, v := range job {
			other[k] = v
		}
		for k, v := range change {
			other[k] = v
		}
		if identity(other) == base {
			t.Errorf("changing %v keeps the cache identity", change)
		}
	}
}

// DOCKER_CREDENTIAL_GCP_ID_TOKEN_FILE is read as credential files are:
// a missing file is an error naming the variable, a directory is refused,
// and neither is "not found".
func TestIDTokenFileErrors(t *testing.T) {
	for name, path := range map[string]string{
		"missing":   t.TempDir() + "/none",
		"directory": t.TempDir(),
	} {
		t.Run(name, func(t *testing.T) {
			isolateEnv(t)
			t.Setenv(EnvIDTokenFile, path)
			_, err := findIDToken(testProvider)
			if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), path) {
				t.Errorf("err %v, want an error naming %s", err, path)
			}
		})
	}
}
