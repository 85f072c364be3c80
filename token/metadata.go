package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// metadataProbeTimeout bounds the whole "is there a metadata server?"
// probe, retries included, so that off Google Cloud a blackholed
// 169.254.169.254 costs at most this long.
const metadataProbeTimeout = time.Second

// metadataHTTPClient talks to the metadata server: never through a proxy,
// dialling and waiting for headers no longer than the probe allows.
var metadataHTTPClient = &http.Client{Transport: &retryTransport{
	base: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: metadataProbeTimeout}).DialContext,
		ResponseHeaderTimeout: 5 * time.Second,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	},
	retries:   maxRetries,
	baseDelay: retryBaseDelay,
}}

// metadataSource is the GCE/GKE/Cloud Run metadata server's default
// service account, at GCE_METADATA_HOST or 169.254.169.254.
type metadataSource struct {
	scopes []string
	cache  *FileCache // nil: always probe
}

// metadataHost is GCE_METADATA_HOST as host[:port], or Google's address.
// User info is dropped: no metadata server wants any (the Metadata-Flavor
// header is its whole protocol), and a password there would be echoed in
// every message that names the server.
func metadataHost() string {
	host := strings.TrimSpace(os.Getenv("GCE_METADATA_HOST"))
	host = strings.TrimPrefix(host, "http://")
	host = strings.TrimSuffix(host, "/")
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	if host == "" {
		return "169.254.169.254"
	}
	return host
}

func (metadataSource) Name() string { return "metadata server (" + metadataHost() + ")" }

// Find probes the server for the default account's e-mail, unless the
// cache holds a reusable token of this server's default account: then the
// server was there moments ago and a warm get needs no request. The cache
// entry keeps the e-mail. When the VM's service account changes, the old
// account's token is served until the policy would mint anew.
func (s metadataSource) Find(ctx context.Context) (*Credential, error) {
	host := metadataHost()
	// Keyed by the alias, not the e-mail, so that finding the entry needs
	// no request.
	identity := "metadata:" + host + ":default:" + scopeKey(s.scopes)
	var email string
	if c, ok := s.cachedToken(identity); ok {
		email = c.Principal
	} else {
		var err error
		if email, err = probeMetadata(ctx, host); err != nil {
			return nil, err
		}
	}
	ts := &metadataTokenSource{ctx: ctx, host: host, scopes: s.scopes, email: email}
	return &Credential{
		Source:      s.Name(),
		Kind:        "metadata",
		Principal:   ShownPrincipal(email),
		Identity:    identity,
		Cacheable:   true,
		TokenSource: oauth2.ReuseTokenSource(nil, ts),
	}, nil
}

// cachedToken is the reusable cached token of identity, if there is one.
func (s metadataSource) cachedToken(identity string) (CachedToken, bool) {
	if s.cache == nil {
		return CachedToken{}, false
	}
	c, ok := s.cache.Lookup(identity)
	return c, ok && c.Reusable && c.Principal != ""
}

// probeMetadata asks for the default service account's e-mail within
// metadataProbeTimeout. No answer, or an answer without the
// Metadata-Flavor header, means there is no metadata server.
func probeMetadata(ctx context.Context, host string) (string, error) {
	pctx, cancel := context.WithTimeout(ctx, metadataProbeTimeout)
	defer cancel()
	resp, err := metadataGet(pctx, host, "instance/service-accounts/default/email")
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("asking the metadata server at %s: %w", host, ctx.Err())
		}
		return "", NotFound("no metadata server at %s: %s", host, probeFailure(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.Header.Get("Metadata-Flavor") != "Google" {
		return "", NotFound("no metadata server at %s: the answer (HTTP %d) lacks the Metadata-Flavor: Google header", host, resp.StatusCode)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", NotFound("the metadata server at %s has no service account", host)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("the metadata server answered HTTP %d for the default service account: %s", resp.StatusCode, oneLine(string(body)))
	}
	email := strings.TrimSpace(string(body))
	if email == "" {
		email = "default"
	}
	return email, nil
}

// probeFailure shortens a transport error to its cause.
func probeFailure(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Sprintf("no answer within %v", metadataProbeTimeout)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err.Error()
	}
	return err.Error()
}

func metadataGet(ctx context.Context, host, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/computeMetadata/v1/"+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	return metadataHTTPClient.Do(req)
}

// metadataTokenSource fetches the default service account's token.
type metadataTokenSource struct {
	ctx    context.Context
	host   string
	email  string
	scopes []string
}

func (s *metadataTokenSource) Token() (*oauth2.Token, error) {
	tok, err := s.fetch()
	if err != nil {
		return nil, fmt.Errorf("metadata server (%s): token for %s: %w", s.host, s.email, err)
	}
	return tok, nil
}

func (s *metadataTokenSource) fetch() (*oauth2.Token, error) {
	path := "instance/service-accounts/default/token?scopes=" + url.QueryEscape(strings.Join(s.scopes, ","))
	resp, err := metadataGet(s.ctx, s.host, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		if !refusal(resp.StatusCode) {
			return nil, &statusError{status: resp.StatusCode, msg: failingAnswer("the server", resp.StatusCode, answerDetail(body))}
		}
		return nil, &statusError{status: resp.StatusCode, msg: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, answerDetail(body))}
	}
	var r struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("unreadable token answer: %v", jsonProblem(err, body))
	}
	if r.AccessToken == "" {
		return nil, errors.New("the answer has no access_token")
	}
	if r.ExpiresIn <= 0 {
		return nil, errors.New("the answer has no expires_in")
	}
	if r.TokenType == "" {
		r.TokenType = "Bearer"
	}
	return &oauth2.Token{
		AccessToken: r.AccessToken,
		TokenType:   r.TokenType,
		Expiry:      time.Now().Add(time.Duration(r.ExpiresIn) * time.Second),
	}, nil
}
