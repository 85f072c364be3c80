// Package helper is the docker credential-helper side of
// docker-credential-gcp: which hosts get a token, the credentials stored
// with `docker login`, and the credentials.Helper that docker calls.
// It knows nothing of JWTs or metadata servers; package token does.
package helper

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
	"github.com/docker/docker-credential-helpers/credentials"
	"golang.org/x/oauth2"
)

// Environment variables read by New.
const (
	// EnvRegistries adds hosts, comma-separated, that get a token.
	EnvRegistries = "DOCKER_CREDENTIAL_GCP_REGISTRIES"
	// EnvNoCache turns the token cache off when set to 1 or true.
	EnvNoCache = "DOCKER_CREDENTIAL_GCP_NO_CACHE"
	// EnvMinLifetime is M, the least validity a cached token must keep to
	// be reused (a Go duration, default 45m; see token.FileCache).
	EnvMinLifetime = "DOCKER_CREDENTIAL_GCP_MIN_LIFETIME"
	// EnvSelfSignedJWT makes service-account keys sign their own JWT
	// access tokens instead of asking the token endpoint (1 or 0; it
	// overrides configure-docker --self-signed-jwt).
	EnvSelfSignedJWT = "DOCKER_CREDENTIAL_GCP_SELF_SIGNED_JWT"
)

// Usernames docker may store credentials under.
const (
	// UsernameAccessToken is the username registries expect with an
	// OAuth2 access token; Get always returns it.
	UsernameAccessToken = "oauth2accesstoken"
	// UsernameJSONKey stores a credential JSON (service-account key, ADC file).
	UsernameJSONKey = "_json_key"
	// UsernameJSONKeyBase64 stores the same JSON base64-encoded.
	UsernameJSONKeyBase64 = "_json_key_base64"
)

const (
	// getBudget bounds a whole get process, measured from when New ran (see
	// Helper.started): a hanging endpoint must not keep docker waiting 30 s
	// or more, and after the deadline the process still reports and exits.
	// The 5 s left over are for exec, start-up and exit, which a loaded
	// machine stretches past a second.
	getBudget = 25 * time.Second
	// eraseTimeout bounds the source lookups Delete does to drop caches.
	eraseTimeout = 10 * time.Second
	// storedTokenLife is how long a stored access token is served (SPEC §3).
	storedTokenLife = 60 * time.Minute
)

// Helper answers docker's get/store/erase/list: it implements
// credentials.Helper on top of the host policy, the store and the token
// sources, and offers Resolve and Token to the people-facing commands.
type Helper struct {
	// Store holds credentials from `docker login`; nil when there is no
	// config dir (HOME unset), which only disables store/erase.
	Store *Store
	// Policy decides which hosts get a token.
	Policy Policy
	// KeyFile is the key recorded by configure-docker --key-file.
	KeyFile string
	// Bindings tie a credential to chosen hosts (bindings.go).
	Bindings Bindings
	// Cache shares minted tokens across processes; nil means no cache.
	Cache *token.FileCache
	// Scopes requested for every token; empty means cloud-platform.
	Scopes []string
	// SelfSignedJWT makes a service-account key (not impersonated) sign
	// its own JWT access tokens: no token endpoint request at all.
	SelfSignedJWT bool
	// TraceLog is where configure-docker --log asked every call's trace
	// line to go ("" for nowhere); package trace decides, with the
	// environment, where it goes.
	TraceLog string

	// Warnings say what New ignored and why (a config dir not private to
	// the user), one line each, for the caller to print on stderr.
	Warnings []string
	// Warn, when set, is told once per mint, one line, when a source gave
	// a token too short-lived for clients that keep it 5 minutes.
	Warn func(string)
	// noStore says why Store is nil.
	noStore string

	// started is when New ran, which a get process does first thing: the
	// process's start within milliseconds. Get's deadline counts from it.
	started time.Time

	// sources builds the default source chain; nil means token.DefaultSources.
	// Tests replace it with in-memory fakes.
	sources func(token.Options) []token.Source
}

var _ credentials.Helper = (*Helper)(nil)

// New builds the Helper docker runs: settings file, environment, default
// store and token cache. A corrupt settings file is an error; a missing
// config or cache dir only disables the store or the cache.
func New() (*Helper, error) {
	started := time.Now()
	settings, err := loadSettings()
	if err != nil {
		return nil, err
	}
	cfg := settings.cfg
	minLifetime := token.DefaultMinLifetime
	if v := os.Getenv(EnvMinLifetime); strings.TrimSpace(v) != "" {
		if minLifetime, err = token.ParseMinLifetime(v); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvMinLifetime, err)
		}
	}
	selfSigned, err := selfSignedJWT(os.Getenv(EnvSelfSignedJWT), cfg.SelfSignedJWT)
	if err != nil {
		return nil, err
	}
	h := &Helper{
		started:       started,
		Policy:        Policy{Extra: append(cfg.Registries, SplitRegistries(os.Getenv(EnvRegistries))...)},
		KeyFile:       cfg.KeyFile,
		Scopes:        []string{token.CloudPlatformScope},
		SelfSignedJWT: selfSigned,
		TraceLog:      cfg.Log,
		Store:         settings.store,
		Warnings:      settings.warnings,
		noStore:       settings.noStore,
	}
	if h.Bindings, err = loadBindings(cfg.Bindings, os.Getenv(EnvBindings), h.Policy); err != nil {
		return nil, err
	}
	if !cacheDisabled(os.Getenv(EnvNoCache)) {
		// Without a cache dir (HOME unset) tokens still live in memory,
		// which serves the long-running commands.
		dir, _ := token.DefaultCacheDir()
		h.Cache = token.NewFileCache(dir)
		h.Cache.SetMinLifetime(minLifetime)
	}
	return h, nil
}

// selfSignedJWT interprets DOCKER_CREDENTIAL_GCP_SELF_SIGNED_JWT, which
// wins over the setting configure-docker recorded.
func selfSignedJWT(env string, recorded bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "":
		return recorded, nil
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q: want 1 (sign JWTs locally) or 0 (use the token endpoint)", EnvSelfSignedJWT, env)
}

// cacheDisabled interprets DOCKER_CREDENTIAL_GCP_NO_CACHE.
func cacheDisabled(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Get returns an access token for serverURL. Hosts outside the policy and
// hosts with no credential source get the protocol's not-found error, so
// docker carries on anonymously.
func (h *Helper) Get(serverURL string) (string, string, error) {
	a, err := h.Answer(context.Background(), serverURL)
	if err != nil {
		return "", "", err
	}
	return UsernameAccessToken, a.Token.AccessToken, nil
}

// Answer is what Get found for one server URL, for a caller that records
// it (the trace): Get's token, and where it came from.
type Answer struct {
	// Host is the server URL's host, normalized; "" when it has none.
	Host string
	// Ours is true when the policy lets Host have a token.
	Ours bool
	// Token is the token handed out; nil on error.
	Token *oauth2.Token
	// Credential is the credential that served Token.
	Credential *token.Credential
}

// Answer is Get under ctx (within Get's own deadline), saying where its
// token came from. Its errors are Get's: the protocol's not-found error
// for a host outside the policy or without credentials, else one line.
func (h *Helper) Answer(ctx context.Context, serverURL string) (Answer, error) {
	var a Answer
	a.Host, a.Ours = h.Policy.Allows(serverURL)
	if !a.Ours {
		return a, credentials.NewErrCredentialsNotFound()
	}
	ctx, cancel := context.WithDeadline(ctx, h.getDeadline())
	defer cancel()
	tok, cred, err := h.Token(ctx, a.Host)
	if errors.Is(err, token.ErrNoCredentials) {
		return a, credentials.NewErrCredentialsNotFound()
	}
	if err != nil {
		return a, oneLine(err)
	}
	a.Token, a.Credential = tok, cred
	return a, nil
}

// getDeadline is when Get must have its answer: getBudget after the
// process started, so the whole process ends within 30 s.
func (h *Helper) getDeadline() time.Time {
	start := h.started
	if start.IsZero() {
		start = time.Now()
	}
	return start.Add(getBudget)
}

// Add stores a credential from `docker login` for a host of the policy,
// after checking that it is usable. Errors never contain the secret.
func (h *Helper) Add(c *credentials.Credentials) error {
	if c == nil {
		return errors.New("no credentials given")
	}
	host, ok := h.Policy.Allows(c.ServerURL)
	if host == "" {
		_, err := ParseHost(c.ServerURL)
		return fmt.Errorf("storing credentials: %w", err)
	}
	if !ok {
		host = shownHost(host)
		return fmt.Errorf("%s is not a Google registry (gcr.io, *.gcr.io, *.pkg.dev); to store credentials for it, add it to %s or run configure-docker --registries %s", host, EnvRegistries, host)
	}
	if err := checkSecret(c.Username, c.Secret); err != nil {
		return fmt.Errorf("storing credentials for %s: %w", host, err)
	}
	if h.Store == nil {
		return fmt.Errorf("storing credentials: %s", h.storeMissing())
	}
	return h.Store.Put(host, Entry{Username: c.Username, Secret: c.Secret, StoredAt: time.Now().UTC()})
}

// checkSecret validates a secret for its username without quoting it.
func checkSecret(username, secret string) error {
	switch username {
	case UsernameJSONKey:
		_, err := token.ValidateJSON([]byte(secret))
		return err
	case UsernameJSONKeyBase64:
		data, err := decodeBase64(secret)
		if err != nil {
			return fmt.Errorf("the password of %s is not valid base64", UsernameJSONKeyBase64)
		}
		_, err = token.ValidateJSON(data)
		return err
	case UsernameAccessToken:
		tok := strings.TrimSpace(secret)
		if tok == "" {
			return fmt.Errorf("the password of %s is empty", UsernameAccessToken)
		}
		if strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("the password of %s contains spaces or control characters; it is not an access token", UsernameAccessToken)
		}
		return nil
	default:
		return fmt.Errorf("unsupported username %q: use %s (password: key JSON), %s (password: base64 key JSON) or %s (password: access token)",
			username, UsernameJSONKey, UsernameJSONKeyBase64, UsernameAccessToken)
	}
}

// decodeBase64 accepts standard or URL-safe base64, padded or not, with
// line breaks (as `base64` wraps its output).
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var data []byte
		if data, err = enc.DecodeString(s); err == nil {
			return data, nil
		}
	}
	return nil, err
}

// Delete erases the credential stored for serverURL, if any, and drops the
// cached tokens of both the stored credential and the one the default
// chain would use, so the next get mints afresh. It is idempotent.
func (h *Helper) Delete(serverURL string) error {
	host, err := ParseHost(serverURL)
	if err != nil {
		return fmt.Errorf("erasing credentials: %w", err)
	}
	_, allowed := h.Policy.Allows(host)
	dropCache := h.Cache != nil && allowed
	if h.Store == nil {
		if dropCache {
			h.dropCached(host)
		}
		return nil
	}
	// While the entry exists, Resolve finds the stored credential; after,
	// the one the default chain uses. Both may have cached tokens.
	if _, stored, err := h.Store.Get(host); err == nil && stored && dropCache {
		h.dropCached(host)
	}
	if err := h.Store.Delete(host); err != nil {
		return oneLine(err)
	}
	if dropCache {
		h.dropCached(host)
	}
	return nil
}

// dropCached drops the cached token of the credential that would serve
// host now. It never mints, and ignores every failure: erase must succeed.
func (h *Helper) dropCached(host string) {
	ctx, cancel := context.WithTimeout(context.Background(), eraseTimeout)
	defer cancel()
	if cred, _, err := h.Resolve(ctx, host); err == nil && cred.Identity != "" {
		_ = h.Cache.Drop(cred.Identity)
	}
}

// List returns the stored credentials as host → username.
func (h *Helper) List() (map[string]string, error) {
	if h.Store == nil {
		return map[string]string{}, nil
	}
	list, err := h.Store.List()
	if err != nil {
		return nil, oneLine(err)
	}
	return list, nil
}

// Resolve finds the credential for host: one stored for it, else the
// host's binding, else the default source chain. Unless the stored
// credential won, a binding's impersonation target (or, for unbound hosts,
// DOCKER_CREDENTIAL_GCP_IMPERSONATE) wraps the result; a binding replaces
// DOCKER_CREDENTIAL_GCP_IMPERSONATE for its hosts, and a stored credential
// keeps it. Without impersonation, h.SelfSignedJWT makes a service-account
// key sign its own tokens. It does not mint; the skipped sources explain,
// for doctor, why earlier sources did not apply.
func (h *Helper) Resolve(ctx context.Context, host string) (*token.Credential, []token.Skipped, error) {
	cred, skipped, err := token.Resolve(ctx, h.Sources(host))
	if err != nil {
		return nil, skipped, err
	}
	target := token.ImpersonationTarget()
	// The stored credential is always first, so it won when nothing was skipped.
	if b, bound := h.Bindings[host]; bound && len(skipped) > 0 {
		target = b.Impersonate
	}
	if target != "" {
		// The base token goes through the cache too, so that a source
		// that looks for itself in the cache (the metadata server) needs
		// no request on a warm get.
		base := *cred
		if h.Cache != nil {
			base.TokenSource = h.Cache.TokenSource(cred)
		}
		imp, err := token.Impersonate(ctx, &base, target, h.Scopes)
		if err != nil {
			return nil, skipped, fmt.Errorf("impersonating %s with %s: %w", target, cred.Source, err)
		}
		return imp, skipped, nil
	}
	if h.SelfSignedJWT {
		cred = token.WithSelfSignedJWT(cred)
	}
	return cred, skipped, nil
}

// Sources is the search order for host: the credential stored for it,
// then the credential file bound to it, then token.DefaultSources.
func (h *Helper) Sources(host string) []token.Source {
	defaults := h.sources
	if defaults == nil {
		defaults = token.DefaultSources
	}
	sources := []token.Source{&storedSource{h: h, host: host}}
	if b, ok := h.Bindings[host]; ok && b.CredentialFile != "" {
		name := fmt.Sprintf("credential file %s bound to %s", b.CredentialFile, host)
		sources = append(sources, token.FromFile(name, b.CredentialFile, h.Scopes))
	}
	return append(sources, defaults(token.Options{KeyFile: h.KeyFile, Scopes: h.Scopes, Cache: h.Cache})...)
}

// Token resolves the credential for host and returns an access token for
// it, from the cache when one is fresh enough.
func (h *Helper) Token(ctx context.Context, host string) (*oauth2.Token, *token.Credential, error) {
	cred, _, err := h.Resolve(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	tok, err := h.mint(ctx, cred)
	return tok, cred, err
}

// mint returns an access token for cred, from the cache when one is fresh
// enough; what the cache did goes to the token.Report ctx may carry.
func (h *Helper) mint(ctx context.Context, cred *token.Credential) (*oauth2.Token, error) {
	if h.Warn != nil {
		c := *cred
		c.TokenSource = token.NoticeShortLived(cred.TokenSource, func(life time.Duration) { h.Warn(ShortLivedWarning(cred.Source, life)) })
		cred = &c
	}
	ts := cred.TokenSource
	if h.Cache != nil {
		ts = h.Cache.TokenSourceContext(ctx, cred)
	}
	tok, err := ts.Token()
	if err != nil {
		return nil, fmt.Errorf("getting a token from %s: %w", cred.Source, err)
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, fmt.Errorf("getting a token from %s: empty access token", cred.Source)
	}
	return tok, nil
}

// storedSource is the credential stored for one host with `docker login`,
// first in the chain (SPEC §3.1).
type storedSource struct {
	h    *Helper
	host string
}

// storedSourcePrefix starts the name of every stored credential's source.
const storedSourcePrefix = "credential stored for "

func (s *storedSource) Name() string {
	return storedSourcePrefix + s.host
}

func (s *storedSource) Find(ctx context.Context) (*token.Credential, error) {
	if s.h.Store == nil {
		return nil, token.NotFound("%s", s.h.storeMissing())
	}
	e, ok, err := s.h.Store.Get(s.host)
	if errors.Is(err, atomicfile.ErrUntrusted) {
		return nil, token.NotFound("ignored: %v", err)
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, token.NotFound("nothing stored with docker login")
	}
	name := fmt.Sprintf("%s%s (%s)", storedSourcePrefix, s.host, e.Username)
	switch e.Username {
	case UsernameJSONKey:
		return token.FromJSON(name, []byte(e.Secret), s.h.Scopes).Find(ctx)
	case UsernameJSONKeyBase64:
		data, err := decodeBase64(e.Secret)
		if err != nil {
			return nil, fmt.Errorf("the stored %s is not valid base64; docker login again", UsernameJSONKeyBase64)
		}
		return token.FromJSON(name, data, s.h.Scopes).Find(ctx)
	case UsernameAccessToken:
		// Past its life the token package reports it as not found, and
		// the search goes on to the next source.
		return token.FromAccessToken(name, e.Secret, e.StoredAt.Add(storedTokenLife)).Find(ctx)
	default:
		return nil, fmt.Errorf("unsupported stored username %q; docker logout %s and log in again", e.Username, s.host)
	}
}

// oneLine keeps an error to one line, as the protocol prints it on stdout.
func oneLine(err error) error {
	msg := err.Error()
	if !strings.ContainsAny(msg, "\r\n") {
		return err
	}
	return &oneLineError{msg: strings.Join(strings.Fields(msg), " "), err: err}
}

type oneLineError struct {
	msg string
	err error
}

func (e *oneLineError) Error() string { return e.msg }
func (e *oneLineError) Unwrap() error { return e.err }

// ShortLivedWarning explains a token that may be handed out with less
// than 5 minutes left, and names the fix; get prints it once per mint and
// doctor when it shows such a token.
func ShortLivedWarning(source string, life time.Duration) string {
	msg := fmt.Sprintf("%s gave a token that lives only %s, so it may be handed out with less than the 5 minutes BuildKit keeps a token", source, life)
	if token.ImpersonationTarget() == "" {
		return msg + ": set DOCKER_CREDENTIAL_GCP_IMPERSONATE=SERVICE_ACCOUNT_EMAIL for 1-hour tokens"
	}
	return msg
}
