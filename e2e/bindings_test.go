package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBindingsPerRegistryIdentity binds a key file (configure-docker), an
// external_account file and an impersonation target (the CI variable) to
// three hosts, with a default source for the rest, and checks through the
// built binary that each host gets its own identity's token, that doctor
// explains it, and that docker login, erase, --remove and --forget-bindings
// behave.
func TestBindingsPerRegistryIdentity(t *testing.T) {
	t.Parallel()
	const (
		dev      = "dev@proj.iam.gserviceaccount.com"
		release  = "release@proj.iam.gserviceaccount.com"
		pusher   = "pusher@proj.iam.gserviceaccount.com"
		stored   = "stored@proj.iam.gserviceaccount.com"
		audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/gh"
	)
	e, g, _ := cmdsKeyEnv(t, dev)
	dir := t.TempDir()
	releaseKey := g.WriteServiceAccountKey(t, dir, release)
	subject := filepath.Join(dir, "oidc.jwt")
	if err := os.WriteFile(subject, []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2ln"), 0o600); err != nil {
		t.Fatal(err)
	}
	federated := filepath.Join(dir, "federated.json")
	if err := os.WriteFile(federated, g.ExternalAccountJSON(subject, audience), 0o600); err != nil {
		t.Fatal(err)
	}
	e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())

	r := cmdsMustRun(t, e, "", "configure-docker", "--registries", "europe-docker.pkg.dev", "--bind-credentials", releaseKey)
	if !strings.Contains(r.Stderr, "binding for europe-docker.pkg.dev: credential file "+releaseKey+" ("+release+")") {
		t.Errorf("configure-docker does not report the binding:\n%s", r.Stderr)
	}
	cmdsMustRun(t, e, "", "configure-docker", "--registries", "asia-docker.pkg.dev", "--bind-credentials", federated)
	e.Set("DOCKER_CREDENTIAL_GCP_BINDINGS", "us-docker.pkg.dev=impersonate:"+pusher)

	issued := func(host, tok, principal, via, source string) {
		t.Helper()
		is, ok := g.Issued(tok)
		if !ok || is.Principal != principal || is.Via != via || is.Source != source {
			t.Errorf("%s: token issued %+v (known %v), want to %s via %s (bearer %q)", host, is, ok, principal, via, source)
		}
	}
	eu := cmdsGet(t, e, "https://europe-docker.pkg.dev")
	us := cmdsGet(t, e, "us-docker.pkg.dev/proj/repo/img")
	asia := cmdsGet(t, e, "asia-docker.pkg.dev")
	gcr := cmdsGet(t, e, "gcr.io")
	issued("europe-docker.pkg.dev", eu, release, "jwt", "")
	issued("us-docker.pkg.dev", us, pusher, "iam", dev)
	issued("asia-docker.pkg.dev", asia, audience, "sts", "")
	issued("gcr.io", gcr, dev, "jwt", "")
	if other := cmdsGet(t, e, "eu.gcr.io"); other != gcr {
		t.Error("an unbound host did not get the default identity's (cached) token")
	}
	// Warm: every host from the cache, no request at all.
	before := g.Count("any")
	if cmdsGet(t, e, "europe-docker.pkg.dev") != eu || cmdsGet(t, e, "us-docker.pkg.dev") != us || cmdsGet(t, e, "gcr.io") != gcr {
		t.Error("a warm get returned another token")
	}
	if n := g.Count("any") - before; n != 0 {
		t.Errorf("warm gets sent %d requests", n)
	}

	// Other commands that serve hosts honour the bindings too.
	auths := cmdsDockerConfigAuths(t, []byte(cmdsMustRun(t, e, "", "dockerconfig", "--registries", "europe-docker.pkg.dev,us-docker.pkg.dev,gcr.io").Stdout))
	for host, want := range map[string]string{"europe-docker.pkg.dev": eu, "us-docker.pkg.dev": us, "gcr.io": gcr} {
		if auths[host] != "oauth2accesstoken:"+want {
			t.Errorf("dockerconfig: %s does not carry its own identity's token", host)
		}
	}
	if tok := strings.TrimSpace(cmdsMustRun(t, e, "", "token", "--registry", "europe-docker.pkg.dev").Stdout); tok != eu {
		t.Error("token --registry europe-docker.pkg.dev does not print the bound identity's token")
	}

	// doctor names the binding, its origin, and that other hosts do not see it.
	out := cmdsMustRun(t, e, "", "doctor", "--registry", "europe-docker.pkg.dev").Stdout
	for _, want := range []string{
		"europe-docker.pkg.dev is bound to credential file " + releaseKey + " (from settings file ",
		"bindings of other hosts, which europe-docker.pkg.dev never uses: asia-docker.pkg.dev, us-docker.pkg.dev",
		"used  credential file " + releaseKey + " bound to europe-docker.pkg.dev",
		"principal: " + release,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor --registry europe-docker.pkg.dev lacks %q:\n%s", want, out)
		}
	}
	out = cmdsMustRun(t, e, "", "doctor", "--registry", "us-docker.pkg.dev").Stdout
	for _, want := range []string{"us-docker.pkg.dev is bound to the default source chain, impersonating " + pusher + " (from DOCKER_CREDENTIAL_GCP_BINDINGS)", "impersonating: " + pusher} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor --registry us-docker.pkg.dev lacks %q:\n%s", want, out)
		}
	}
	out = cmdsMustRun(t, e, "", "doctor", "--registry", "gcr.io").Stdout
	if !strings.Contains(out, "none for gcr.io: it uses the default source chain") || !strings.Contains(out, "principal: "+dev) {
		t.Errorf("doctor --registry gcr.io:\n%s", out)
	}
	for _, secret := range []string{eu, us, asia, gcr} {
		if strings.Contains(out, secret) {
			t.Error("doctor printed a token")
		}
	}

	// A credential stored with docker login comes before the binding;
	// erase removes it and drops its cached token, and the binding serves again.
	storedKey, err := os.ReadFile(g.WriteServiceAccountKey(t, dir, stored))
	if err != nil {
		t.Fatal(err)
	}
	cmdsMustRun(t, e, `{"ServerURL":"europe-docker.pkg.dev","Username":"_json_key","Secret":`+jsonString(string(storedKey))+`}`, "store")
	issued("europe-docker.pkg.dev (stored)", cmdsGet(t, e, "europe-docker.pkg.dev"), stored, "jwt", "")
	cmdsMustRun(t, e, "europe-docker.pkg.dev\n", "erase")
	again := cmdsGet(t, e, "europe-docker.pkg.dev")
	issued("europe-docker.pkg.dev (after erase)", again, release, "jwt", "")
	if again == eu {
		t.Error("erase did not drop the binding's cached token")
	}
	if cmdsGet(t, e, "gcr.io") != gcr {
		t.Error("erase of a bound host dropped the default identity's cached token")
	}

	// A second docker config routes the bound host too. --remove in the
	// first keeps the binding, which the second still relies on, and says
	// so; --forget-bindings forgets it, and the host gets the default.
	second := t.TempDir()
	e.Set("DOCKER_CONFIG", second)
	cmdsMustRun(t, e, "", "configure-docker", "--registries", "europe-docker.pkg.dev")
	e.Set("DOCKER_CONFIG", e.DockerConfig)
	r = cmdsMustRun(t, e, "", "configure-docker", "--remove", "--registries", "europe-docker.pkg.dev")
	if !strings.Contains(r.Stderr, "note: kept the bindings of europe-docker.pkg.dev") || strings.Contains(r.Stderr, "forgot the binding") {
		t.Errorf("--remove does not say it kept the binding:\n%s", r.Stderr)
	}
	if tok := cmdsGet(t, e, "europe-docker.pkg.dev"); tok != again {
		t.Error("after --remove in one docker config, europe-docker.pkg.dev (still routed by another) lost its bound identity")
	}
	r = cmdsMustRun(t, e, "", "configure-docker", "--remove", "--registries", "europe-docker.pkg.dev", "--forget-bindings")
	if !strings.Contains(r.Stderr, "forgot the binding of europe-docker.pkg.dev") {
		t.Errorf("--remove --forget-bindings does not say it dropped the binding:\n%s", r.Stderr)
	}
	if tok := cmdsGet(t, e, "europe-docker.pkg.dev"); tok != gcr {
		t.Errorf("after --forget-bindings europe-docker.pkg.dev did not get the default identity's token")
	}
	issued("asia-docker.pkg.dev (still bound)", cmdsGet(t, e, "asia-docker.pkg.dev"), audience, "sts", "")
}

// TestBindingsBadEnvironment: a malformed DOCKER_CREDENTIAL_GCP_BINDINGS is
// one clear line and exit 1 for get, never a panic, never the spec quoted.
func TestBindingsBadEnvironment(t *testing.T) {
	t.Parallel()
	e, _, _ := cmdsKeyEnv(t, "dev@proj.iam.gserviceaccount.com")
	for value, want := range map[string]string{
		"gcr.io":                        `entry 1 has no "="`,
		"*.pkg.dev=/k.json":             "wildcards are not supported",
		"gcr.io=-----BEGIN PRIVATE KEY": "must be an absolute path",
		"example.com=/k.json":           "not a registry this helper serves",
	} {
		e.Set("DOCKER_CREDENTIAL_GCP_BINDINGS", value)
		r := e.Run("gcr.io\n", "get")
		out := strings.TrimSpace(r.Stdout)
		if r.Code != 1 || strings.Contains(out, "\n") || !strings.Contains(out, "DOCKER_CREDENTIAL_GCP_BINDINGS") || !strings.Contains(out, want) || strings.Contains(out, "PRIVATE") || strings.Contains(r.Stderr, "goroutine") {
			t.Errorf("%s=%q: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", "DOCKER_CREDENTIAL_GCP_BINDINGS", value, r.Code, r.Stdout, r.Stderr, want)
		}
	}
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// BenchmarkBindingWarmGet measures what a binding adds to docker's common
// case, interleaving whole-process runs: version, a warm get of an unbound
// host, of a host bound to a key file and of a host bound to an
// impersonation target. Reported as medians (ms) and ratios to version.
func BenchmarkBindingWarmGet(b *testing.B) {
	e, g := benchKeyEnv(b)
	e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
	key := g.WriteServiceAccountKey(b, b.TempDir(), "release@proj.iam.gserviceaccount.com")
	e.Set("DOCKER_CREDENTIAL_GCP_BINDINGS", "europe-docker.pkg.dev="+key+";us-docker.pkg.dev=impersonate:pusher@proj.iam.gserviceaccount.com")
	runs := []struct {
		name, stdin string
		args        []string
		times       []time.Duration
	}{
		{name: "version", args: []string{"version"}},
		{name: "unbound", stdin: "gcr.io", args: []string{"get"}},
		{name: "bound-key", stdin: "europe-docker.pkg.dev", args: []string{"get"}},
		{name: "bound-impersonate", stdin: "us-docker.pkg.dev", args: []string{"get"}},
	}
	for _, r := range runs {
		benchRun(b, e, r.stdin, r.args...)
	}
	before := g.Count("any")
	i := 0
	for b.Loop() {
		for j := range runs {
			r := &runs[(i+j)%len(runs)]
			r.times = append(r.times, benchRun(b, e, r.stdin, r.args...))
		}
		i++
	}
	if n := g.Count("any") - before; n != 0 {
		b.Fatalf("warm gets sent %d requests", n)
	}
	version := benchMedian(runs[0].times)
	for _, r := range runs {
		m := benchMedian(r.times)
		b.ReportMetric(benchMs(m), r.name+"-ms")
		if r.name != "version" {
			b.ReportMetric(float64(m)/float64(version), r.name+"/version")
		}
	}
	b.ReportMetric(0, "ns/op")
}
