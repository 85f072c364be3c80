package cmd

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// The wire types of credentialprovider.kubelet.k8s.io/v1 as
// k8s.io/kubelet/pkg/apis/credentialprovider/v1 declares them, to check our
// output strictly against (metav1.Duration travels as a Go duration string).
type v1CredentialProviderResponse struct {
	APIVersion    string                  `json:"apiVersion"`
	Kind          string                  `json:"kind"`
	CacheKeyType  string                  `json:"cacheKeyType"`
	CacheDuration *string                 `json:"cacheDuration,omitempty"`
	Auth          map[string]v1AuthConfig `json:"auth,omitempty"`
}

type v1AuthConfig struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// runKubelet runs the provider in-process with stdin and returns stdout,
// stderr and its error.
func runKubelet(t *testing.T, stdin string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := KubeletCredentialProvider(nil, IO{In: strings.NewReader(stdin), Out: &stdout, Err: &stderr})
	return stdout.String(), stderr.String(), err
}

// decodeKubeletResponse decodes out as the v1 API does, refusing unknown
// fields, and checks the fields every response needs.
func decodeKubeletResponse(t *testing.T, out string) v1CredentialProviderResponse {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var resp v1CredentialProviderResponse
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("response %q does not decode as a v1 CredentialProviderResponse: %v", out, err)
	}
	if resp.APIVersion != "credentialprovider.kubelet.k8s.io/v1" || resp.Kind != "CredentialProviderResponse" {
		t.Errorf("apiVersion/kind = %q/%q", resp.APIVersion, resp.Kind)
	}
	switch resp.CacheKeyType {
	case "Image", "Registry", "Global":
	default:
		t.Errorf("cacheKeyType %q is not one of Image, Registry, Global", resp.CacheKeyType)
	}
	if resp.CacheKeyType != "Registry" {
		t.Errorf("cacheKeyType = %q, want Registry", resp.CacheKeyType)
	}
	return resp
}

// serveEnv isolates a test (isolateEnv) and points
// GOOGLE_APPLICATION_CREDENTIALS at a service-account key the returned fake
// Google endpoint mints for; it returns the key's e-mail too.
func serveEnv(t *testing.T) (*fake.Google, string) {
	t.Helper()
	isolateEnv(t)
	g := fake.NewGoogle(t)
	email := "puller@test-project.iam.gserviceaccount.com"
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(t, t.TempDir(), email))
	return g, email
}

func kubeletRequestJSON(image string) string {
	quoted, _ := json.Marshal(image)
	return `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":` + string(quoted) + `}`
}

func TestKubeletCredentialProviderGoogleImages(t *testing.T) {
	tests := []struct {
		image, host string
	}{
		{"gcr.io/p/i:t", "gcr.io"},
		{"europe-docker.pkg.dev/p/r/i", "europe-docker.pkg.dev"},
		{"eu.gcr.io/p/i@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "eu.gcr.io"},
		// auth is keyed by the normalized host (and the image's port,
		// which kubelet matches exactly), never the prefix as written.
		{"EU.GCR.IO./p/i", "eu.gcr.io"},
		{"gcr.io:443/p/i", "gcr.io:443"},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			g, email := serveEnv(t)
			out, stderr, err := runKubelet(t, kubeletRequestJSON(tt.image))
			if err != nil {
				t.Fatalf("error: %v (stderr %q)", err, stderr)
			}
			resp := decodeKubeletResponse(t, out)
			if len(resp.Auth) != 1 {
				t.Fatalf("auth = %v, want exactly %s", resp.Auth, tt.host)
			}
			auth, ok := resp.Auth[tt.host]
			if !ok {
				t.Fatalf("auth has no entry for %s: %v", tt.host, resp.Auth)
			}
			if auth.Username != "oauth2accesstoken" {
				t.Errorf("username %q, want oauth2accesstoken", auth.Username)
			}
			issued, ok := g.Issued(auth.Password)
			if !ok || issued.Principal != email {
				t.Errorf("password is not a token issued for %s (%+v, %v)", email, issued, ok)
			}
			if resp.CacheDuration == nil {
				t.Fatal("no cacheDuration")
			}
			d, err := time.ParseDuration(*resp.CacheDuration)
			if err != nil {
				t.Fatalf("cacheDuration %q is not a duration: %v", *resp.CacheDuration, err)
			}
			// The fake issues one-hour tokens: cache them a little under
			// the 60 min minus the 5 min margin, in whole seconds.
			if d > 55*time.Minute || d < 50*time.Minute || d%time.Second != 0 {
				t.Errorf("cacheDuration = %s, want whole seconds just under 55m", d)
			}
			if n := g.Count("jwt"); n != 1 {
				t.Errorf("%d mints, want 1", n)
			}
			if strings.Contains(stderr, auth.Password) {
				t.Error("stderr contains the token")
			}
		})
	}
}

func TestKubeletCredentialProviderOtherRegistries(t *testing.T) {
	for _, image := range []string{
		"docker.io/library/alpine",
		"alpine",
		"library/alpine:3.20",
		"quay.io/coreos/etcd",
		"localhost:5000/app",
		"gcr.io.evil.com/p/i",
		// Not a plain host: no credentials, whatever the policy would
		// make of the host inside.
		"evil.com@gcr.io/p/i",
		"gcr.io#x/p/i",
		"gcr.io\n/p/i",
		"\u212a.gcr.io/p/i", // Kelvin sign, lowered to "k" by strings.ToLower
	} {
		t.Run(image, func(t *testing.T) {
			g, _ := serveEnv(t)
			out, _, err := runKubelet(t, kubeletRequestJSON(image))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !strings.Contains(out, `"auth":{}`) {
				t.Errorf("response %q lacks an empty auth", out)
			}
			if resp := decodeKubeletResponse(t, out); len(resp.Auth) != 0 {
				t.Errorf("auth = %v, want none", resp.Auth)
			}
			if n := g.Count("any"); n != 0 {
				t.Errorf("%d requests to Google for %s, want 0", n, image)
			}
		})
	}
}

// TestKubeletCredentialProviderExtraRegistryPort checks that an extra
// registry named with a port gets a token on that port only: another port
// of the same name is another server, maybe another user's.
func TestKubeletCredentialProviderExtraRegistryPort(t *testing.T) {
	for image, want := range map[string]bool{
		"localhost:5000/app":         true,
		"registry.internal:5000/app": true,
		"localhost:6000/app":         false,
		"localhost:31337/app":        false,
		"localhost/app":              false,
		"registry.internal/app":      false,
	} {
		t.Run(image, func(t *testing.T) {
			g, _ := serveEnv(t)
			t.Setenv("DOCKER_CREDENTIAL_GCP_REGISTRIES", "localhost:5000,registry.internal:5000")
			out, _, err := runKubelet(t, kubeletRequestJSON(image))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			resp := decodeKubeletResponse(t, out)
			key, _, _ := strings.Cut(image, "/")
			if _, got := resp.Auth[key]; got != want || len(resp.Auth) > 1 {
				t.Errorf("auth = %v, want a token for %s: %v", resp.Auth, key, want)
			}
			if n := g.Count("any"); !want && n != 0 {
				t.Errorf("%d requests to Google for %s, want 0", n, image)
			}
		})
	}
}

// TestKubeletCredentialProviderDocumentedRequest feeds the request as the
// API reference shows it, pretty-printed and with fields newer kubelets add.
func TestKubeletCredentialProviderDocumentedRequest(t *testing.T) {
	serveEnv(t)
	req := `{
  "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
  "kind": "CredentialProviderRequest",
  "image": "us-docker.pkg.dev/my-project/my-repo/my-image:v1",
  "serviceAccountToken": "",
  "serviceAccountAnnotations": {}
}
`
	out, _, err := runKubelet(t, req)
	if err != nil {
		t.Fatalf("error: %v", err)
	}
	if resp := decodeKubeletResponse(t, out); resp.Auth["us-docker.pkg.dev"].Password == "" {
		t.Errorf("no auth for us-docker.pkg.dev in %s", out)
	}
}

func TestKubeletCredentialProviderResponseShape(t *testing.T) {
	resp := kubeletResponse{
		APIVersion:    kubeletAPIVersion,
		Kind:          kubeletResponseKind,
		CacheKeyType:  kubeletCacheKeyRegistry,
		CacheDuration: (45 * time.Minute).String(),
		Auth:          map[string]kubeletAuthConfig{"gcr.io": {Username: "oauth2accesstoken", Password: "ya29.x"}},
	}
	got, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","cacheDuration":"45m0s","auth":{"gcr.io":{"username":"oauth2accesstoken","password":"ya29.x"}}}`
	if string(got) != want {
		t.Errorf("response JSON\n got %s\nwant %s", got, want)
	}
}

func TestKubeletCredentialProviderBadRequests(t *testing.T) {
	tests := []struct {
		name, stdin, want string
	}{
		{"empty", "", "no CredentialProviderRequest"},
		{"malformed", `{"apiVersion":`, "parsing the CredentialProviderRequest"},
		{"not an object", `"gcr.io/p/i"`, "parsing the CredentialProviderRequest"},
		{"wrong apiVersion", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1","kind":"CredentialProviderRequest","image":"gcr.io/p/i"}`, `unsupported apiVersion "credentialprovider.kubelet.k8s.io/v1alpha1"`},
		{"wrong kind", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","image":"gcr.io/p/i"}`, `unexpected kind "CredentialProviderResponse"`},
		{"no image", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest"}`, "has no image"},
		{"too large", `{"image":"` + strings.Repeat("a", 1<<20) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := serveEnv(t)
			out, _, err := runKubelet(t, tt.stdin)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if n := g.Count("any"); n != 0 {
				t.Errorf("%d requests to Google, want 0", n)
			}
		})
	}
}

func TestKubeletCredentialProviderHelp(t *testing.T) {
	var stdout bytes.Buffer
	if err := KubeletCredentialProvider([]string{"--help"}, IO{In: strings.NewReader(""), Out: &stdout, Err: io.Discard}); err != nil {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(stdout.String(), "credentialprovider.kubelet.k8s.io/v1") {
		t.Errorf("help = %q", stdout.String())
	}
}

func TestImageHost(t *testing.T) {
	tests := map[string]struct{ host, key string }{
		"gcr.io/p/i:t":                {"gcr.io", "gcr.io"},
		"europe-docker.pkg.dev/p/r/i": {"europe-docker.pkg.dev", "europe-docker.pkg.dev"},
		"EU.GCR.IO/p/i":               {"eu.gcr.io", "eu.gcr.io"},
		"gcr.io./p/i":                 {"gcr.io", "gcr.io"},
		"docker.io/library/alpine":    {"docker.io", "docker.io"},
		"alpine":                      {"docker.io", "docker.io"},
		"alpine:3.20":                 {"docker.io", "docker.io"},
		"library/alpine":              {"docker.io", "docker.io"},
		"user/app@sha256:abc":         {"docker.io", "docker.io"},
		"localhost/app":               {"localhost", "localhost"},
		"localhost:5000/app":          {"localhost:5000", "localhost:5000"},
		"registry:5000/app":           {"registry:5000", "registry:5000"},
		"gcr.io:443/p/i":              {"gcr.io", "gcr.io:443"},
		"[::1]:5000/app":              {"[::1]:5000", "[::1]:5000"},
		"":                            {"docker.io", "docker.io"},
	}
	for image, want := range tests {
		host, key, ok := imageHost(image)
		if !ok || host != want.host || key != want.key {
			t.Errorf("imageHost(%q) = %q, %q, %v; want %q, %q, true", image, host, key, ok, want.host, want.key)
		}
	}
	// Hosts that are not a plain host[:port] get no credentials at all.
	for _, image := range []string{
		"evil.com@gcr.io/p/i",
		"user:pw@gcr.io/p/i",
		"gcr.io#x/p/i",
		"gcr.io?x/p/i",
		"gcr.io\\x/p/i",
		"gcr.io\x00/p/i",
		"gcr.io\t/p/i",
		"\u212a.gcr.io/p/i", // Kelvin sign, which strings.ToLower turns into "k"
		"gcr.\u0131o/p/i",   // dotless i
		"gcr.io:0/p/i",
		"gcr.io:x/p/i",
	} {
		if host, key, ok := imageHost(image); ok {
			t.Errorf("imageHost(%q) = %q, %q, true; want refused", image, host, key)
		}
	}
}

func TestKubeletCacheDuration(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		expiry time.Time
		want   time.Duration
	}{
		{now.Add(time.Hour), 55 * time.Minute},
		{now.Add(59*time.Minute + 59*time.Second + 999*time.Millisecond), 54*time.Minute + 59*time.Second},
		{now.Add(6 * time.Minute), time.Minute},
		{now.Add(5*time.Minute + 30*time.Second), time.Minute},
		{now.Add(time.Minute), time.Minute},
		{now.Add(-time.Minute), time.Minute},
		{time.Time{}, time.Minute},
	}
	for _, tt := range tests {
		if got := kubeletCacheDuration(tt.expiry, now); got != tt.want {
			t.Errorf("kubeletCacheDuration(now+%s) = %s, want %s", tt.expiry.Sub(now), got, tt.want)
		}
	}
}
