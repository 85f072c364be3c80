package fake_test

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// standInHelper answers `get` like docker-credential-gcp would, so the
// fake daemon can be proven against the real docker CLI before the real
// helper exists.
const standInHelper = `#!/bin/sh
case "$1" in
get) read -r server; echo "$server" >> "$(dirname "$0")/get.log"
     echo '{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"tok-123"}' ;;
*) echo "credentials not found in native keychain"; exit 1 ;;
esac
`

// dockerCLI prepares the environment for running the real docker CLI
// against d with the stand-in helper configured for gcr.io, and returns a
// function that runs docker and the helper's bin directory.
func dockerCLI(t *testing.T, d *fake.Dockerd, credHelpers string) (func(args ...string) (string, error), string) {
	t.Helper()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed; skipping real-client test of the fake daemon")
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-gcp"), []byte(standInHelper), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"credHelpers":`+credHelpers+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"DOCKER_HOST=unix://" + d.Socket(),
		"DOCKER_CONFIG=" + cfg,
		"DOCKER_CLI_HINTS=false",
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	run := func(args ...string) (string, error) {
		t.Helper()
		return runTool(t, docker, env, args...)
	}
	return run, bin
}

func TestDockerdPullSendsHelperCredentials(t *testing.T) {
	d := fake.NewDockerd(t)
	docker, bin := dockerCLI(t, d, `{"gcr.io":"gcp"}`)
	out, err := docker("pull", "gcr.io/p/i:latest")
	if err != nil {
		t.Fatalf("docker pull: %v\n%s", err, out)
	}
	ac, ok := d.AuthFor("/images/create")
	if !ok {
		t.Fatalf("no X-Registry-Auth on /images/create; requests: %+v", d.Requests())
	}
	want := fake.AuthConfig{Username: "oauth2accesstoken", Password: "tok-123", ServerAddress: "gcr.io"}
	if ac != want {
		t.Errorf("X-Registry-Auth = %+v, want %+v", ac, want)
	}
	if q := lastRequest(t, d, "/images/create").Query; !strings.Contains(q, "fromImage=gcr.io%2Fp%2Fi") || !strings.Contains(q, "tag=latest") {
		t.Errorf("pull query = %q", q)
	}
	if log, _ := os.ReadFile(filepath.Join(bin, "get.log")); strings.TrimSpace(string(log)) != "gcr.io" {
		t.Errorf("helper get was asked for %q, want gcr.io", log)
	}
	t.Logf("docker pull called: %s", describe(d.Requests()))
}

func TestDockerdPullDockerHubSendsNoCredentials(t *testing.T) {
	d := fake.NewDockerd(t)
	docker, bin := dockerCLI(t, d, `{"gcr.io":"gcp","us-docker.pkg.dev":"gcp"}`)
	out, err := docker("pull", "docker.io/library/alpine")
	if err != nil {
		t.Fatalf("docker pull: %v\n%s", err, out)
	}
	req := lastRequest(t, d, "/images/create")
	if req.Auth.Username != "" || req.Auth.Password != "" || req.Auth.IdentityToken != "" {
		t.Errorf("docker.io pull carried credentials: %+v", req.Auth)
	}
	if _, err := os.Stat(filepath.Join(bin, "get.log")); err == nil {
		t.Error("the helper was called for docker.io")
	}
	t.Logf("docker.io pull: X-Registry-Auth %q decodes to %+v", req.RegistryAuth, req.Auth)
}

func TestDockerdPushSendsHelperCredentials(t *testing.T) {
	d := fake.NewDockerd(t)
	docker, _ := dockerCLI(t, d, `{"gcr.io":"gcp"}`)
	out, err := docker("push", "gcr.io/p/i:latest")
	if err != nil {
		t.Fatalf("docker push: %v\n%s", err, out)
	}
	ac, ok := d.AuthFor("/push")
	if !ok {
		t.Fatalf("no X-Registry-Auth on push; requests: %+v", d.Requests())
	}
	if want := (fake.AuthConfig{Username: "oauth2accesstoken", Password: "tok-123", ServerAddress: "gcr.io"}); ac != want {
		t.Errorf("X-Registry-Auth = %+v, want %+v", ac, want)
	}
	if req := lastRequest(t, d, "/push"); req.Path != "/images/gcr.io/p/i/push" || req.Query != "tag=latest" {
		t.Errorf("push request = %s ?%s", req.Path, req.Query)
	}
	t.Logf("docker push called: %s", describe(d.Requests()))
}

// TestDockerdUpstream runs the whole chain a real daemon runs: docker CLI →
// helper → X-Registry-Auth → daemon → token exchange at the registry.
func TestDockerdUpstream(t *testing.T) {
	reg := fake.NewRegistry(t, func(u, p string) bool { return u == "oauth2accesstoken" && p == "tok-123" })
	digest := reg.Seed(t, "p/i")
	d := fake.NewDockerd(t, fake.WithUpstream("gcr.io", reg.Host()))
	docker, _ := dockerCLI(t, d, `{"gcr.io":"gcp"}`)

	out, err := docker("pull", "gcr.io/p/i:latest")
	if err != nil || !strings.Contains(out, digest) {
		t.Fatalf("docker pull through upstream: err %v, want digest %s in output:\n%s", err, digest, out)
	}
	if reg.LastUsername() != "oauth2accesstoken" || reg.AuthorizedRequests() == 0 {
		t.Errorf("registry saw user %q, %d authorized requests", reg.LastUsername(), reg.AuthorizedRequests())
	}
	if out, err := docker("push", "gcr.io/p/i:v2"); err != nil {
		t.Fatalf("docker push through upstream: %v\n%s", err, out)
	}
	if got := reg.LastScope(); got != "repository:p/i:push,pull" && got != "repository:p/i:pull,push" {
		t.Errorf("push token scope = %q, want push and pull", got)
	}

	// An image named by the registry's own address, as e2e tests name it
	// with DOCKER_CREDENTIAL_GCP_REGISTRIES=127.0.0.1:PORT.
	d3 := fake.NewDockerd(t, fake.WithUpstream(reg.Host(), reg.Host()))
	docker3, _ := dockerCLI(t, d3, `{"`+reg.Host()+`":"gcp"}`)
	if out, err := docker3("pull", reg.Host()+"/p/i:latest"); err != nil || !strings.Contains(out, digest) {
		t.Fatalf("docker pull %s: err %v, want digest %s:\n%s", reg.Host(), err, digest, out)
	}
	if ac, _ := d3.AuthFor("/images/create"); ac.ServerAddress != reg.Host() || ac.Password != "tok-123" {
		t.Errorf("X-Registry-Auth for %s = %+v", reg.Host(), ac)
	}

	// A helper answer the registry refuses makes the CLI fail, as with a real daemon.
	refusing := fake.NewRegistry(t, func(string, string) bool { return false })
	refusing.Seed(t, "p/i")
	d2 := fake.NewDockerd(t, fake.WithUpstream("gcr.io", refusing.Host()))
	docker2, _ := dockerCLI(t, d2, `{"gcr.io":"gcp"}`)
	if out, err := docker2("pull", "gcr.io/p/i:latest"); err == nil || !strings.Contains(out, "UNAUTHORIZED") {
		t.Errorf("docker pull with refused credentials: err %v, want UNAUTHORIZED failure:\n%s", err, out)
	}
}

func TestDecodeRegistryAuth(t *testing.T) {
	json := `{"username":"oauth2accesstoken","password":"a+b/c?d>","serveraddress":"gcr.io"}`
	want := fake.AuthConfig{Username: "oauth2accesstoken", Password: "a+b/c?d>", ServerAddress: "gcr.io"}
	for name, header := range map[string]string{
		"base64url padded":   base64.URLEncoding.EncodeToString([]byte(json)),
		"base64url unpadded": base64.RawURLEncoding.EncodeToString([]byte(json)),
		"std padded":         base64.StdEncoding.EncodeToString([]byte(json)),
		"std unpadded":       base64.RawStdEncoding.EncodeToString([]byte(json)),
	} {
		got, err := fake.DecodeRegistryAuth(header)
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, want)
		}
	}
	for _, bad := range []string{"", "%%%", base64.URLEncoding.EncodeToString([]byte("not json"))} {
		if _, err := fake.DecodeRegistryAuth(bad); err == nil {
			t.Errorf("DecodeRegistryAuth(%q) succeeded", bad)
		}
	}
}

func lastRequest(t *testing.T, d *fake.Dockerd, pathSubstring string) fake.DockerdRequest {
	t.Helper()
	reqs := d.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if strings.Contains(reqs[i].Path, pathSubstring) {
			return reqs[i]
		}
	}
	t.Fatalf("no request to %s; got %s", pathSubstring, describe(reqs))
	return fake.DockerdRequest{}
}

func describe(reqs []fake.DockerdRequest) string {
	var parts []string
	for _, r := range reqs {
		s := r.Method + " " + r.Path
		if r.Query != "" {
			s += "?" + r.Query
		}
		if r.RegistryAuth != "" {
			s += " [X-Registry-Auth]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
