// Package token finds Google credentials and turns them into OAuth2 access
// tokens. It knows nothing of docker: callers hand it an ordered list of
// sources and get back the first one that exists, with an account of why
// each earlier one was skipped.
package token

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
)

// CloudPlatformScope is the one scope the registries need.
const CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// ErrNotFound marks a source that does not exist here (no env var, no file,
// no metadata server). Sources wrap it with the reason; any other error
// means the source exists but is broken, and stops the search.
var ErrNotFound = errors.New("not found")

// ErrNoCredentials is returned by Resolve when no source exists at all.
var ErrNoCredentials = errors.New("no Google credentials found")

// Credential is a source that was found: who it is and how to mint for it.
type Credential struct {
	// Source names where it came from, e.g. "GOOGLE_APPLICATION_CREDENTIALS (/k.json)".
	Source string
	// Kind is the credential type: service_account, authorized_user,
	// external_account, impersonated_service_account, metadata, access_token.
	Kind string
	// Principal is the account e-mail or principal when known; never secret.
	Principal string
	// Identity is a stable, non-secret key for this identity and its
	// scopes; two credentials share it only if one's token may serve the other.
	Identity string
	// Cacheable is false for tokens handed to us ready-made.
	Cacheable bool
	// TokenSource mints (or returns) access tokens for this credential.
	TokenSource oauth2.TokenSource
	// SelfSigned is true when the tokens are JWTs signed locally with a
	// service-account key: no token endpoint is involved.
	SelfSigned bool

	// key is the service-account key behind a service_account credential,
	// for WithSelfSignedJWT; nil for other kinds.
	key *serviceAccountKey
}

// serviceAccountKey is a service-account key JSON, parsed, with the
// scopes its tokens are for.
type serviceAccountKey struct {
	data   []byte
	parsed *credentialJSON
	scopes []string
}

// Source is one place Google credentials may come from.
type Source interface {
	// Name says where the source looks, for errors and `doctor`.
	Name() string
	// Find returns the credential this source holds, an error wrapping
	// ErrNotFound when it does not exist here, or another error when it
	// exists but cannot be used.
	Find(ctx context.Context) (*Credential, error)
}

// Skipped records a source that did not exist and why.
type Skipped struct {
	// Source is the skipped source's Name.
	Source string
	// Reason says why it does not exist here, e.g. "GOOGLE_APPLICATION_CREDENTIALS is not set".
	Reason string
}

// Resolve returns the credential of the first source that exists. A source
// that exists but fails stops the search with an error naming it.
func Resolve(ctx context.Context, sources []Source) (*Credential, []Skipped, error) {
	var skipped []Skipped
	for _, s := range sources {
		cred, err := s.Find(ctx)
		switch {
		case err == nil:
			return cred, skipped, nil
		case errors.Is(err, ErrNotFound):
			skipped = append(skipped, Skipped{Source: s.Name(), Reason: err.Error()})
		default:
			return nil, skipped, fmt.Errorf("%s: %w", s.Name(), err)
		}
	}
	return nil, skipped, ErrNoCredentials
}
