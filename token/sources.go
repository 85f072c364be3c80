package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Options configures DefaultSources.
type Options struct {
	// KeyFile is the key file recorded by `configure-docker --key-file`; "" = none.
	KeyFile string
	// Scopes to request; nil means []string{CloudPlatformScope}.
	Scopes []string
	// Cache, when set, lets the metadata source count as present without
	// asking the server while a token of its is reusable there, so a warm
	// get sends no request at all.
	Cache *FileCache
}

func (o Options) scopes() []string { return scopesOrDefault(o.Scopes) }

func scopesOrDefault(scopes []string) []string {
	if len(scopes) == 0 {
		return []string{CloudPlatformScope}
	}
	return scopes
}

// DefaultSources is SPEC §3's search order after stored credentials (which
// the caller puts first): GOOGLE_OAUTH_ACCESS_TOKEN,
// GOOGLE_APPLICATION_CREDENTIALS, the keyless CI source (the job's ID
// token, when DOCKER_CREDENTIAL_GCP_WORKLOAD_IDENTITY_PROVIDER is set), the
// configured key file, gcloud's
// well-known ADC file, the metadata server. This is the one place that
// order is written down.
func DefaultSources(opts Options) []Source {
	scopes := opts.scopes()
	return []Source{
		accessTokenEnvSource{},
		adcEnvSource{scopes: scopes},
		ciSource{scopes: scopes},
		keyFileSource{path: opts.KeyFile, scopes: scopes},
		gcloudSource{scopes: scopes},
		metadataSource{scopes: scopes, cache: opts.Cache},
	}
}

// FromJSON is a source holding a credential JSON in memory, such as a key
// `store`d for a registry under the username _json_key.
func FromJSON(name string, data []byte, scopes []string) Source {
	return jsonSource{name: name, data: data, scopes: scopesOrDefault(scopes)}
}

type jsonSource struct {
	name   string
	data   []byte
	scopes []string
}

func (s jsonSource) Name() string { return s.name }

func (s jsonSource) Find(ctx context.Context) (*Credential, error) {
	return credentialFromJSON(ctx, s.name, s.data, s.scopes)
}

// FromFile is a source holding the credential JSON at path, such as one
// bound to a registry. Someone named the file, so a missing one is an
// error that stops the search, never a skipped source.
func FromFile(name, path string, scopes []string) Source {
	return fileSource{name: name, path: path, scopes: scopesOrDefault(scopes)}
}

type fileSource struct {
	name   string
	path   string
	scopes []string
}

func (s fileSource) Name() string { return s.name }

func (s fileSource) Find(ctx context.Context) (*Credential, error) {
	data, err := readCredentialFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist; restore it or change the binding", s.path)
	}
	if err != nil {
		return nil, err
	}
	return credentialFromJSON(ctx, s.name, data, s.scopes)
}

// FromAccessToken is a source holding a ready access token, such as one
// `store`d under the username oauth2accesstoken. After expiry it no longer
// exists; a zero expiry never lapses.
func FromAccessToken(name, accessToken string, expiry time.Time) Source {
	return accessTokenSource{name: name, token: strings.TrimSpace(accessToken), expiry: expiry}
}

type accessTokenSource struct {
	name   string
	token  string
	expiry time.Time
}

func (s accessTokenSource) Name() string { return s.name }

func (s accessTokenSource) Find(context.Context) (*Credential, error) {
	if !s.expiry.IsZero() && !time.Now().Before(s.expiry) {
		return nil, NotFound("the stored access token is older than 60 min")
	}
	return readyToken(s.name, s.token, s.expiry)
}

// readyToken is the credential for a token someone else minted: returned
// as-is, never cached by us.
func readyToken(source, tok string, expiry time.Time) (*Credential, error) {
	if tok == "" {
		return nil, fmt.Errorf("the access token is empty")
	}
	if strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("the access token contains spaces or control characters; it is not an access token")
	}
	return &Credential{
		Source:   source,
		Kind:     "access_token",
		Identity: "access_token:" + hashHex(tok),
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{
			AccessToken: tok,
			TokenType:   "Bearer",
			Expiry:      expiry,
		}),
	}, nil
}

// notFoundError is a reason a source does not exist here; it matches ErrNotFound.
type notFoundError struct{ reason string }

func (e notFoundError) Error() string        { return e.reason }
func (e notFoundError) Is(target error) bool { return target == ErrNotFound }

// NotFound is the error a Source returns when it does not exist here: its
// text is just the reason (for doctor), and it matches ErrNotFound.
func NotFound(format string, args ...any) error {
	return notFoundError{reason: fmt.Sprintf(format, args...)}
}

// hashHex is a hex SHA-256 over parts, each terminated so that
// ("ab","c") and ("a","bc") differ.
func hashHex(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func scopeKey(scopes []string) string { return strings.Join(scopes, " ") }
