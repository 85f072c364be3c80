package e2e

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// The kubelet's pod identity (KEP-4412), through the built binary: the
// request carries the pod's service-account token and annotations exactly
// as credentialprovider.kubelet.k8s.io/v1 sends them.

const (
	podProvider = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/k8s/providers/cluster"
	podIssuer   = "https://kubernetes.default.svc.cluster.local"
	podAudience = "docker-credential-gcp"
	podNode     = "node@proj.iam.gserviceaccount.com"
)

// podPrincipal is the federated principal of a Kubernetes service account.
func podPrincipal(namespace, name string) string {
	return "principal://iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/k8s/subject/system:serviceaccount:" + namespace + ":" + name
}

// podRequest is a v1 CredentialProviderRequest as the kubelet writes it.
func podRequest(t *testing.T, image, saToken string, annotations map[string]string) string {
	t.Helper()
	req := map[string]any{
		"apiVersion": "credentialprovider.kubelet.k8s.io/v1",
		"kind":       "CredentialProviderRequest",
		"image":      image,
	}
	if saToken != "" {
		if annotations == nil {
			annotations = map[string]string{}
		}
		req["serviceAccountToken"] = saToken
		req["serviceAccountAnnotations"] = annotations
	}
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// podEnv is a node whose own credential is a key for podNode, with STS and
// IAM pointed at the fake, and the provider configured through the env.
func podEnv(t *testing.T) (*Env, *fake.Google) {
	t.Helper()
	e, g, _ := cmdsKeyEnv(t, podNode)
	e.Set("DOCKER_CREDENTIAL_GCP_STS_ENDPOINT", g.STSURL())
	e.Set("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", g.IAMURL())
	e.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", podProvider)
	return e, g
}

// podSAToken is a fresh token for namespace/name that the fake STS trusts.
func podSAToken(g *fake.Google, namespace, name string) string {
	tok := fake.ServiceAccountToken(podIssuer, namespace, name, namespace+"-"+name+"-uid", podAudience, time.Now().Add(time.Hour))
	g.TrustSubjectToken(podProvider, tok)
	return tok
}

// podFail runs a request that must fail: exit 1, nothing on stdout, one
// line on stderr containing want and none of secrets.
func podFail(t *testing.T, e *Env, req, want string, secrets ...string) {
	t.Helper()
	r := e.Run(req, "kubelet-credential-provider")
	msg := strings.TrimSpace(r.Stderr)
	if r.Code != 1 || r.Stdout != "" || msg == "" || strings.Contains(msg, "\n") || !strings.Contains(msg, want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one line containing %q", r.Code, r.Stdout, r.Stderr, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(r.Stdout+r.Stderr, s) {
			t.Errorf("output leaks a secret: %q", msg)
		}
	}
}

func TestKubeletPodIdentity(t *testing.T) {
	t.Parallel()
	e, g := podEnv(t)
	const image = "europe-docker.pkg.dev/team-a/images/app:1.0"
	const gsa = "team-a-puller@proj.iam.gserviceaccount.com"

	t.Run("without a token: the node's identity, as before", func(t *testing.T) {
		resp := srvKubelet(t, e, "gcr.io/p/i:1")
		cmdsIssued(t, g, resp.Auth["gcr.io"].Password, podNode)
		// The same with the token fields present but empty.
		resp = podRun(t, e, `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"gcr.io/p/i:1","serviceAccountToken":"","serviceAccountAnnotations":{}}`)
		cmdsIssued(t, g, resp.Auth["gcr.io"].Password, podNode)
	})

	t.Run("token, no annotation: the federated principal", func(t *testing.T) {
		sa := podSAToken(g, "team-a", "builder")
		before := g.Count("jwt")
		resp := podRun(t, e, podRequest(t, image, sa, map[string]string{"unrelated.example/key": "x"}))
		a := resp.Auth["europe-docker.pkg.dev"]
		is, ok := g.Issued(a.Password)
		if len(resp.Auth) != 1 || a.Username != "oauth2accesstoken" || !ok || is.Via != "sts" || is.Principal != podPrincipal("team-a", "builder") {
			t.Errorf("auth %+v: issued %+v (%v), want an STS token for %s", resp.Auth, is, ok, podPrincipal("team-a", "builder"))
		}
		podCacheDuration(t, resp, is.Expiry)
		if g.Count("jwt") != before {
			t.Error("the node's key was used for a pod with a token")
		}
		// Warm: the same service account is served from the cache.
		any := g.Count("any")
		if again := podRun(t, e, podRequest(t, image, sa, nil)); again.Auth["europe-docker.pkg.dev"].Password != a.Password || g.Count("any") != any {
			t.Error("a second request for the same service account was not served from the cache")
		}
		// A token with the same claims but another signature (a forgery
		// copying them) is not served that cached token: it reaches STS,
		// which cannot verify it.
		forged := forgeSignature(sa)
		sts := g.Count("sts")
		podFail(t, e, podRequest(t, image, forged, nil), "STS refused the token exchange: HTTP 400", forged, a.Password)
		if g.Count("sts") != sts+1 {
			t.Errorf("%d STS calls for a forged token, want 1", g.Count("sts")-sts)
		}
		// Another genuine token of the same service account (another pod):
		// exchanged once, then served from the cache.
		other := podSAToken(g, "team-a", "builder")
		sts = g.Count("sts")
		first := podRun(t, e, podRequest(t, image, other, nil))
		again := podRun(t, e, podRequest(t, image, other, nil))
		if g.Count("sts") != sts+1 || first.Auth["europe-docker.pkg.dev"].Password != again.Auth["europe-docker.pkg.dev"].Password {
			t.Errorf("a new token of the account: %d STS calls over two requests, want 1", g.Count("sts")-sts)
		}
	})

	t.Run("token with the annotation: impersonates the Google service account", func(t *testing.T) {
		sa := podSAToken(g, "team-a", "puller")
		sts, iam := g.Count("sts"), g.Count("iam")
		resp := podRun(t, e, podRequest(t, image, sa, map[string]string{"iam.gke.io/gcp-service-account": gsa}))
		is, ok := g.Issued(resp.Auth["europe-docker.pkg.dev"].Password)
		if !ok || is.Via != "iam" || is.Principal != gsa || is.Source != podPrincipal("team-a", "puller") {
			t.Errorf("issued %+v (%v), want an IAM token for %s authorised by %s", is, ok, gsa, podPrincipal("team-a", "puller"))
		}
		if g.Count("sts")-sts != 1 || g.Count("iam")-iam != 1 {
			t.Errorf("%d STS and %d IAM calls, want 1 each", g.Count("sts")-sts, g.Count("iam")-iam)
		}
		podCacheDuration(t, resp, is.Expiry)
	})

	t.Run("annotation key from the flag", func(t *testing.T) {
		sa := podSAToken(g, "team-c", "puller")
		req := podRequest(t, image, sa, map[string]string{"example.com/gsa": gsa, "iam.gke.io/gcp-service-account": "other@proj.iam.gserviceaccount.com"})
		r := cmdsMustRun(t, e, req, "kubelet-credential-provider", "--service-account-annotation-key", "example.com/gsa")
		if !strings.Contains(r.Stdout, `"europe-docker.pkg.dev"`) {
			t.Fatalf("response %s", r.Stdout)
		}
		var resp srvKubeletResponse
		_ = json.Unmarshal([]byte(r.Stdout), &resp)
		if is, _ := g.Issued(resp.Auth["europe-docker.pkg.dev"].Password); is.Principal != gsa {
			t.Errorf("impersonated %q, want %s", is.Principal, gsa)
		}
	})

	t.Run("foreign registry: empty auth, no exchange", func(t *testing.T) {
		sa := podSAToken(g, "team-a", "other")
		any := g.Count("any")
		for _, img := range []string{"docker.io/library/alpine:3", "quay.io/p/i", "gcr.io.evil.com/p/i"} {
			if resp := podRun(t, e, podRequest(t, img, sa, map[string]string{"iam.gke.io/gcp-service-account": gsa})); len(resp.Auth) != 0 {
				t.Errorf("%s: auth %v", img, resp.Auth)
			}
		}
		if n := g.Count("any") - any; n != 0 {
			t.Errorf("%d requests to Google for foreign registries", n)
		}
	})

	t.Run("exchange refused: exit 1, no token, no fall-back", func(t *testing.T) {
		// A token the provider cannot verify (not registered): 400 invalid_grant.
		forged := fake.ServiceAccountToken(podIssuer, "team-a", "forged", "uid", podAudience, time.Now().Add(time.Hour))
		podFail(t, e, podRequest(t, image, forged, nil), "STS refused the token exchange: HTTP 400", forged)
		for _, status := range []int{401, 403} {
			sa := podSAToken(g, "team-d", "denied"+string(rune('0'+status%10)))
			g.RevokeWith(podPrincipal("team-d", "denied"+string(rune('0'+status%10))), status)
			podFail(t, e, podRequest(t, image, sa, nil), "STS refused the token exchange: HTTP 40", sa)
		}
	})

	t.Run("impersonation refused: exit 1", func(t *testing.T) {
		sa := podSAToken(g, "team-a", "sneaky")
		const denied = "prod-deployer@proj.iam.gserviceaccount.com"
		g.Revoke(denied)
		podFail(t, e, podRequest(t, image, sa, map[string]string{"iam.gke.io/gcp-service-account": denied}), "IAM refused to impersonate "+denied+": HTTP 403", sa)
	})

	t.Run("malformed token: clear error, no exchange", func(t *testing.T) {
		sts := g.Count("sts")
		for tok, want := range map[string]string{
			"not-a-jwt":                "is not a JWT (want three dot-separated parts",
			"a.!!!.c":                  "its payload is not base64url",
			"a.eyJzdWIiOiJhbGljZSJ9.c": "not a Kubernetes service-account token",
			fake.ServiceAccountToken(podIssuer, "ns", "old", "u", podAudience, time.Now().Add(-time.Minute)): "for ns/old expired at",
		} {
			podFail(t, e, podRequest(t, image, tok, nil), want, tok)
		}
		if g.Count("sts") != sts {
			t.Error("a malformed token was sent to STS")
		}
	})

	t.Run("token without a configured provider: error, not the node's identity", func(t *testing.T) {
		e2 := *e
		e2.vars = map[string]string{}
		for k, v := range e.vars {
			e2.vars[k] = v
		}
		e2.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", "")
		sa := podSAToken(g, "team-a", "builder")
		podFail(t, &e2, podRequest(t, image, sa, nil), "no workload identity provider is configured", sa)
		r := e2.Run(podRequest(t, image, sa, nil), "kubelet-credential-provider", "--workload-identity-provider", podProvider)
		if r.Code != 0 {
			t.Errorf("with --workload-identity-provider: exit %d, %s", r.Code, r.Stderr)
		}
		podFail(t, &e2, podRequest(t, image, sa, nil), "--workload-identity-provider", sa)
		e2.Set("DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER", "projects/123/pools/k8s")
		podFail(t, &e2, podRequest(t, image, sa, nil), "--workload-identity-provider: workload identity provider \"projects/123/pools/k8s\" is not //iam.googleapis.com/projects/PROJECT_NUMBER/", sa)
	})
}

// TestKubeletPodIdentityConcurrentMintOnce: the kubelet starts many
// providers at once for pods of one service account; one exchange and one
// impersonation serve them all.
func TestKubeletPodIdentityConcurrentMintOnce(t *testing.T) {
	t.Parallel()
	e, g := podEnv(t)
	g.SetLatency(150 * time.Millisecond)
	sa := podSAToken(g, "team-b", "builder")
	req := podRequest(t, "us-docker.pkg.dev/team-b/r/app:2", sa, map[string]string{"iam.gke.io/gcp-service-account": "team-b@proj.iam.gserviceaccount.com"})
	const n = 8
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.Run(req, "kubelet-credential-provider")
		}()
	}
	wg.Wait()
	var first string
	for i, r := range results {
		if r.Code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, r.Code, r.Stderr)
		}
		var resp srvKubeletResponse
		if err := json.Unmarshal([]byte(r.Stdout), &resp); err != nil {
			t.Fatal(err)
		}
		tok := resp.Auth["us-docker.pkg.dev"].Password
		if first == "" {
			first = tok
		}
		if tok != first {
			t.Errorf("run %d got another token", i)
		}
	}
	if sts, iam := g.Count("sts"), g.Count("iam"); sts != 1 || iam != 1 {
		t.Errorf("%d concurrent requests: %d STS and %d IAM calls, want 1 each", n, sts, iam)
	}
}

// forgeSignature is jwt with its claims kept and its signature replaced.
func forgeSignature(jwt string) string {
	i := strings.LastIndexByte(jwt, '.')
	return jwt[:i+1] + strings.Repeat("A", len(jwt)-i-1)
}

// podRun runs a request that must succeed and decodes the response strictly.
func podRun(t *testing.T, e *Env, req string) srvKubeletResponse {
	t.Helper()
	r := cmdsMustRun(t, e, req, "kubelet-credential-provider")
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	var resp srvKubeletResponse
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("response %q: %v", r.Stdout, err)
	}
	if resp.APIVersion != "credentialprovider.kubelet.k8s.io/v1" || resp.Kind != "CredentialProviderResponse" || resp.CacheKeyType != "Registry" {
		t.Errorf("response header %+v", resp)
	}
	return resp
}

// podCacheDuration checks that the kubelet may cache the answer for most
// of the token's life but not past it.
func podCacheDuration(t *testing.T, resp srvKubeletResponse, expiry time.Time) {
	t.Helper()
	d, err := time.ParseDuration(resp.CacheDuration)
	if left := time.Until(expiry); err != nil || d <= 0 || d >= left || d < left-10*time.Minute {
		t.Errorf("cacheDuration %q (%v), token has %v left", resp.CacheDuration, err, time.Until(expiry))
	}
}
