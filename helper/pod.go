package helper

import (
	"context"
	"fmt"

	"github.com/docker-credential-gcp/docker-credential-gcp/token"
	"golang.org/x/oauth2"
)

// PodToken returns a token for a pod's own identity: its service-account
// token exchanged at STS, impersonating target when it is not "". Unlike
// Token it never looks at a stored credential, a binding or the default
// chain: a pod must never pull with the node's identity.
func (h *Helper) PodToken(ctx context.Context, ex token.PodExchange, target string) (*oauth2.Token, *token.Credential, error) {
	ex.Scopes = h.Scopes
	cred, err := token.PodCredential(ctx, ex)
	if err != nil {
		return nil, nil, err
	}
	if target != "" {
		if err := CheckServiceAccount(target); err != nil {
			return nil, nil, fmt.Errorf("the pod's service-account annotation: %w", err)
		}
		if cred, err = token.Impersonate(ctx, cred, target, h.Scopes); err != nil {
			return nil, nil, err
		}
	}
	tok, err := h.mint(ctx, cred)
	return tok, cred, err
}
