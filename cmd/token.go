package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"
	"golang.org/x/oauth2"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
	"github.com/docker-credential-gcp/docker-credential-gcp/trace"
)

// ErrNoCredentials is what a person sees when no credential source exists:
// token.ErrNoCredentials plus the next step to take. Every command that
// needs a token says it the same way.
var ErrNoCredentials = fmt.Errorf("%w: set GOOGLE_APPLICATION_CREDENTIALS, run docker-credential-gcp configure-docker --key-file KEY.json, or run gcloud auth application-default login once", token.ErrNoCredentials)

// defaultTokenRegistry is the host whose credential the token, dockerconfig
// and doctor commands use unless told otherwise.
const defaultTokenRegistry = "gcr.io"

// commandTimeout bounds one command's credential lookup and mint, so a
// script never hangs on a dead network.
const commandTimeout = 30 * time.Second

const tokenUsage = `Usage: docker-credential-gcp token [--registry HOST] [--format text|json] [--min-lifetime DURATION]
       docker-credential-gcp print-access-token [...]

Prints a short-lived Google OAuth2 access token (about one hour) for scripts,
like 'gcloud auth print-access-token' but without gcloud. It comes from the
same credentials 'get' uses for HOST and through the same token cache, so
calling it often costs no extra requests to Google. A cached token is reused
while it has at least min(DURATION, 3/4 of the life it had when obtained)
left, else a new one is minted; DURATION defaults to
$DOCKER_CREDENTIAL_GCP_MIN_LIFETIME, else 45m.

Examples:
  docker-credential-gcp token | docker login -u oauth2accesstoken --password-stdin https://eu.gcr.io
  curl -H "Authorization: Bearer $(docker-credential-gcp token)" https://gcr.io/v2/PROJECT/IMAGE/tags/list
  docker-credential-gcp token --format json
  docker-credential-gcp token --min-lifetime 10m

Flags:
`

// tokenJSON is the output of `token --format json`, named like an OAuth2
// token response so tools that read those read this.
type tokenJSON struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	// Expiry is RFC 3339 in UTC; empty when the source did not say.
	Expiry string `json:"expiry,omitempty"`
	// ExpiresIn is the whole seconds of validity left; absent when unknown.
	ExpiresIn int64 `json:"expires_in,omitempty"`
}

// Token is the `token` (alias `print-access-token`) command: it prints an
// access token and a newline, or as JSON with its expiry.
func Token(args []string, stdio IO) (err error) {
	fs := newFlags("token", tokenUsage, stdio)
	registry := registryFlag(fs, "registry `HOST` whose credential to use (a credential stored for it, then its binding, wins)")
	format := fs.String("format", "text", "output `FORMAT`: text (the token alone) or json (token, type and expiry)")
	minLifetime := fs.String("min-lifetime", "", "reuse a cached token only while it has at least min(`DURATION`, max(3/4 of its life, min(5m, 0.9 of its life))) left (default 45m)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if err := oneRegistry("token", *registry); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("--format %q: want text or json", *format)
	}
	var m time.Duration
	if fs.Changed("min-lifetime") {
		if m, err = token.ParseMinLifetime(*minLifetime); err != nil {
			return fmt.Errorf("--min-lifetime: %w", err)
		}
	}

	call := trace.Start("token")
	defer func() { call.End(err, stdio.Err) }()
	h, err := NewHelper("token", stdio.Err)
	if err != nil {
		return err
	}
	call.Recorded(h.TraceLog)
	if m != 0 && h.Cache != nil {
		h.Cache.SetMinLifetime(m)
	}
	host, err := allowedRegistry(h, *registry)
	if err != nil {
		if parsed, perr := helper.ParseHost(*registry); perr == nil {
			call.Host(parsed)
			call.Outcome(trace.NotOurs)
		}
		return fmt.Errorf("--registry: %w", err)
	}
	call.Host(host)
	ctx, cancel := context.WithTimeout(call.Context(context.Background()), commandTimeout)
	defer cancel()
	tok, cred, err := h.Token(ctx, host)
	call.Credential(cred, h.Bindings.Used(host, cred))
	call.Token(tok)
	if err != nil {
		return explainTokenError(err)
	}

	if *format == "text" {
		_, err = fmt.Fprintln(stdio.Out, tok.AccessToken)
		return err
	}
	out := tokenJSON{AccessToken: tok.AccessToken, TokenType: tok.Type()}
	if !tok.Expiry.IsZero() {
		out.Expiry = tok.Expiry.UTC().Format(time.RFC3339)
		out.ExpiresIn = max(int64(time.Until(tok.Expiry)/time.Second), 0)
	}
	enc := json.NewEncoder(stdio.Out)
	enc.SetIndent("", "\t")
	return enc.Encode(out)
}

// allowedRegistry normalises a registry given on the command line and
// checks that our host policy lets it have a Google token.
func allowedRegistry(h *helper.Helper, s string) (string, error) {
	host, err := helper.ParseHost(s)
	if err != nil {
		return "", err
	}
	if _, ok := h.Policy.Allows(host); !ok {
		return "", fmt.Errorf("%s is not a Google registry (gcr.io, *.gcr.io, *.pkg.dev); add it to DOCKER_CREDENTIAL_GCP_REGISTRIES to send it a Google token", host)
	}
	return host, nil
}

// allowedRegistries is allowedRegistry for each host of a --registries
// list, in the order given, without blanks or duplicates. Errors name the
// host, never the argument as typed: its user info may hold a password.
func allowedRegistries(h *helper.Helper, registries []string) ([]string, error) {
	var hosts []string
	for _, r := range registries {
		if strings.TrimSpace(r) == "" {
			continue
		}
		host, err := allowedRegistry(h, r)
		if err != nil {
			return nil, fmt.Errorf("--registries: %w", err)
		}
		if !slices.Contains(hosts, host) {
			hosts = append(hosts, host)
		}
	}
	if len(hosts) == 0 {
		return nil, errors.New("--registries: no registry host given")
	}
	return hosts, nil
}

// hostToken is the token tokensForHosts got for one registry host.
type hostToken struct {
	host  string
	token *oauth2.Token
	cred  *token.Credential
}

// tokensForHosts gets a token (through the cache) for each host, in order.
// Hosts served by the same credential share one token, so a request for
// many hosts costs at most one mint per identity even when the cache is off
// or unwritable (a server in a read-only container).
func tokensForHosts(ctx context.Context, h *helper.Helper, hosts []string) ([]hostToken, error) {
	out := make([]hostToken, 0, len(hosts))
	byIdentity := make(map[string]*oauth2.Token)
	for i, host := range hosts {
		var tok *oauth2.Token
		var cred *token.Credential
		if i > 0 {
			// A credential stored for this host or its binding can differ
			// from the first host's; Resolve finds out without minting.
			c, _, err := h.Resolve(ctx, host)
			if err != nil {
				return nil, fmt.Errorf("getting a token for %s: %w", host, explainTokenError(err))
			}
			cred, tok = c, byIdentity[c.Identity]
		}
		if tok == nil {
			t, c, err := h.Token(ctx, host)
			if err != nil {
				return nil, fmt.Errorf("getting a token for %s: %w", host, explainTokenError(err))
			}
			tok, cred = t, c
			if c.Identity != "" {
				byIdentity[c.Identity] = t
			}
		}
		out = append(out, hostToken{host: host, token: tok, cred: cred})
	}
	return out, nil
}

// traceTokens tells call which credential served tokens (the first
// host's) and when they expire (the earliest).
func traceTokens(call *trace.Call, h *helper.Helper, tokens []hostToken) {
	if len(tokens) == 0 {
		return
	}
	call.Credential(tokens[0].cred, h.Bindings.Used(tokens[0].host, tokens[0].cred))
	for _, t := range tokens {
		call.Token(t.token)
	}
}

// explainTokenError turns "no credentials anywhere" into ErrNoCredentials,
// which says what to do; other errors already name their source and cause.
func explainTokenError(err error) error {
	if errors.Is(err, token.ErrNoCredentials) || credentials.IsErrCredentialsNotFound(err) {
		return ErrNoCredentials
	}
	return err
}
