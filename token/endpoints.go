package token

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// A credential JSON names the URLs its tokens go to. Whoever wrote the file
// decides them, so, in the spirit of Google's advice on credential
// configurations from external sources, they are checked before any
// request: Google tokens and subject tokens go only to Google (or to a
// loopback server, such as a test's fake), and a subject token is fetched
// over https, from loopback or from a cloud's link-local metadata server.

// defaultUniverse is the universe_domain of a credential that names none.
const defaultUniverse = "googleapis.com"

// cloudMetadataIPs are the link-local metadata servers that AWS and Azure
// serve subject tokens from over plain http (AWS's IPv6 one included);
// Google's own generated configs for those clouds name them.
var cloudMetadataIPs = []string{"169.254.169.254", "fd00:ec2::254"}

// checkEndpoints checks the URLs of an external_account,
// external_account_authorized_user or impersonated_service_account
// credential: token_url and service_account_impersonation_url must be
// https on *.googleapis.com (Private Service Connect's *.p.googleapis.com
// included) or on the file's universe_domain, or http(s) on loopback;
// credential_source's URLs must be https, loopback or a cloud metadata
// server. Errors quote a host only, never a whole URL.
func (f *credentialJSON) checkEndpoints() error {
	universe := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(f.UniverseDomain), "."))
	for _, e := range []struct{ field, raw string }{
		{"token_url", f.TokenURL},
		{"service_account_impersonation_url", f.ImpersonationURL},
	} {
		if e.raw == "" {
			continue
		}
		if err := checkGoogleEndpoint(e.raw, universe); err != nil {
			return fmt.Errorf("the %s credential's %s %w", f.Type, e.field, err)
		}
	}
	if src := f.CredentialSource; src != nil {
		for _, e := range []struct{ field, raw string }{
			{"url", src.URL},
			{"region_url", src.RegionURL},
			{"imdsv2_session_token_url", src.IMDSv2SessionTokenURL},
		} {
			if e.raw == "" {
				continue
			}
			if err := checkSubjectTokenEndpoint(e.raw); err != nil {
				return fmt.Errorf("the %s credential's credential_source.%s %w", f.Type, e.field, err)
			}
		}
	}
	return nil
}

// checkGoogleEndpoint checks a URL that Google tokens or subject tokens are
// sent to. A universe of one label ("com") would admit half the internet,
// so only a dotted one counts. The error completes "the ... credential's
// FIELD ".
func checkGoogleEndpoint(raw, universe string) error {
	u, err := parseEndpoint(raw)
	if err != nil {
		return err
	}
	host := endpointHost(u)
	switch {
	case isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "https" && (inDomain(host, defaultUniverse) || strings.Contains(universe, ".") && inDomain(host, universe)):
		return nil
	case u.Scheme == "https":
		return fmt.Errorf("names %s, which is not a Google host (*.googleapis.com or the file's universe_domain); refusing to send tokens there: use a credential configuration from Google (gcloud iam workload-identity-pools create-cred-config)", quoteHost(host))
	default:
		return fmt.Errorf("must use https unless it is a loopback address (it is sent tokens); refusing %s", quoteHost(host))
	}
}

// checkSubjectTokenEndpoint checks a URL a subject token is fetched from:
// https anywhere (it is the CI's or the cloud's own endpoint), else loopback
// or a cloud's link-local metadata server.
func checkSubjectTokenEndpoint(raw string) error {
	u, err := parseEndpoint(raw)
	if err != nil {
		return err
	}
	if u.Scheme == "https" || isLoopback(u.Hostname()) || slices.Contains(cloudMetadataIPs, u.Hostname()) {
		return nil
	}
	return fmt.Errorf("must use https unless it is a loopback address or a cloud metadata server; refusing %s", quoteHost(endpointHost(u)))
}

// parseEndpoint parses an http(s) URL with a host.
func parseEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("is not an http(s) URL")
	}
	return u, nil
}

// endpointHost is u's host name, lower case, without a trailing dot.
func endpointHost(u *url.URL) string {
	return strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
}

// inDomain reports whether host is domain or a name under it.
func inDomain(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// quoteHost quotes a host name for an error, or says it is not shown when
// it is not plainly one (a host part may hold anything a file's author put
// there).
func quoteHost(host string) string {
	for _, c := range host {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == ':') {
			return "that host (not shown)"
		}
	}
	return fmt.Sprintf("%q", host)
}
