package token

import (
	"fmt"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// WithSelfSignedJWT returns cred with tokens that are JWTs its
// service-account key signs itself (RS256, kid = private_key_id,
// iss = sub = client_email, the scopes as the scope claim), as
// docker-credential-gcr v2 does: no token endpoint request at all, so it
// also works where egress reaches only the registry. They are cached like
// minted tokens, under an identity of their own. Any other credential
// comes back unchanged.
func WithSelfSignedJWT(cred *Credential) *Credential {
	k := cred.key
	if k == nil {
		return cred
	}
	secrets := k.parsed.secrets()
	return &Credential{
		Source:     cred.Source + " (self-signed JWT)",
		Kind:       cred.Kind,
		Principal:  cred.Principal,
		Identity:   "jwt:" + hashHex(string(k.data), scopeKey(k.scopes)),
		Cacheable:  true,
		SelfSigned: true,
		TokenSource: &labelledTokenSource{
			// Built on first use, like the token endpoint's source: a
			// cache hit signs nothing.
			build: func() (oauth2.TokenSource, error) {
				// The key is checked as before a mint, so a damaged one
				// gets the same explanation, not x/oauth2's asn1 dump.
				if err := k.parsed.checkPrivateKeys(); err != nil {
					return nil, err
				}
				ts, err := google.JWTAccessTokenSourceWithScope(k.data, k.scopes...)
				if err != nil {
					return nil, fmt.Errorf("cannot sign a JWT with the key: %s", redact(err.Error(), secrets))
				}
				return ts, nil
			},
			label:   "self-signed JWT of " + describeCredential(k.parsed, cred.Principal),
			kind:    cred.Kind,
			secrets: secrets,
		},
	}
}
