package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// The real clients below (crane, docker, skopeo, podman, buildah) run the
// built helper through their own credential-helper code against a registry
// that, like gcr.io, accepts only oauth2accesstoken:<token Google issued>.
// Each test is one user: every client invocation in it shares the token
// cache, so the fake Google sees exactly one grant however many clients run.

// clientTimeout bounds one client invocation.
const clientTimeout = 60 * time.Second

// clientSA is the service account whose key the helper mints from.
const clientSA = "pusher@p.iam.gserviceaccount.com"

// clientWorld is one isolated user whose helper mints from a
// service-account key at a fake Google.
type clientWorld struct {
	e *Env
	g *fake.Google
}

func clientNewWorld(t *testing.T) *clientWorld {
	t.Helper()
	g := fake.NewGoogle(t)
	e := NewEnv(t)
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(t, t.TempDir(), clientSA))
	return &clientWorld{e: e, g: g}
}

// verify is the registry's check of Basic credentials: the protocol's
// username and an unexpired token the fake Google issued to clientSA.
func (w *clientWorld) verify(user, password string) bool {
	issued, ok := w.g.Issued(password)
	return user == "oauth2accesstoken" && ok && issued.Principal == clientSA
}

// registry starts a registry guarded by w.verify, seeded with p/i:latest.
func (w *clientWorld) registry(t *testing.T, opts ...fake.RegistryOption) (*fake.Registry, string) {
	t.Helper()
	reg := fake.NewRegistry(t, w.verify, opts...)
	return reg, reg.Seed(t, "p/i")
}

// run runs a client in the world's environment plus extra variables (a
// later value wins) and returns its combined output.
func (w *clientWorld) run(t *testing.T, extra []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	c.Env = append(w.e.Environ(), extra...)
	c.Dir = w.e.Home
	c.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := c.CombinedOutput()
	t.Logf("%s %s: %v in %v", filepath.Base(name), strings.Join(args, " "), clientErrString(err), time.Since(start).Round(time.Millisecond))
	return string(out), err
}

func clientErrString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// assertOneGrant checks that all the clients together made the helper mint
// exactly once (the rest came from the token cache).
func (w *clientWorld) assertOneGrant(t *testing.T) {
	t.Helper()
	jwt, all := w.g.Count("jwt"), w.g.Count("any")
	t.Logf("fake Google saw %d jwt grant(s), %d request(s) in all", jwt, all)
	if jwt != 1 || all != 1 {
		t.Errorf("fake Google saw %d jwt grants and %d requests; want exactly 1 (the token cache serves the rest)", jwt, all)
	}
}

// assertRegistryAuthenticated checks that the registry's token endpoint saw
// our credentials and then served authorised requests.
func clientAssertRegistryAuthenticated(t *testing.T, name string, reg *fake.Registry) {
	t.Helper()
	t.Logf("%s registry: %d token requests, %d authorised requests, %d refused (401), last username %q",
		name, reg.TokenRequests(), reg.AuthorizedRequests(), reg.Count401(), reg.LastUsername())
	if reg.TokenRequests() == 0 || reg.AuthorizedRequests() == 0 || reg.LastUsername() != "oauth2accesstoken" {
		t.Errorf("%s registry: %d token requests, %d authorised, last username %q; want the token exchange with oauth2accesstoken",
			name, reg.TokenRequests(), reg.AuthorizedRequests(), reg.LastUsername())
	}
}

// clientWriteConfig writes a docker-style config.json holding credHelpers
// that send hosts to our helper, and returns its path.
func clientWriteConfig(t *testing.T, dir string, hosts ...string) string {
	t.Helper()
	helpers := map[string]string{}
	for _, h := range hosts {
		helpers[h] = "gcp"
	}
	data, err := json.Marshal(map[string]any{"credHelpers": helpers})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientTLSEnv makes a client reach the WithTLS registry under Google's
// host names through its CONNECT proxy, trusting its CA.
func clientTLSEnv(reg *fake.Registry) []string {
	return []string{"HTTPS_PROXY=" + reg.ProxyURL, "https_proxy=" + reg.ProxyURL, "SSL_CERT_FILE=" + reg.CAFile}
}

var clientCraneOnce = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "tool", "-n", "crane").Output()
	if path := strings.TrimSpace(string(out)); err == nil {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	dir, err := os.MkdirTemp("", "dcg-e2e-crane-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "crane")
	if out, err := exec.Command("go", "build", "-o", path, "github.com/google/go-containerregistry/cmd/crane").CombinedOutput(); err != nil {
		return "", errors.New("building crane: " + err.Error() + "\n" + string(out))
	}
	return path, nil
})

// clientCrane is crane, the go.mod tool pin, built once per test binary.
func clientCrane(t *testing.T) string {
	t.Helper()
	path, err := clientCraneOnce()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// clientLookPath finds an installed client or skips the test, visibly.
func clientLookPath(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIP: %s is not installed (%s); this real-client test did not run", name, install)
	}
	return path
}

func TestClientCrane(t *testing.T) {
	t.Parallel()
	crane := clientCrane(t)
	w := clientNewWorld(t)
	plain, plainDigest := w.registry(t)
	tls, tlsDigest := w.registry(t, fake.WithTLS("gcr.io", "*.gcr.io", "*.pkg.dev"))
	w.e.Set("DOCKER_CREDENTIAL_GCP_REGISTRIES", plain.Host())
	clientWriteConfig(t, w.e.DockerConfig, "gcr.io", "europe-docker.pkg.dev", plain.Host())
	unconfigured := []string{"DOCKER_CONFIG=" + t.TempDir()}
	tlsEnv := clientTLSEnv(tls)

	t.Run("without credHelpers the registry refuses", func(t *testing.T) {
		for _, c := range []struct {
			env []string
			ref string
		}{
			{unconfigured, plain.Host() + "/p/i:latest"},
			{append(tlsEnv, unconfigured...), "gcr.io/p/i:latest"},
		} {
			out, err := w.run(t, c.env, crane, "digest", "--insecure", c.ref)
			if err == nil || !strings.Contains(out, "UNAUTHORIZED") {
				t.Errorf("crane digest %s without the helper: err %v; want UNAUTHORIZED:\n%s", c.ref, err, out)
			}
		}
		if n := w.g.Count("any"); n != 0 {
			t.Errorf("the helper minted %d times though no client asked it", n)
		}
	})

	tar := filepath.Join(t.TempDir(), "image.tar")
	t.Run("DOCKER_CREDENTIAL_GCP_REGISTRIES over plain HTTP", func(t *testing.T) {
		ref := plain.Host() + "/p/i:latest"
		out, err := w.run(t, nil, crane, "digest", "--insecure", ref)
		if err != nil || strings.TrimSpace(out) != plainDigest {
			t.Fatalf("crane digest %s: %v, got %q, want %s", ref, err, out, plainDigest)
		}
		if out, err := w.run(t, nil, crane, "pull", "--insecure", ref, tar); err != nil {
			t.Fatalf("crane pull %s: %v\n%s", ref, err, out)
		}
		pushed := plain.Host() + "/p/pushed:v1"
		if out, err := w.run(t, nil, crane, "push", "--insecure", tar, pushed); err != nil {
			t.Fatalf("crane push %s: %v\n%s", pushed, err, out)
		}
		if scope := plain.LastScope(); !strings.Contains(scope, "push") {
			t.Errorf("push token scope = %q, want push", scope)
		}
		if out, err := w.run(t, nil, crane, "digest", "--insecure", pushed); err != nil || strings.TrimSpace(out) != plainDigest {
			t.Errorf("crane digest %s after push: %v, got %q, want %s", pushed, err, out, plainDigest)
		}
		clientAssertRegistryAuthenticated(t, "plain HTTP", plain)
	})

	t.Run("credHelpers with Google host names over TLS", func(t *testing.T) {
		for _, host := range []string{"gcr.io", "europe-docker.pkg.dev"} {
			ref := host + "/p/i:latest"
			out, err := w.run(t, tlsEnv, crane, "digest", ref)
			if err != nil || strings.TrimSpace(out) != tlsDigest {
				t.Fatalf("crane digest %s: %v, got %q, want %s", ref, err, out, tlsDigest)
			}
			hostTar := filepath.Join(t.TempDir(), "image.tar")
			if out, err := w.run(t, tlsEnv, crane, "pull", ref, hostTar); err != nil {
				t.Fatalf("crane pull %s: %v\n%s", ref, err, out)
			}
			pushed := host + "/p/pushed:" + strings.ReplaceAll(host, ".", "-")
			if out, err := w.run(t, tlsEnv, crane, "push", hostTar, pushed); err != nil {
				t.Fatalf("crane push %s: %v\n%s", pushed, err, out)
			}
			if out, err := w.run(t, tlsEnv, crane, "digest", pushed); err != nil || strings.TrimSpace(out) != tlsDigest {
				t.Errorf("crane digest %s after push: %v, got %q, want %s", pushed, err, out, tlsDigest)
			}
		}
		clientAssertRegistryAuthenticated(t, "TLS", tls)
	})
	w.assertOneGrant(t)
}

func TestClientDocker(t *testing.T) {
	t.Parallel()
	docker := clientLookPath(t, "docker", "the docker CLI; CI machines have it")
	w := clientNewWorld(t)
	reg, digest := w.registry(t)
	d := fake.NewDockerd(t, fake.WithUpstream("gcr.io", reg.Host()))
	clientWriteConfig(t, w.e.DockerConfig, "gcr.io", "us-docker.pkg.dev", "europe-docker.pkg.dev")
	env := []string{"DOCKER_HOST=unix://" + d.Socket(), "DOCKER_CLI_HINTS=false"}

	t.Run("docker.io stays anonymous", func(t *testing.T) {
		// Once with our helper for Google's hosts only, once as the
		// credsStore that docker asks about every registry.
		storeDir := t.TempDir()
		if err := os.WriteFile(filepath.Join(storeDir, "config.json"), []byte(`{"credsStore":"gcp"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		for name, extra := range map[string][]string{
			"credHelpers": nil,
			"credsStore":  {"DOCKER_CONFIG=" + storeDir},
		} {
			out, err := w.run(t, append(env, extra...), docker, "pull", "docker.io/library/alpine")
			if err != nil {
				t.Fatalf("%s: docker pull docker.io/library/alpine: %v\n%s", name, err, out)
			}
			req := clientLastRequest(t, d, "/images/create")
			t.Logf("%s: docker.io pull sent X-Registry-Auth %q = %+v", name, req.RegistryAuth, req.Auth)
			if req.Auth.Username != "" || req.Auth.Password != "" || req.Auth.IdentityToken != "" || req.Auth.RegistryToken != "" {
				t.Errorf("%s: docker.io pull carried credentials: %+v", name, req.Auth)
			}
		}
		if n := w.g.Count("any"); n != 0 {
			t.Errorf("the helper minted %d times for docker.io", n)
		}
	})

	var pullToken string
	t.Run("pull gcr.io", func(t *testing.T) {
		out, err := w.run(t, env, docker, "pull", "gcr.io/p/i")
		if err != nil || !strings.Contains(out, digest) {
			t.Fatalf("docker pull gcr.io/p/i: %v; want digest %s in:\n%s", err, digest, out)
		}
		pullToken = clientAssertAuth(t, w, d, "/images/create")
	})

	t.Run("push gcr.io", func(t *testing.T) {
		out, err := w.run(t, env, docker, "push", "gcr.io/p/i:latest")
		if err != nil {
			t.Fatalf("docker push gcr.io/p/i:latest: %v\n%s", err, out)
		}
		if tok := clientAssertAuth(t, w, d, "/push"); pullToken != "" && tok != pullToken {
			t.Errorf("push got another token than pull; the cache should have served the same one")
		}
		if scope := reg.LastScope(); !strings.Contains(scope, "push") {
			t.Errorf("the daemon's push token scope = %q, want push", scope)
		}
	})
	clientAssertRegistryAuthenticated(t, "upstream", reg)
	w.assertOneGrant(t)
}

// clientAssertAuth checks the X-Registry-Auth the docker CLI sent with its
// latest request to path and returns the token in it.
func clientAssertAuth(t *testing.T, w *clientWorld, d *fake.Dockerd, path string) string {
	t.Helper()
	ac, ok := d.AuthFor(path)
	if !ok {
		t.Fatalf("no X-Registry-Auth on %s", path)
	}
	issued, known := w.g.Issued(ac.Password)
	t.Logf("X-Registry-Auth on %s: username %q, serveraddress %q, token issued by fake Google: %v (via %s to %s)",
		path, ac.Username, ac.ServerAddress, known, issued.Via, issued.Principal)
	if ac.Username != "oauth2accesstoken" || ac.ServerAddress != "gcr.io" || !known || issued.Principal != clientSA {
		t.Errorf("X-Registry-Auth on %s = user %q serveraddress %q, token known %v for %q; want oauth2accesstoken, gcr.io, a token issued to %s",
			path, ac.Username, ac.ServerAddress, known, issued.Principal, clientSA)
	}
	return ac.Password
}

func clientLastRequest(t *testing.T, d *fake.Dockerd, path string) fake.DockerdRequest {
	t.Helper()
	reqs := d.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if strings.Contains(reqs[i].Path, path) {
			return reqs[i]
		}
	}
	t.Fatalf("the daemon got no request to %s", path)
	return fake.DockerdRequest{}
}

func TestClientSkopeo(t *testing.T) {
	t.Parallel()
	skopeo := clientLookPath(t, "skopeo", "apt-get install skopeo; .ci/run does")
	w := clientNewWorld(t)
	plain, plainDigest := w.registry(t)
	tls, tlsDigest := w.registry(t, fake.WithTLS("gcr.io", "*.gcr.io", "*.pkg.dev"))
	w.e.Set("DOCKER_CREDENTIAL_GCP_REGISTRIES", plain.Host())
	authfile := clientWriteConfig(t, t.TempDir(), "gcr.io", "europe-docker.pkg.dev", plain.Host())
	empty := clientWriteConfig(t, t.TempDir())
	certDir := filepath.Dir(tls.CAFile)
	tlsEnv := clientTLSEnv(tls)

	t.Run("without credHelpers the registry refuses", func(t *testing.T) {
		out, err := w.run(t, nil, skopeo, "inspect", "--tls-verify=false", "--authfile", empty, "docker://"+plain.Host()+"/p/i:latest")
		if err == nil || !strings.Contains(strings.ToLower(out), "unauthorized") {
			t.Errorf("skopeo inspect without the helper: err %v; want unauthorized:\n%s", err, out)
		}
		if n := w.g.Count("any"); n != 0 {
			t.Errorf("the helper minted %d times though no client asked it", n)
		}
	})

	t.Run("DOCKER_CREDENTIAL_GCP_REGISTRIES over plain HTTP", func(t *testing.T) {
		src := "docker://" + plain.Host() + "/p/i:latest"
		clientSkopeoInspect(t, w, nil, plainDigest, skopeo, "inspect", "--tls-verify=false", "--authfile", authfile, src)
		dst := "docker://" + plain.Host() + "/p/copied:v1"
		if out, err := w.run(t, nil, skopeo, "copy", "--authfile", authfile, "--src-tls-verify=false", "--dest-tls-verify=false", src, dst); err != nil {
			t.Fatalf("skopeo copy %s %s: %v\n%s", src, dst, err, out)
		}
		clientSkopeoInspect(t, w, nil, plainDigest, skopeo, "inspect", "--tls-verify=false", "--authfile", authfile, dst)
		clientAssertRegistryAuthenticated(t, "plain HTTP", plain)
	})

	t.Run("credHelpers with Google host names over TLS", func(t *testing.T) {
		src := "docker://gcr.io/p/i:latest"
		clientSkopeoInspect(t, w, tlsEnv, tlsDigest, skopeo, "inspect", "--cert-dir", certDir, "--authfile", authfile, src)
		dst := "docker://europe-docker.pkg.dev/p/copied:v1"
		if out, err := w.run(t, tlsEnv, skopeo, "copy", "--authfile", authfile, "--src-cert-dir", certDir, "--dest-cert-dir", certDir, src, dst); err != nil {
			t.Fatalf("skopeo copy %s %s: %v\n%s", src, dst, err, out)
		}
		clientSkopeoInspect(t, w, tlsEnv, tlsDigest, skopeo, "inspect", "--cert-dir", certDir, "--authfile", authfile, dst)
		clientAssertRegistryAuthenticated(t, "TLS", tls)
	})
	w.assertOneGrant(t)
}

// clientSkopeoInspect runs skopeo inspect and checks the digest it reports.
func clientSkopeoInspect(t *testing.T, w *clientWorld, env []string, digest, skopeo string, args ...string) {
	t.Helper()
	out, err := w.run(t, env, skopeo, args...)
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var inspected struct{ Digest string }
	if err := json.Unmarshal([]byte(out), &inspected); err != nil || inspected.Digest != digest {
		t.Errorf("skopeo %s: digest %q (%v), want %s", strings.Join(args, " "), inspected.Digest, err, digest)
	}
}

// TestClientPodmanBuildah pulls and pushes with podman and buildah, which
// share skopeo's containers/image code but have their own storage and CLI.
// They run daemonless here: a private vfs store, no cgroups or events.
func TestClientPodmanBuildah(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"podman", "buildah"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			bin := clientLookPath(t, tool, "apt-get install "+tool+"; not installed by .ci/run")
			w := clientNewWorld(t)
			reg, _ := w.registry(t)
			w.e.Set("DOCKER_CREDENTIAL_GCP_REGISTRIES", reg.Host())
			authfile := clientWriteConfig(t, t.TempDir(), reg.Host())
			// podman refuses a runroot path of 50 characters or more.
			storage, err := os.MkdirTemp("", tool)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(storage) })
			global := []string{"--root", filepath.Join(storage, "root"), "--runroot", filepath.Join(storage, "run"), "--storage-driver", "vfs"}
			if tool == "podman" {
				global = append(global, "--events-backend", "none", "--cgroup-manager", "cgroupfs")
			}
			env := []string{"XDG_RUNTIME_DIR=" + filepath.Join(storage, "x")}
			var out string
			src := reg.Host() + "/p/i:latest"
			out, err = w.run(t, env, bin, append(global, "pull", "--tls-verify=false", "--authfile", authfile, src)...)
			if err != nil && os.Geteuid() != 0 && !strings.Contains(strings.ToLower(out), "unauthorized") {
				t.Skipf("SKIP: %s cannot run rootless here (needs user namespaces): %v\n%s", tool, err, out)
			}
			if err != nil {
				t.Fatalf("%s pull %s: %v\n%s", tool, src, err, out)
			}
			dst := reg.Host() + "/p/" + tool + ":v1"
			out, err = w.run(t, env, bin, append(global, "push", "--tls-verify=false", "--authfile", authfile, src, dst)...)
			if err != nil {
				t.Fatalf("%s push %s: %v\n%s", tool, dst, err, out)
			}
			clientAssertRegistryAuthenticated(t, tool, reg)
			if !strings.Contains(reg.LastScope(), "push") {
				t.Errorf("push token scope = %q, want push", reg.LastScope())
			}
			w.assertOneGrant(t)
		})
	}
}
