package token

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// unreachableError is a request that got no answer because its host could
// not be reached: the name does not resolve, nothing accepts the
// connection, or there is no route. It replaces Go's "dial tcp: lookup
// oauth2.googleapis.com on 10.0.0.53:53: no such host" with what failed and
// what to check, as the timeout message does.
type unreachableError struct {
	origin string // scheme://host of the request
	what   string // what failed, in words
	check  string // what to check
	err    error
}

// unreachablePhrase starts every unreachableError, so that an error
// x/oauth2 flattened to text can still be recognised (see explainAnswer).
const unreachablePhrase = "cannot reach "

func (e *unreachableError) Error() string {
	return fmt.Sprintf("%s%s: %s; check %s", unreachablePhrase, e.origin, e.what, e.check)
}

func (e *unreachableError) Unwrap() error { return e.err }

// unreachable explains err, a transport's failure to send a request to u,
// when the host (or the proxy) could not be reached; other errors, timeouts
// included, which their callers word, it returns as they are.
func unreachable(u *url.URL, err error) error {
	var op *net.OpError
	if !errors.As(err, &op) || (op.Op != "dial" && op.Op != "proxyconnect") ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	e := &unreachableError{origin: u.Scheme + "://" + u.Host, err: err}
	// With a proxy set, the connection goes to the proxy, not to u's host.
	proxy := op.Op == "proxyconnect"
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns) && proxy:
		e.what = fmt.Sprintf("looking up the proxy's name %s failed (%s)", dns.Name, dns.Err)
		e.check = "HTTPS_PROXY, HTTP_PROXY and NO_PROXY, and this machine's DNS settings"
	case errors.As(err, &dns) && dns.IsNotFound:
		e.what = fmt.Sprintf("the name %s is not known to DNS", dns.Name)
		e.check = "that address, this machine's network connection and DNS settings, and HTTPS_PROXY if this network needs a proxy"
	case errors.As(err, &dns):
		e.what = fmt.Sprintf("looking up the name %s failed (%s)", dns.Name, dns.Err)
		e.check = "this machine's network connection and DNS settings, and HTTPS_PROXY if this network needs a proxy"
	case errors.Is(err, syscall.ECONNREFUSED) && proxy:
		e.what = fmt.Sprintf("the proxy %s refused the connection", dialAddress(op, u))
		e.check = "HTTPS_PROXY, HTTP_PROXY and NO_PROXY"
	case errors.Is(err, syscall.ECONNREFUSED):
		e.what = fmt.Sprintf("%s refused the connection (nothing listens there)", dialAddress(op, u))
		e.check = "that address, and HTTPS_PROXY and NO_PROXY if this network needs a proxy"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		e.what = fmt.Sprintf("there is no route to %s", dialAddress(op, u))
		e.check = "this machine's network connection, and HTTPS_PROXY if this network needs a proxy"
		if proxy {
			e.what += " (the proxy)"
			e.check = "this machine's network connection and HTTPS_PROXY"
		}
	default:
		return err
	}
	return e
}

// dialAddress is the address a failed dial went to, else u's host.
func dialAddress(op *net.OpError, u *url.URL) string {
	for err := error(op); errors.As(err, &op); err = op.Err {
		if op.Addr != nil {
			return op.Addr.String()
		}
	}
	return u.Host
}

// answerOrReachError is the explanation err carries of an answer that was
// no use (an HTML page) or of a host that could not be reached, without the
// "Post URL:" the HTTP client put in front; else err itself.
func answerOrReachError(err error) error {
	var html *htmlAnswerError
	var unreach *unreachableError
	switch {
	case errors.As(err, &html):
		return html
	case errors.As(err, &unreach):
		return unreach
	}
	return err
}

// explainAnswer returns the htmlAnswerError or unreachableError inside
// msg, from its start, dropping what x/oauth2 put in front ("oauth2: cannot
// fetch token: Post ...:"), or "" when msg holds neither. x/oauth2 flattens
// transport errors to text, so errors.As cannot find them.
func explainAnswer(msg string) string {
	if html := explainHTMLAnswer(msg); html != "" {
		return html
	}
	i := strings.Index(msg, unreachablePhrase)
	if i < 0 || !strings.Contains(msg[i:], "; check ") {
		return ""
	}
	return msg[i:]
}
