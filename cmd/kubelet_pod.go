package cmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
	"golang.org/x/oauth2"
)

const (
	// envWorkloadIdentityProvider is the default of --workload-identity-provider.
	envWorkloadIdentityProvider = "DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER"
	// defaultSAAnnotationKey is the annotation GKE uses to name the Google
	// service account a Kubernetes service account acts as.
	defaultSAAnnotationKey = "iam.gke.io/gcp-service-account"
)

// kubeletPodOptions say how a pod's service-account token becomes a token.
type kubeletPodOptions struct {
	provider      string // workload identity pool provider; "" = not configured
	annotationKey string // annotation naming the service account to impersonate
}

func (o *kubeletPodOptions) check() error {
	o.provider = strings.TrimSpace(o.provider)
	if o.provider != "" {
		if err := token.CheckProvider(o.provider); err != nil {
			return fmt.Errorf("--workload-identity-provider: %w", err)
		}
	}
	if strings.TrimSpace(o.annotationKey) == "" {
		return fmt.Errorf("--service-account-annotation-key must not be empty")
	}
	return nil
}

// kubeletToken is the token for one request, and the credential that
// served it: the pod's own identity when the kubelet sent its
// service-account token, else the node's credential.
func kubeletToken(ctx context.Context, h *helper.Helper, host string, req *kubeletRequest, pod kubeletPodOptions) (*oauth2.Token, *token.Credential, error) {
	if req.ServiceAccountToken == "" {
		tok, cred, err := h.Token(ctx, host)
		if err != nil {
			return nil, nil, fmt.Errorf("getting a token for %s: %w", host, err)
		}
		return tok, cred, nil
	}
	if pod.provider == "" {
		return nil, nil, fmt.Errorf("the kubelet sent the pod's service-account token, but no workload identity provider is configured: set --workload-identity-provider (or %s) in the provider's args (or env), or remove tokenAttributes from the CredentialProviderConfig to pull with the node's identity", envWorkloadIdentityProvider)
	}
	target := strings.TrimSpace(req.ServiceAccountAnnotations[pod.annotationKey])
	tok, cred, err := h.PodToken(ctx, token.PodExchange{Provider: pod.provider, SubjectToken: req.ServiceAccountToken}, target)
	if err != nil {
		return nil, nil, fmt.Errorf("getting a token for %s as the pod's identity: %w", host, err)
	}
	return tok, cred, nil
}
