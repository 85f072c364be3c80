package token

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Retry policy for Google's token, STS, IAM and metadata endpoints: a few
// quick retries of answers that say "try again", never of a refusal.
const (
	maxRetries       = 3
	retryBaseDelay   = 200 * time.Millisecond
	maxRetryAfter    = 5 * time.Second
	maxRetainedBody  = 64 << 10
	maxResponseBytes = 1 << 20
)

// tokenHTTPClient is the client for our own token requests, which always
// carry their context.
var tokenHTTPClient = newTokenClient(context.Background())

// newTokenClient returns a retrying client for token endpoints. Requests
// without a context of their own get ctx: x/oauth2's service-account flow
// sends its POST without one, so only this binds it to the caller's deadline.
func newTokenClient(ctx context.Context) *http.Client {
	return &http.Client{
		Transport: &retryTransport{
			base:      http.DefaultTransport,
			retries:   maxRetries,
			baseDelay: retryBaseDelay,
			ctx:       ctx,
		},
		CheckRedirect: refuseRedirect,
	}
}

// refuseRedirect stops every redirect: Google's token, STS and IAM
// endpoints never redirect, and following one would re-send a signed JWT
// assertion, refresh token or bearer token to whatever host it names.
func refuseRedirect(*http.Request, []*http.Request) error {
	return errors.New("the token endpoint answered with a redirect; refusing to send credentials elsewhere")
}

// endpointFromEnv is the URL in the environment variable name, else def.
// It must be https unless it is a loopback address, since it is sent
// credentials, and hold no user info: a password there would be echoed by
// every error that names the endpoint. Errors quote the URL only without
// user info, and only once it parses.
func endpointFromEnv(name, def string) (string, error) {
	raw := strings.TrimSpace(os.Getenv(name))
	if raw == "" {
		return def, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("%s is not an http(s) URL such as %s", name, def)
	}
	if u.User != nil {
		u.User = nil
		return "", fmt.Errorf("%s=%q holds user info (name or password, not shown); remove it: the endpoint is sent credentials of its own", name, Redact(u.String()))
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("%s=%q must use https unless it is a loopback address: it is sent credentials", name, Redact(raw))
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// isLoopback reports whether host is localhost or a loopback IP literal.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// withHTTPClient makes x/oauth2 send its requests, under ctx, through a
// retrying client.
func withHTTPClient(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, newTokenClient(ctx))
}

// retryTransport retries answers of 5xx and 429 with bounded exponential
// backoff, honouring Retry-After (capped at maxRetryAfter). It never retries
// a 4xx or a transport error, replays request bodies, and stops waiting when
// the request's context ends or its deadline would pass during the wait; it
// then returns the last answer so the caller reports the server's reason.
type retryTransport struct {
	base      http.RoundTripper
	retries   int
	baseDelay time.Duration
	// ctx, when set, is given to requests that come without a context.
	ctx context.Context
}

// RoundTrip implements http.RoundTripper. An HTML answer, which no Google
// endpoint gives, is an error saying so (see refuseHTML), and so is a host
// that cannot be reached (see unreachable).
func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if err != nil {
		return nil, unreachable(req.URL, err)
	}
	return refuseHTML(req.URL, resp, nil)
}

func (t *retryTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if t.ctx != nil && req.Context().Done() == nil {
		req = req.WithContext(t.ctx)
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.Body, _ = req.GetBody()
	}
	ctx := req.Context()
	report := reportFrom(ctx)
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r = req.Clone(ctx)
			r.Body = body
		}
		report.requested()
		resp, err := t.base.RoundTrip(r)
		if err != nil || !retryable(resp.StatusCode) || attempt >= t.retries {
			return resp, err
		}
		delay := t.delay(attempt, resp.Header.Get("Retry-After"))
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return resp, nil
		}
		// Keep the answer readable in case the context ends during the wait.
		kept, _ := io.ReadAll(io.LimitReader(resp.Body, maxRetainedBody))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(kept))
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return resp, nil
		case <-timer.C:
		}
	}
}

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// statusError is an endpoint's answer other than 200, explained for users.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// refused reports whether err is an endpoint refusing the credential: an
// answer of 4xx other than 408 and 429 (a revoked key, a removed role).
// Unlike a network failure or a 5xx, waiting does not cure it.
func refused(err error) bool {
	status := 0
	var re *oauth2.RetrieveError
	var se *statusError
	switch {
	case errors.As(err, &re) && re.Response != nil:
		status = re.Response.StatusCode
	case errors.As(err, &se):
		status = se.status
	}
	return status >= 400 && refusal(status)
}

// Unavailable reports whether err is a failure to get a verdict on the
// credential at all: its endpoint could not be reached, did not answer in
// time, answered with a page that is not its own (a proxy's), or failed
// (5xx, 408, 429). Waiting or fixing the network cures it; changing the
// credential does not.
func Unavailable(err error) bool {
	var re *oauth2.RetrieveError
	var se *statusError
	var html *htmlAnswerError
	var unreach *unreachableError
	switch {
	case errors.As(err, &re):
		return re.Response != nil && !refusal(re.Response.StatusCode)
	case errors.As(err, &se):
		return !refusal(se.status)
	case errors.As(err, &html), errors.As(err, &unreach), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	// x/oauth2 flattens transport errors to text: read each link's.
	for ; err != nil; err = errors.Unwrap(err) {
		if msg := err.Error(); explainAnswer(msg) != "" || strings.HasSuffix(msg, context.DeadlineExceeded.Error()) {
			return true
		}
	}
	return false
}

// delay is the wait before retry attempt+1: Retry-After when the server
// gave one, else baseDelay·2^attempt with jitter in [½, 1].
func (t *retryTransport) delay(attempt int, retryAfter string) time.Duration {
	if d, ok := parseRetryAfter(retryAfter); ok {
		return min(d, maxRetryAfter)
	}
	d := t.baseDelay << attempt
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

func parseRetryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int(maxRetryAfter/time.Second))) * time.Second, true
	}
	if when, err := http.ParseTime(v); err == nil {
		return max(time.Until(when), 0), true
	}
	return 0, false
}
