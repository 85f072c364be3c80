package fake_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

const registryPassword = "good-token"

func acceptGoodToken(user, password string) bool {
	return user == "oauth2accesstoken" && password == registryPassword
}

func TestRegistryChallengeAndTokenEndpoint(t *testing.T) {
	reg := fake.NewRegistry(t, acceptGoodToken)
	digest := reg.Seed(t, "p/i")

	challenges := []struct {
		method, path, want string
	}{
		{"GET", "/v2/", `Bearer realm="` + reg.URL + `/v2/token",service="gcr.io"`},
		{"GET", "/v2/p/i/manifests/latest", `Bearer realm="` + reg.URL + `/v2/token",service="gcr.io",scope="repository:p/i:pull"`},
		{"HEAD", "/v2/p/i/blobs/" + digest, `Bearer realm="` + reg.URL + `/v2/token",service="gcr.io",scope="repository:p/i:pull"`},
		{"POST", "/v2/p/i/blobs/uploads/", `Bearer realm="` + reg.URL + `/v2/token",service="gcr.io",scope="repository:p/i:pull,push"`},
		{"GET", "/v2/_catalog", `Bearer realm="` + reg.URL + `/v2/token",service="gcr.io",scope="registry:catalog:*"`},
	}
	for _, c := range challenges {
		resp := registryRequest(t, c.method, reg.URL+c.path, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s: status %d, want 401", c.method, c.path, resp.StatusCode)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != c.want {
			t.Errorf("%s %s: WWW-Authenticate %q, want %q", c.method, c.path, got, c.want)
		}
	}
	if got := reg.Count401(); got != len(challenges) {
		t.Errorf("Count401 = %d, want %d", got, len(challenges))
	}

	tokenURL := reg.URL + "/v2/token?service=gcr.io&scope=repository:p/i:pull"
	refusals := map[string]func(*http.Request){
		"no credentials":    func(*http.Request) {},
		"wrong password":    func(r *http.Request) { r.SetBasicAuth("oauth2accesstoken", "bad") },
		"wrong username":    func(r *http.Request) { r.SetBasicAuth("_json_key", registryPassword) },
		"bearer not basic":  func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+registryPassword) },
		"empty credentials": func(r *http.Request) { r.SetBasicAuth("", "") },
	}
	for name, setAuth := range refusals {
		resp := registryRequest(t, "GET", tokenURL, setAuth)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"UNAUTHORIZED"`) {
			t.Errorf("token with %s: status %d body %s, want 401 UNAUTHORIZED", name, resp.StatusCode, body)
		}
	}

	resp := registryRequest(t, "GET", tokenURL, func(r *http.Request) { r.SetBasicAuth("oauth2accesstoken", registryPassword) })
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token: status %d, decode error %v", resp.StatusCode, err)
	}
	if tok.Token == "" || tok.AccessToken != tok.Token || tok.ExpiresIn != 300 {
		t.Fatalf("token response = %+v, want token == access_token, expires_in 300", tok)
	}
	if got, want := reg.TokenRequests(), len(refusals)+1; got != want {
		t.Errorf("TokenRequests = %d, want %d", got, want)
	}
	if got := reg.LastUsername(); got != "oauth2accesstoken" {
		t.Errorf("LastUsername = %q", got)
	}
	if got := reg.LastScope(); got != "repository:p/i:pull" {
		t.Errorf("LastScope = %q", got)
	}

	resp = registryRequest(t, "GET", reg.URL+"/v2/p/i/manifests/latest", func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+tok.Token)
		r.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != digest {
		t.Fatalf("manifest with bearer: status %d digest %q, want 200 %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), digest)
	}
	resp = registryRequest(t, "GET", reg.URL+"/v2/p/i/manifests/latest", func(r *http.Request) { r.Header.Set("Authorization", "Bearer forged") })
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("manifest with forged bearer: status %d, want 401", resp.StatusCode)
	}
	if got := reg.AuthorizedRequests(); got != 1 {
		t.Errorf("AuthorizedRequests = %d, want 1", got)
	}
}

func TestRegistryServiceOption(t *testing.T) {
	reg := fake.NewRegistry(t, acceptGoodToken, fake.WithService("us-docker.pkg.dev"))
	resp := registryRequest(t, "GET", reg.URL+"/v2/", nil)
	if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, `service="us-docker.pkg.dev"`) {
		t.Errorf("WWW-Authenticate = %q, want service us-docker.pkg.dev", got)
	}
	if reg.Host() != strings.TrimPrefix(reg.URL, "http://") || !strings.HasPrefix(reg.Host(), "127.0.0.1:") {
		t.Errorf("Host() = %q, URL = %q", reg.Host(), reg.URL)
	}
}

func TestRegistryCrane(t *testing.T) {
	crane := craneBinary(t)
	reg := fake.NewRegistry(t, acceptGoodToken)
	digest := reg.Seed(t, "p/i")
	image := reg.Host() + "/p/i:latest"

	t.Run("accepted", func(t *testing.T) {
		out, err := runTool(t, crane, []string{"DOCKER_CONFIG=" + registryLogin(t, reg.Host(), registryPassword)}, "digest", "--insecure", image)
		if err != nil {
			t.Fatalf("crane digest: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(out); got != digest {
			t.Errorf("crane digest = %q, want %q", got, digest)
		}
		if reg.LastUsername() != "oauth2accesstoken" || reg.AuthorizedRequests() == 0 {
			t.Errorf("LastUsername %q, AuthorizedRequests %d", reg.LastUsername(), reg.AuthorizedRequests())
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		before := reg.TokenRequests()
		out, err := runTool(t, crane, []string{"DOCKER_CONFIG=" + registryLogin(t, reg.Host(), "stale")}, "digest", "--insecure", image)
		if err == nil || !strings.Contains(out, "UNAUTHORIZED") {
			t.Fatalf("crane digest with a wrong password: err %v, output %s; want UNAUTHORIZED from the token endpoint", err, out)
		}
		if reg.TokenRequests() == before {
			t.Error("crane never asked the token endpoint")
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		out, err := runTool(t, crane, []string{"DOCKER_CONFIG=" + t.TempDir()}, "digest", "--insecure", image)
		if err == nil {
			t.Fatalf("anonymous crane digest succeeded: %s", out)
		}
	})
}

func TestRegistryTLSWithHostName(t *testing.T) {
	crane := craneBinary(t)
	reg := fake.NewRegistry(t, acceptGoodToken, fake.WithTLS("gcr.io", "*.gcr.io", "*.pkg.dev"))
	digest := reg.Seed(t, "p/i")
	if !strings.HasPrefix(reg.URL, "https://127.0.0.1:") || reg.CAFile == "" || reg.ProxyURL == "" {
		t.Fatalf("URL %q CAFile %q ProxyURL %q", reg.URL, reg.CAFile, reg.ProxyURL)
	}
	env := []string{"HTTPS_PROXY=" + reg.ProxyURL, "SSL_CERT_FILE=" + reg.CAFile}
	for _, host := range []string{"gcr.io", "eu.gcr.io", "europe-west1-docker.pkg.dev"} {
		cfg := registryLogin(t, host, registryPassword)
		out, err := runTool(t, crane, append(env, "DOCKER_CONFIG="+cfg), "digest", host+"/p/i:latest")
		if err != nil {
			t.Fatalf("crane digest %s via proxy: %v\n%s", host, err, out)
		}
		if got := strings.TrimSpace(out); got != digest {
			t.Errorf("crane digest %s = %q, want %q", host, got, digest)
		}
	}
	// The proxy refuses hosts outside the certificate, so nothing leaks out.
	out, err := runTool(t, crane, append(env, "DOCKER_CONFIG="+t.TempDir()), "digest", "example.com/p/i:latest")
	if err == nil || !strings.Contains(out, "Forbidden") {
		t.Errorf("crane digest example.com via proxy: err %v, output %s; want refused", err, out)
	}
}

func TestRegistrySkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed (apt-get install -y skopeo); skipping skopeo client test")
	}
	reg := fake.NewRegistry(t, acceptGoodToken)
	digest := reg.Seed(t, "p/i")
	image := "docker://" + reg.Host() + "/p/i:latest"

	authfile := filepath.Join(registryLogin(t, reg.Host(), registryPassword), "config.json")
	out, err := runTool(t, skopeo, nil, "inspect", "--tls-verify=false", "--authfile", authfile, image)
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	var inspected struct{ Digest string }
	if err := json.Unmarshal([]byte(out), &inspected); err != nil || inspected.Digest != digest {
		t.Fatalf("skopeo digest = %q (%v), want %q\n%s", inspected.Digest, err, digest, out)
	}
	if reg.LastUsername() != "oauth2accesstoken" {
		t.Errorf("LastUsername = %q", reg.LastUsername())
	}

	bad := filepath.Join(registryLogin(t, reg.Host(), "stale"), "config.json")
	out, err = runTool(t, skopeo, nil, "inspect", "--tls-verify=false", "--authfile", bad, image)
	if err == nil || !strings.Contains(strings.ToLower(out), "unauthorized") {
		t.Fatalf("skopeo inspect with a wrong password: err %v, output %s; want unauthorized", err, out)
	}
}

func TestRegistrySkopeoTLSWithHostName(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed (apt-get install -y skopeo); skipping skopeo client test")
	}
	reg := fake.NewRegistry(t, acceptGoodToken, fake.WithTLS("gcr.io"))
	digest := reg.Seed(t, "p/i")
	authfile := filepath.Join(registryLogin(t, "gcr.io", registryPassword), "config.json")
	env := []string{"HTTPS_PROXY=" + reg.ProxyURL}
	out, err := runTool(t, skopeo, env, "inspect", "--cert-dir", filepath.Dir(reg.CAFile), "--authfile", authfile, "docker://gcr.io/p/i:latest")
	if err != nil {
		t.Fatalf("skopeo inspect gcr.io via proxy: %v\n%s", err, out)
	}
	if !strings.Contains(out, digest) {
		t.Errorf("skopeo output lacks digest %s:\n%s", digest, out)
	}
}

// registryRequest sends one request to the registry and returns the response, whose
// body is closed when the test ends.
func registryRequest(t *testing.T, method, url string, prepare func(*http.Request)) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(req)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// registryLogin returns a DOCKER_CONFIG directory whose config.json
// holds a static Basic login oauth2accesstoken:password for host.
func registryLogin(t *testing.T, host, password string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("oauth2accesstoken:" + password))
	cfg := `{"auths":{"` + host + `":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// craneBinary returns the path of crane, the go.mod tool, built once into
// the go build cache.
func craneBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "tool", "-n", "crane").Output()
	if path := strings.TrimSpace(string(out)); err == nil {
		if _, statErr := os.Stat(path); statErr == nil {
			return path
		}
	}
	path := filepath.Join(t.TempDir(), "crane")
	if out, err := exec.Command("go", "build", "-o", path, "github.com/google/go-containerregistry/cmd/crane").CombinedOutput(); err != nil {
		t.Fatalf("building crane: %v\n%s", err, out)
	}
	return path
}

// runTool runs a registry client with a clean environment (HOME in a
// temporary directory, no proxy or docker settings from outside) plus env,
// and returns its combined output.
func runTool(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(toolEnv(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_RUNTIME_DIR="+home)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// toolEnv returns the environment minus anything that would point a
// client at another daemon, registry config or proxy.
func toolEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "DOCKER_"), strings.HasSuffix(strings.ToUpper(k), "_PROXY"),
			k == "HOME", k == "XDG_CONFIG_HOME", k == "XDG_RUNTIME_DIR", k == "REGISTRY_AUTH_FILE",
			k == "SSL_CERT_FILE", k == "SSL_CERT_DIR":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// TestRegistryAcceptsGoogleIssuedTokens shows the wiring e2e tests use: the
// registry accepts exactly the access tokens the fake Google issued.
func TestRegistryAcceptsGoogleIssuedTokens(t *testing.T) {
	g := fake.NewGoogle(t)
	reg := fake.NewRegistry(t, func(u, p string) bool {
		_, ok := g.Issued(p)
		return u == "oauth2accesstoken" && ok
	})
	tokenURL := reg.URL + "/v2/token?service=gcr.io&scope=repository:p/i:pull"
	issued := g.IssueToken("sa@p.iam.gserviceaccount.com")
	for password, want := range map[string]int{issued: http.StatusOK, "ya29.forged": http.StatusUnauthorized} {
		resp := registryRequest(t, "GET", tokenURL, func(r *http.Request) { r.SetBasicAuth("oauth2accesstoken", password) })
		if resp.StatusCode != want {
			t.Errorf("token for password %q: status %d, want %d", password, resp.StatusCode, want)
		}
	}
}
