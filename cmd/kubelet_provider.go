package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/jsonpos"
	"github.com/docker-credential-gcp/docker-credential-gcp/trace"
)

// The kubelet image credential provider API, credentialprovider.kubelet.k8s.io/v1
// (https://kubernetes.io/docs/reference/config-api/kubelet-credentialprovider.v1/).
// k8s.io/kubelet would pull in apimachinery for four small structs.
const (
	kubeletAPIVersion   = "credentialprovider.kubelet.k8s.io/v1"
	kubeletRequestKind  = "CredentialProviderRequest"
	kubeletResponseKind = "CredentialProviderResponse"
	// kubeletCacheKeyRegistry makes kubelet reuse our answer for every
	// image on the same registry host.
	kubeletCacheKeyRegistry = "Registry"
	// kubeletCacheMargin is how long before the token expires kubelet
	// should stop using it; kubeletMinCache is the least we ask for.
	kubeletCacheMargin = 5 * time.Minute
	kubeletMinCache    = time.Minute
	// kubeletTimeout bounds the whole exec; kubelet has its own too.
	kubeletTimeout  = time.Minute
	kubeletMaxInput = 1 << 20
)

// kubeletRequest is CredentialProviderRequest: the image kubelet is about to pull.
type kubeletRequest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Image      string `json:"image"`
	// ServiceAccountToken is the pod's service-account token, sent when
	// the CredentialProviderConfig sets tokenAttributes (KEP-4412). Secret.
	ServiceAccountToken string `json:"serviceAccountToken,omitempty"`
	// ServiceAccountAnnotations are the annotations of the pod's service
	// account that tokenAttributes asks the kubelet to pass.
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations,omitempty"`
}

// kubeletResponse is CredentialProviderResponse. CacheDuration is a
// metav1.Duration, which is a Go duration string on the wire.
type kubeletResponse struct {
	APIVersion    string                       `json:"apiVersion"`
	Kind          string                       `json:"kind"`
	CacheKeyType  string                       `json:"cacheKeyType"`
	CacheDuration string                       `json:"cacheDuration,omitempty"`
	Auth          map[string]kubeletAuthConfig `json:"auth"`
}

// kubeletAuthConfig is AuthConfig: the login for one registry key.
type kubeletAuthConfig struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

const kubeletUsage = `Usage: docker-credential-gcp kubelet-credential-provider [--workload-identity-provider PROVIDER]
           [--service-account-annotation-key KEY]

Acts as a kubelet image credential provider (credentialprovider.kubelet.k8s.io/v1):
reads a CredentialProviderRequest on stdin, writes a CredentialProviderResponse
with a short-lived token for the image's registry when it is a Google
registry, and an empty auth otherwise. Configure it in the kubelet's
--image-credential-provider-config with matchImages "gcr.io", "*.gcr.io",
"*.pkg.dev" and "*.*.rep.pkg.dev" (each * matches one DNS label, so the
regional endpoints such as docker.europe-west1.rep.pkg.dev need the last).

Without a service-account token in the request the node's credential is
used (the same sources as 'get'). With tokenAttributes in the
CredentialProviderConfig the kubelet sends the pod's service-account token:
it is exchanged at Google's STS for the workload identity provider named by
--workload-identity-provider, and when the pod's service account carries the
annotation --service-account-annotation-key (default
iam.gke.io/gcp-service-account), the Google service account it names is
impersonated. A failed exchange or impersonation is an error: such a pod
never pulls with the node's identity. STS and IAM endpoints can be changed
with DOCKER_CREDENTIAL_GCP_STS_ENDPOINT and DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT
(https, or http on loopback only).

Example (the kubelet runs it; run by hand it checks a node, and its answer
holds a token):
  echo '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"gcr.io/my-project/app:1.0"}' |
    docker-credential-gcp kubelet-credential-provider

Flags:
`

// KubeletCredentialProvider is the kubelet's exec plugin, so nodes outside
// GKE pull from gcr.io and *.pkg.dev without a long-lived pull secret.
func KubeletCredentialProvider(args []string, stdio IO) (err error) {
	flags := newFlags("kubelet-credential-provider", kubeletUsage, stdio)
	var pod kubeletPodOptions
	flags.StringVar(&pod.provider, "workload-identity-provider", os.Getenv(envWorkloadIdentityProvider),
		"workload identity pool `PROVIDER` (//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/X) to exchange pods' service-account tokens at; default $"+envWorkloadIdentityProvider)
	flags.StringVar(&pod.annotationKey, "service-account-annotation-key", defaultSAAnnotationKey,
		"`KEY` of the service-account annotation naming the Google service account to impersonate")
	if help, err := parseFlags(flags, args); help || err != nil {
		return err
	}
	if err := pod.check(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, kubeletTimeout)
	defer cancel()

	call := trace.Start("kubelet-credential-provider")
	defer func() { call.End(err, stdio.Err) }()
	req, err := readKubeletRequest(stdio.In)
	if err != nil {
		return err
	}
	resp, err := answerKubelet(call.Context(ctx), req, pod, stdio.Err, call)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdio.Out)
	if err := enc.Encode(resp); err != nil {
		return fmt.Errorf("writing the response: %w", err)
	}
	return nil
}

// readKubeletRequest decodes and checks a CredentialProviderRequest.
func readKubeletRequest(r io.Reader) (*kubeletRequest, error) {
	data, err := io.ReadAll(io.LimitReader(r, kubeletMaxInput+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request from stdin: %w", err)
	}
	if len(data) > kubeletMaxInput {
		return nil, fmt.Errorf("the request on stdin is larger than %d bytes", kubeletMaxInput)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, errors.New("no CredentialProviderRequest on stdin (this command is run by the kubelet)")
	}
	var req kubeletRequest
	if err := json.Unmarshal(data, &req); err != nil {
		// Describe quotes at most the one character it choked on, never
		// the service-account token the request may carry.
		return nil, fmt.Errorf("parsing the CredentialProviderRequest on stdin: %s", jsonpos.Describe(err, data))
	}
	if req.APIVersion != kubeletAPIVersion {
		return nil, fmt.Errorf("unsupported apiVersion %q: set apiVersion: %s for this provider in the kubelet's CredentialProviderConfig", req.APIVersion, kubeletAPIVersion)
	}
	if req.Kind != kubeletRequestKind {
		return nil, fmt.Errorf("unexpected kind %q, want %s", req.Kind, kubeletRequestKind)
	}
	if strings.TrimSpace(req.Image) == "" {
		return nil, errors.New("the CredentialProviderRequest has no image")
	}
	return &req, nil
}

// answerKubelet returns auth for the image's registry when the host policy
// allows it, and an empty auth (minting nothing) otherwise, telling call
// what it did.
func answerKubelet(ctx context.Context, req *kubeletRequest, pod kubeletPodOptions, warn io.Writer, call *trace.Call) (*kubeletResponse, error) {
	resp := &kubeletResponse{
		APIVersion:   kubeletAPIVersion,
		Kind:         kubeletResponseKind,
		CacheKeyType: kubeletCacheKeyRegistry,
		Auth:         map[string]kubeletAuthConfig{},
	}
	call.Secret(req.ServiceAccountToken)
	host, key, ok := imageHost(req.Image)
	call.Host(host)
	if !ok {
		call.Outcome(trace.NotOurs)
		return resp, nil
	}
	h, err := NewHelper("kubelet-credential-provider", warn)
	if err != nil {
		return nil, err
	}
	call.Recorded(h.TraceLog)
	if _, ok := h.Policy.Allows(host); !ok {
		call.Outcome(trace.NotOurs)
		return resp, nil
	}
	tok, cred, err := kubeletToken(ctx, h, host, req, pod)
	call.Credential(cred, h.Bindings.Used(host, cred))
	call.Token(tok)
	if err != nil {
		return nil, err
	}
	resp.Auth[key] = kubeletAuthConfig{Username: helper.UsernameAccessToken, Password: tok.AccessToken}
	resp.CacheDuration = kubeletCacheDuration(tok.Expiry, time.Now()).String()
	return resp, nil
}

// imageHost is the registry host of an image reference, by the rule docker
// and kubelet use: the first path element if it looks like a host
// (has a "." or ":", or is "localhost"), else Docker Hub. host is normalized
// as helper.ParseHost returns it, for the policy (a non-Google host keeps
// its port); key is host plus the image's port, if any, for the response's
// auth map, where kubelet matches ports exactly. ok is false for a first element that is not a plain
// host[:port] (user info, '#', '?', control or non-ASCII characters): such
// an image gets no credentials, so no auth key ever differs from the host
// the token was minted for.
func imageHost(image string) (host, key string, ok bool) {
	first, _, found := strings.Cut(strings.TrimSpace(image), "/")
	if !found || !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io", "docker.io", true
	}
	if strings.ContainsFunc(first, func(r rune) bool { return !isHostPortChar(r) }) {
		return "", "", false
	}
	host, err := helper.ParseHost(first)
	if err != nil {
		return "", "", false
	}
	key = host
	if i := strings.LastIndexByte(first, ':'); i >= 0 && !strings.HasSuffix(first, "]") && helper.IsGoogleRegistry(host) {
		key += first[i:]
	}
	return host, key, true
}

// isHostPortChar reports whether r may appear in a registry's host[:port]:
// ASCII letters, digits, '.', '-', and ':' and brackets for a port or an
// IPv6 literal.
func isHostPortChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(".-:[]", r)
}

// kubeletCacheDuration is how long kubelet may reuse a token expiring at
// expiry: a margin before expiry, at least kubeletMinCache, whole seconds.
// A token of unknown expiry gets the minimum.
func kubeletCacheDuration(expiry, now time.Time) time.Duration {
	if expiry.IsZero() {
		return kubeletMinCache
	}
	d := expiry.Sub(now) - kubeletCacheMargin
	if d < kubeletMinCache {
		return kubeletMinCache
	}
	return d.Truncate(time.Second)
}
