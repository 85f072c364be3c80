package kubelet

import (
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

const (
	// issuer is the cluster's service-account token issuer.
	issuer = "https://kubernetes.default.svc.cluster.local"
	// wifProvider is the workload identity pool provider that trusts it.
	wifProvider = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/k8s/providers/my-cluster"
	// audience is the kubelet's serviceAccountTokenAudience, as the README has it.
	audience = "https:" + wifProvider
	// nodeAccount is the node's own Google service account (its key file).
	nodeAccount = "node-puller@my-project.iam.gserviceaccount.com"
	// gsa is the Google service account pods' annotations name.
	gsa = "team-puller@my-project.iam.gserviceaccount.com"
	// annotationKey is the annotation naming it.
	annotationKey = "iam.gke.io/gcp-service-account"
)

// federated is the STS principal of namespace/name's tokens.
func federated(namespace, name string) string {
	return "principal://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/k8s/subject/system:serviceaccount:" + namespace + ":" + name
}

// world is one node with its fakes: Google (token endpoint, STS, IAM),
// the Kubernetes API server, and the node's key file.
type world struct {
	*node
	google *fake.Google
	api    *apiServer
	key    string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	g := fake.NewGoogle(t)
	w := &world{node: newNode(t, fake.RefusedHost(t)), google: g, api: newAPIServer(t, g)}
	w.key = g.WriteServiceAccountKey(t, t.TempDir(), nodeAccount)
	return w
}

// run starts a kubelet with config and does pulls; the kubelet must start.
func (w *world) run(config string, pulls ...pull) ([]pulled, string) {
	w.t.Helper()
	res, log := w.kubelet(config, w.api.srv.URL, pulls...)
	w.t.Cleanup(func() {
		if w.t.Failed() {
			w.t.Logf("the kubelet's log:\n%s", log)
		}
	})
	if res.StartError != "" {
		w.t.Fatalf("the kubelet refused the config: %s\n%s", res.StartError, config)
	}
	return res.Pulls, log
}

// nodeConfig is section A's config: the node's own identity.
func (w *world) nodeConfig() string {
	return `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: docker-credential-gcp
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    args: ["kubelet-credential-provider"]
    matchImages: ["gcr.io", "*.gcr.io", "*.pkg.dev", "*.*.rep.pkg.dev", "registry.example.com"]
    defaultCacheDuration: "50m"
    env:
      - name: GOOGLE_APPLICATION_CREDENTIALS
        value: ` + w.key + "\n"
}

// podConfig is section A2's config with the given tokenAttributes lines.
func (w *world) podConfig(tokenAttributes ...string) string {
	return `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: docker-credential-gcp
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    args:
      - kubelet-credential-provider
      - --workload-identity-provider=` + wifProvider + `
    matchImages: ["gcr.io", "*.gcr.io", "*.pkg.dev", "*.*.rep.pkg.dev"]
    defaultCacheDuration: "50m"
    tokenAttributes:
      serviceAccountTokenAudience: "` + audience + `"
      ` + strings.Join(tokenAttributes, "\n      ") + `
    env:
      - name: DOCKER_CREDENTIAL_GCP_STS_ENDPOINT
        value: ` + w.google.STSURL() + `
      - name: DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT
        value: ` + w.google.IAMURL() + `
      - name: GOOGLE_APPLICATION_CREDENTIALS
        value: ` + w.key + "\n"
}

// issued checks that p holds one oauth2accesstoken credential that the
// fake issued to principal via ("jwt", "sts" or "iam"), and returns it.
func (w *world) issued(what string, p pulled, principal, via string) string {
	w.t.Helper()
	if !p.Found || len(p.Auth) != 1 || p.Auth[0].Username != "oauth2accesstoken" {
		w.t.Errorf("%s: the kubelet found %+v, want one oauth2accesstoken credential", what, p)
		return ""
	}
	is, ok := w.google.Issued(p.Auth[0].Password)
	if !ok || is.Principal != principal || is.Via != via {
		w.t.Errorf("%s: the password is %+v (issued %v), want a token for %s via %s", what, is, ok, principal, via)
	}
	return p.Auth[0].Password
}

// none checks that the kubelet found no credentials for p.
func none(t *testing.T, what string, p pulled) {
	t.Helper()
	if p.Found || len(p.Auth) != 0 {
		t.Errorf("%s: the kubelet found %+v, want no credentials", what, p)
	}
}

// noSecrets checks that the kubelet's log holds none of the service-account
// tokens the API server issued, nor their parts, nor the Google tokens.
func (w *world) noSecrets(log string, googleTokens ...string) {
	w.t.Helper()
	for _, tok := range w.api.tokens() {
		for _, part := range append(strings.Split(tok, ".")[1:], tok) {
			if strings.Contains(log, part) {
				w.t.Errorf("the kubelet's log holds a service-account token")
			}
		}
	}
	for _, tok := range googleTokens {
		if tok != "" && strings.Contains(log, tok) {
			w.t.Errorf("the kubelet's log holds a Google access token")
		}
	}
}

// counts checks the plugin runs in the log and the STS and IAM calls.
func (w *world) counts(what, log string, plugin, sts, iam int) {
	w.t.Helper()
	if got := execs(log); got != plugin {
		w.t.Errorf("%s: the kubelet ran the plugin %d times, want %d", what, got, plugin)
	}
	if got := w.google.Count("sts"); got != sts {
		w.t.Errorf("%s: %d STS exchanges, want %d", what, got, sts)
	}
	if got := w.google.Count("iam"); got != iam {
		w.t.Errorf("%s: %d IAM impersonations, want %d", what, got, iam)
	}
}

func TestNodeIdentity(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pulls, log := w.run(w.nodeConfig(),
		pull{Namespace: "default", Pod: "web", PodUID: podUID("web"), ServiceAccount: "default", Image: "gcr.io/my-project/app:1.0"},
		pull{Namespace: "default", Pod: "web", PodUID: podUID("web"), ServiceAccount: "default", Image: "gcr.io/my-project/other@sha256:" + strings.Repeat("ab", 32)},
		pull{Namespace: "default", Pod: "web", PodUID: podUID("web"), ServiceAccount: "default", Image: "eu.gcr.io/my-project/app"},
		pull{Namespace: "default", Pod: "web", PodUID: podUID("web"), ServiceAccount: "default", Image: "europe-docker.pkg.dev/my-project/images/app:1.0"},
		pull{Namespace: "default", Pod: "web", PodUID: podUID("web"), ServiceAccount: "default", Image: "docker.europe-west1.rep.pkg.dev/my-project/images/app:1.0"},
		pull{Namespace: "default", Pod: "web", PodUID: podUID("web"), ServiceAccount: "default", Image: "registry.example.com/team/app:1.0"},
		pull{Namespace: "default", Pod: "web", PodUID: podUID("web"), ServiceAccount: "default", Image: "alpine:3"},
	)
	var toks []string
	for i, what := range []string{"gcr.io", "gcr.io again", "eu.gcr.io", "europe-docker.pkg.dev", "docker.europe-west1.rep.pkg.dev"} {
		toks = append(toks, w.issued(what, pulls[i], nodeAccount, "jwt"))
	}
	none(t, "registry.example.com (matched, not Google's)", pulls[5])
	none(t, "docker.io (not matched)", pulls[6])
	// The kubelet caches per registry: the second gcr.io image runs no
	// plugin; registry.example.com runs it and gets an empty auth.
	w.counts("node identity", log, 5, 0, 0)
	if n := w.google.Count("jwt"); n != 1 {
		t.Errorf("%d token mints for five registries, want 1 (the binary's cache)", n)
	}
	if gets, reqs := w.api.counts(); gets+reqs != 0 {
		t.Errorf("%d ServiceAccount GETs and %d TokenRequests without tokenAttributes", gets, reqs)
	}
	w.noSecrets(log, toks...)
}

func TestPodIdentityServiceAccountCache(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.api.addServiceAccount("team-a", "builder", nil, true)
	w.api.addServiceAccount("team-a", "puller", map[string]string{annotationKey: gsa, "unrelated.example/key": "x"}, true)
	const image = "europe-docker.pkg.dev/my-project/images/app:1.0"
	pulls, log := w.run(w.podConfig("cacheType: ServiceAccount", "requireServiceAccount: true", "optionalServiceAccountAnnotationKeys: ["+annotationKey+"]"),
		pull{Namespace: "team-a", Pod: "a1", PodUID: podUID("a1"), ServiceAccount: "builder", Image: image},
		pull{Namespace: "team-a", Pod: "a2", PodUID: podUID("a2"), ServiceAccount: "builder", Image: image},
		pull{Namespace: "team-a", Pod: "p1", PodUID: podUID("p1"), ServiceAccount: "puller", Image: image},
		pull{Namespace: "team-a", Pod: "static", PodUID: podUID("static"), Image: image},
	)
	first := w.issued("no annotation", pulls[0], federated("team-a", "builder"), "sts")
	if second := w.issued("another pod of the account", pulls[1], federated("team-a", "builder"), "sts"); second != first {
		t.Error("cacheType ServiceAccount: another pod of the account was not served the kubelet's cached answer")
	}
	imp := w.issued("annotated account", pulls[2], gsa, "iam")
	if is, _ := w.google.Issued(imp); is.Source != federated("team-a", "puller") {
		t.Errorf("impersonation authorised by %q, want %s", is.Source, federated("team-a", "puller"))
	}
	// requireServiceAccount: true: a pod without one never reaches the
	// plugin, so it does not fall back to the node's identity.
	none(t, "a pod without a service account", pulls[3])
	w.counts("ServiceAccount cache", log, 2, 2, 1)
	if n := w.google.Count("jwt"); n != 0 {
		t.Errorf("the node's key minted %d tokens for pods", n)
	}
	if gets, reqs := w.api.counts(); gets != 3 || reqs != 3 {
		t.Errorf("%d ServiceAccount GETs and %d TokenRequests, want 3 each (one per pod with an account)", gets, reqs)
	}
	w.noSecrets(log, first, imp)
}

func TestPodIdentityTokenCache(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.api.addServiceAccount("team-b", "builder", nil, true)
	const image = "us-docker.pkg.dev/my-project/images/app:2.0"
	pod := func(name string) pull {
		return pull{Namespace: "team-b", Pod: name, PodUID: podUID(name), ServiceAccount: "builder", Image: image}
	}
	config := w.podConfig("cacheType: Token", "requireServiceAccount: true", "optionalServiceAccountAnnotationKeys: ["+annotationKey+"]")
	pulls, log := w.run(config, pod("b1"), pod("b1"), pod("b2"))
	b1 := w.issued("first pod", pulls[0], federated("team-b", "builder"), "sts")
	if again := w.issued("first pod again", pulls[1], federated("team-b", "builder"), "sts"); again != b1 {
		t.Error("cacheType Token: the same pod's token was not served the kubelet's cached answer")
	}
	b2 := w.issued("second pod", pulls[2], federated("team-b", "builder"), "sts")
	// Each pod's token runs the plugin once and is exchanged once.
	w.counts("Token cache", log, 2, 2, 0)
	w.noSecrets(log, b1, b2)
}

func TestPodIdentityForgedTokenReachesSTS(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.api.addServiceAccount("team-b", "builder", nil, true)
	const image = "us-docker.pkg.dev/my-project/images/app:2.0"
	config := w.podConfig("cacheType: Token", "requireServiceAccount: true", "optionalServiceAccountAnnotationKeys: ["+annotationKey+"]")
	pulls, _ := w.run(config, pull{Namespace: "team-b", Pod: "b1", PodUID: podUID("b1"), ServiceAccount: "builder", Image: image})
	genuine := w.issued("genuine token", pulls[0], federated("team-b", "builder"), "sts")

	// The next token has b1's claims (its service account, its pod) and
	// another signature. The binary's cache holds a Google token for those
	// claims; the forgery must reach STS, which refuses it.
	if w.t.Failed() {
		return
	}
	w.api.forgeNext("team-b", "builder", w.api.tokens()[0])
	pulls, log := w.run(config, pull{Namespace: "team-b", Pod: "b2", PodUID: podUID("b2"), ServiceAccount: "builder", Image: image})
	none(t, "forged token", pulls[0])
	w.counts("forged token", log, 1, 2, 0)
	if !strings.Contains(log, "STS refused the token exchange: HTTP 400") {
		t.Errorf("the kubelet's log does not say STS refused:\n%s", log)
	}
	w.noSecrets(log, genuine)
}

func TestPodIdentityRequiredAnnotation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.api.addServiceAccount("team-c", "plain", nil, true)
	w.api.addServiceAccount("team-c", "puller", map[string]string{annotationKey: gsa}, true)
	const image = "gcr.io/my-project/app:3.0"
	pulls, log := w.run(w.podConfig("cacheType: ServiceAccount", "requireServiceAccount: true", "requiredServiceAccountAnnotationKeys: ["+annotationKey+"]"),
		pull{Namespace: "team-c", Pod: "c1", PodUID: podUID("c1"), ServiceAccount: "plain", Image: image},
		pull{Namespace: "team-c", Pod: "c2", PodUID: podUID("c2"), ServiceAccount: "puller", Image: image},
	)
	none(t, "an account without the required annotation", pulls[0])
	tok := w.issued("an account with it", pulls[1], gsa, "iam")
	w.counts("required annotation", log, 1, 1, 1)
	if _, reqs := w.api.counts(); reqs != 1 {
		t.Errorf("%d TokenRequests, want 1: none for the account without the annotation", reqs)
	}
	w.noSecrets(log, tok)
}

func TestPodIdentityServiceAccountOptional(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.api.addServiceAccount("team-d", "builder", nil, true)
	const image = "europe-docker.pkg.dev/my-project/images/app:4.0"
	pulls, log := w.run(w.podConfig("cacheType: ServiceAccount", "requireServiceAccount: false", "optionalServiceAccountAnnotationKeys: ["+annotationKey+"]"),
		pull{Namespace: "kube-system", Pod: "static-web", PodUID: podUID("static-web"), Image: image},
		pull{Namespace: "team-d", Pod: "d1", PodUID: podUID("d1"), ServiceAccount: "builder", Image: image},
	)
	// requireServiceAccount: false: a pod without an account runs the
	// plugin without a token, which pulls as the node.
	node := w.issued("static pod", pulls[0], nodeAccount, "jwt")
	pod := w.issued("pod with an account", pulls[1], federated("team-d", "builder"), "sts")
	w.counts("service account optional", log, 2, 1, 0)
	w.noSecrets(log, node, pod)
}

func TestPodIdentitySTSRefusal(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// The pool does not trust this account's tokens.
	w.api.addServiceAccount("team-e", "stranger", map[string]string{annotationKey: gsa}, false)
	const image = "europe-docker.pkg.dev/my-project/images/app:5.0"
	pulls, log := w.run(w.podConfig("cacheType: ServiceAccount", "requireServiceAccount: true", "optionalServiceAccountAnnotationKeys: ["+annotationKey+"]"),
		pull{Namespace: "team-e", Pod: "e1", PodUID: podUID("e1"), ServiceAccount: "stranger", Image: image},
		pull{Namespace: "team-e", Pod: "e1", PodUID: podUID("e1"), ServiceAccount: "stranger", Image: image},
	)
	none(t, "refused exchange", pulls[0])
	none(t, "refused exchange, again", pulls[1])
	// A failure is not cached: the second pull runs the plugin again. No
	// impersonation without an exchange, and no fall-back to the node.
	w.counts("STS refusal", log, 2, 2, 0)
	if n := w.google.Count("jwt"); n != 0 {
		t.Errorf("the node's key minted %d tokens after a refused exchange", n)
	}
	if !strings.Contains(log, "STS refused the token exchange: HTTP 400") {
		t.Errorf("the kubelet's log does not say STS refused:\n%s", log)
	}
	w.noSecrets(log)
}
