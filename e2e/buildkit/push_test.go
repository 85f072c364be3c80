package buildkit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// buildTimeout bounds one client run (a build and its pushes) on a loaded
// 2-core machine.
const buildTimeout = 3 * time.Minute

// minHandedOut is the least lifetime a token may have when a registry
// sees it: BuildKit keeps the helper's answer for 4 min 50 s
// (session/auth/authprovider in moby/buildkit), so anything shorter can
// fail a push with 401 mid-build.
const minHandedOut = 5 * time.Minute

// The keyless CI job: a GitHub Actions job with `permissions: id-token:
// write` (the fake's request URL and token), the provider variable and
// impersonation of pusher, which gives 1-hour tokens. inspector is the
// test's own account, which checks what landed in the registries and which
// guard lets through without counting.
const (
	provider     = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/ci/providers/github"
	requestToken = "ci-request-token-0123456789abcdef"
	pusher       = "pusher@proj.iam.gserviceaccount.com"
	inspector    = "inspector@test.iam.gserviceaccount.com"
)

// dockerfile builds from scratch and runs one step in a container (the
// static helper binary, the only program the image has), so buildkitd's
// OCI worker really executes something.
const dockerfile = "FROM scratch\nCOPY docker-credential-gcp /bin/\nRUN [\"/bin/docker-credential-gcp\", \"version\"]\n"

// guard is the registries' check of Basic credentials, shared by both
// registries: oauth2accesstoken and an unexpired token the fake IAM
// issued for pusher. It records what it saw so the test can prove that the
// registries saw only valid tokens, each with at least minHandedOut left.
type guard struct {
	g *fake.Google

	mu      sync.Mutex
	seen    int
	refused []string // why each refused credential was refused; never the token
	minLeft time.Duration
}

func (gd *guard) verify(user, password string) bool {
	issued, known := gd.g.Issued(password)
	if known && issued.Via == "manual" && issued.Principal == inspector {
		return user == "oauth2accesstoken"
	}
	left := time.Until(issued.Expiry)
	gd.mu.Lock()
	defer gd.mu.Unlock()
	gd.seen++
	switch {
	case user != "oauth2accesstoken":
		gd.refused = append(gd.refused, fmt.Sprintf("username %q", user))
	case !known:
		gd.refused = append(gd.refused, "a password the fake Google did not issue or that expired")
	case issued.Principal != pusher || issued.Via != "iam":
		gd.refused = append(gd.refused, "a token of "+issued.Principal+" via "+issued.Via)
	default:
		if gd.seen == 1 || left < gd.minLeft {
			gd.minLeft = left
		}
		return true
	}
	return false
}

// check reports what the registries' token endpoints saw so far.
func (gd *guard) check(t *testing.T) {
	t.Helper()
	gd.mu.Lock()
	defer gd.mu.Unlock()
	t.Logf("registries checked %d Basic credentials; refused %d; least lifetime left %v", gd.seen, len(gd.refused), gd.minLeft.Round(time.Second))
	if gd.seen == 0 {
		t.Errorf("no registry saw any credentials; BuildKit pushed without asking the helper?")
	}
	if len(gd.refused) > 0 {
		t.Errorf("the registries refused %d credentials: %s", len(gd.refused), strings.Join(gd.refused, "; "))
	}
	if gd.seen > 0 && gd.minLeft < minHandedOut {
		t.Errorf("a registry got a token with %v left; every token handed out must have at least %v (BuildKit reuses it for 4m50s)", gd.minLeft.Round(time.Second), minHandedOut)
	}
}

// world is one keyless GitHub Actions job with the helper configured for
// two loopback registries, one for images and one for the registry cache,
// and a buildkitd that trusts them over plain HTTP.
type world struct {
	u            *user
	g            *fake.Google
	ci           *fake.CIIDTokens
	gd           *guard
	images       *fake.Registry
	cache        *fake.Registry
	d            *buildkitd
	contextDir   string
	metadataFile string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	g := fake.NewGoogle(t)
	gd := &guard{g: g}
	w := &world{
		u:      newUser(t),
		g:      g,
		ci:     fake.NewCIIDTokens(t, fake.GitHubActions, requestToken),
		gd:     gd,
		images: fake.NewRegistry(t, gd.verify),
		cache:  fake.NewRegistry(t, gd.verify),
	}
	w.ci.TrustedBy(g, provider)
	for _, kv := range w.ci.Env("build") {
		k, v, _ := strings.Cut(kv, "=")
		w.u.set(k, v)
	}
	w.u.set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", provider)
	w.u.set("DOCKER_CREDENTIAL_GCP_IMPERSONATE", pusher)
	w.u.set("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", g.STSURL())
	w.u.set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())

	// What a user does: configure-docker routes the hosts to the helper in
	// DOCKER_CONFIG's credHelpers and registers them as non-Google hosts.
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	hosts := w.images.Host() + "," + w.cache.Host()
	if out, err := w.u.run(ctx, tools.helper, "configure-docker", "--registries", hosts); err != nil {
		t.Fatalf("configure-docker --registries %s: %v\n%s", hosts, err, out)
	}
	w.d = startBuildkitd(t, w.images.Host(), w.cache.Host())

	w.contextDir = filepath.Join(t.TempDir(), "context")
	if err := os.MkdirAll(w.contextDir, 0o700); err != nil {
		t.Fatal(err)
	}
	helper, err := os.ReadFile(tools.helper)
	if err != nil {
		t.Fatal(err)
	}
	for file, content := range map[string][]byte{"Dockerfile": []byte(dockerfile), "docker-credential-gcp": helper} {
		if err := os.WriteFile(filepath.Join(w.contextDir, file), content, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.metadataFile = filepath.Join(t.TempDir(), "metadata.json")
	return w
}

// buildctl runs one buildctl build of the context and returns its output.
func (w *world) buildctl(t *testing.T, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	args := append([]string{"--addr", w.d.Addr, "build",
		"--frontend", "dockerfile.v0",
		"--local", "context=" + w.contextDir, "--local", "dockerfile=" + w.contextDir,
		"--progress", "plain",
		"--metadata-file", w.metadataFile,
	}, extra...)
	out, err := w.u.run(ctx, tools.buildctl, args...)
	if err != nil {
		t.Fatalf("buildctl build failed: %v\n%s\nbuildkitd's log:\n%s", err, out, w.d.logTail())
	}
	w.assertNoSecrets(t, out)
	return out
}

// assertNoSecrets fails if a client's output or the daemon's log holds the
// job's request token or an ID token the CI issued.
func (w *world) assertNoSecrets(t *testing.T, out string) {
	t.Helper()
	log := w.d.logTail()
	for i, secret := range append([]string{requestToken}, w.ci.Issued()...) {
		if strings.Contains(out, secret) || strings.Contains(log, secret) {
			t.Errorf("secret %d (0 is the request token, the rest ID tokens) is in the client's output or buildkitd's log", i)
		}
	}
}

// pushedDigest returns the image digest the latest build wrote to its
// metadata file.
func (w *world) pushedDigest(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(w.metadataFile)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Digest string `json:"containerimage.digest"`
	}
	if err := json.Unmarshal(b, &meta); err != nil || meta.Digest == "" {
		t.Fatalf("metadata file has no containerimage.digest (%v): %s", err, b)
	}
	return meta.Digest
}

// assertInRegistry checks, with a token of its own, that ref is in the
// registry with digest (any digest when digest is "").
func (w *world) assertInRegistry(t *testing.T, ref, digest string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := &authn.Basic{Username: "oauth2accesstoken", Password: w.g.IssueToken(inspector)}
	desc, err := remote.Head(r, remote.WithAuth(auth))
	if err != nil {
		t.Fatalf("%s is not in the registry: %v", ref, err)
	}
	if digest != "" && desc.Digest.String() != digest {
		t.Errorf("%s has digest %s; the build reported %s", ref, desc.Digest, digest)
	}
}

// helperCallsSince returns how often each host was asked for since the
// first `before` calls.
func (w *world) helperCallsSince(t *testing.T, before int) map[string]int {
	t.Helper()
	perHost := map[string]int{}
	for _, c := range w.u.helperCalls()[before:] {
		perHost[c]++
	}
	return perHost
}

// assertOneCallPerHost checks that one client run asked the helper exactly
// once for each registry it pushed to or pulled from, and for nothing else.
func (w *world) assertOneCallPerHost(t *testing.T, before int, hosts ...string) {
	t.Helper()
	got := w.helperCallsSince(t, before)
	want := map[string]int{}
	for _, h := range hosts {
		want["get "+h] = 1
	}
	t.Logf("helper calls in this run: %v", got)
	if !maps.Equal(got, want) {
		t.Errorf("helper calls in this run = %v; want one get per host: %v", got, slices.Sorted(maps.Keys(want)))
	}
}

// TestBuildKitPushesImageAndCacheWithTheHelper builds with buildctl and
// buildkitd, pushes the image to one loopback registry and exports the
// registry cache to another, then builds again from the imported cache,
// and drives docker buildx --push through a remote driver at the same
// daemon, all in a keyless GitHub Actions job: the helper finds the job's
// ID token, exchanges it at STS and impersonates pusher. Every client run
// asks the helper once per host, and every token the registries see is one
// the fake IAM issued with at least five minutes left.
func TestBuildKitPushesImageAndCacheWithTheHelper(t *testing.T) {
	w := newWorld(t)
	imageRef := w.images.Host() + "/p/app"
	cacheRef := w.cache.Host() + "/p/app:buildcache"

	t.Run("buildctl pushes the image and exports the cache", func(t *testing.T) {
		before := len(w.u.helperCalls())
		w.buildctl(t,
			"--output", "type=image,name="+imageRef+":v1,push=true",
			"--export-cache", "type=registry,ref="+cacheRef+",mode=max",
		)
		w.assertOneCallPerHost(t, before, w.images.Host(), w.cache.Host())
		w.gd.check(t)
		w.assertInRegistry(t, imageRef+":v1", w.pushedDigest(t))
		w.assertInRegistry(t, cacheRef, "")
	})

	t.Run("buildctl builds from the imported cache and pushes again", func(t *testing.T) {
		// Without its local cache the daemon can only take the COPY step
		// from the registry cache, which it pulls with the helper's token.
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		if out, err := w.u.run(ctx, tools.buildctl, "--addr", w.d.Addr, "prune", "--all"); err != nil {
			t.Fatalf("buildctl prune --all: %v\n%s", err, out)
		}
		before := len(w.u.helperCalls())
		out := w.buildctl(t,
			"--output", "type=image,name="+imageRef+":v2,push=true",
			"--import-cache", "type=registry,ref="+cacheRef,
		)
		if !strings.Contains(out, "CACHED") {
			t.Errorf("the build did not use the imported registry cache (no CACHED step):\n%s", out)
		}
		w.assertOneCallPerHost(t, before, w.images.Host(), w.cache.Host())
		w.gd.check(t)
		w.assertInRegistry(t, imageRef+":v2", w.pushedDigest(t))
	})

	t.Run("docker buildx build --push through the remote driver", func(t *testing.T) {
		docker := requireTool(t, "docker", "the docker CLI; CI machines have it")
		plugins := filepath.Join(w.u.dockerConfig, "cli-plugins")
		if err := os.MkdirAll(plugins, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(tools.buildx, filepath.Join(plugins, "docker-buildx")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		// No docker daemon is involved: the remote driver talks to buildkitd.
		w.u.set("DOCKER_HOST", "unix://"+filepath.Join(w.u.dir, "no-docker-daemon.sock"))
		if out, err := w.u.run(ctx, docker, "buildx", "create", "--name", "remote-buildkitd", "--driver", "remote", w.d.Addr); err != nil {
			t.Fatalf("docker buildx create --driver remote: %v\n%s", err, out)
		}
		before := len(w.u.helperCalls())
		out, err := w.u.run(ctx, docker, "buildx", "build", "--builder", "remote-buildkitd",
			"--push", "--tag", imageRef+":buildx",
			"--cache-to", "type=registry,ref="+w.cache.Host()+"/p/app:buildx-cache,mode=max",
			"--metadata-file", w.metadataFile,
			"--progress", "plain",
			w.contextDir)
		if err != nil {
			t.Fatalf("docker buildx build --push: %v\n%s\nbuildkitd's log:\n%s", err, out, w.d.logTail())
		}
		w.assertNoSecrets(t, out)
		w.assertOneCallPerHost(t, before, w.images.Host(), w.cache.Host())
		w.gd.check(t)
		w.assertInRegistry(t, imageRef+":buildx", w.pushedDigest(t))
	})

	// Every client run above shares the helper's token cache: one mint,
	// from one ID token, one exchange at STS and one impersonation.
	idTokens, sts, iam, all := w.ci.Count(), w.g.Count("sts"), w.g.Count("iam"), w.g.Count("any")
	t.Logf("GitHub's ID-token endpoint saw %d request(s); fake Google %d STS, %d IAM, %d in all", idTokens, sts, iam, all)
	if idTokens != 1 || sts != 1 || iam != 1 || all != 2 {
		t.Errorf("%d ID-token requests, %d STS exchanges, %d IAM calls, %d Google requests in all; want 1, 1, 1, 2 (the helper's cache serves the rest)", idTokens, sts, iam, all)
	}
}
