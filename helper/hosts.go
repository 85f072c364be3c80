package helper

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// This file is the one home of host knowledge (SPEC §2): how a server URL
// is parsed, which hosts are Google's, and which hosts configure-docker
// registers by default.

// DefaultRegistries are the hosts configure-docker registers when none are
// named: Container Registry and Artifact Registry's multi-regions.
var DefaultRegistries = []string{
	"gcr.io",
	"us.gcr.io",
	"eu.gcr.io",
	"asia.gcr.io",
	"marketplace.gcr.io",
	"us-docker.pkg.dev",
	"europe-docker.pkg.dev",
	"asia-docker.pkg.dev",
}

// ArtifactRegistryRegions are the GCP regions and multi-regions that host an
// Artifact Registry "<region>-docker.pkg.dev" endpoint, for
// configure-docker --all-regions. Tokens are given to every *.pkg.dev host
// whether listed here or not; this list only decides what docker is told.
var ArtifactRegistryRegions = []string{
	"us", "europe", "asia",
	"africa-south1",
	"asia-east1", "asia-east2",
	"asia-northeast1", "asia-northeast2", "asia-northeast3",
	"asia-south1", "asia-south2",
	"asia-southeast1", "asia-southeast2",
	"australia-southeast1", "australia-southeast2",
	"europe-central2",
	"europe-north1", "europe-north2",
	"europe-southwest1",
	"europe-west1", "europe-west2", "europe-west3", "europe-west4",
	"europe-west6", "europe-west8", "europe-west9", "europe-west10", "europe-west12",
	"me-central1", "me-central2", "me-west1",
	"northamerica-northeast1", "northamerica-northeast2", "northamerica-south1",
	"southamerica-east1", "southamerica-west1",
	"us-central1",
	"us-east1", "us-east4", "us-east5",
	"us-south1",
	"us-west1", "us-west2", "us-west3", "us-west4",
}

// AllRegionRegistries is DefaultRegistries plus the Artifact Registry host of
// every region, without duplicates, in a stable order.
func AllRegionRegistries() []string {
	seen := make(map[string]bool)
	var out []string
	add := func(h string) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, h := range DefaultRegistries {
		add(h)
	}
	for _, r := range ArtifactRegistryRegions {
		add(r + "-docker.pkg.dev")
	}
	return out
}

// errEmptyServerURL is returned for a blank server URL.
var errEmptyServerURL = errors.New("empty server URL")

// ParseHost extracts the registry host from any server URL form docker,
// crane, skopeo or the kubelet send ("https://GCR.IO./v2/", "gcr.io/p/img",
// "user@eu.gcr.io:443", ...). It returns the host in lower case without a
// trailing dot, and an error for anything that is not a plain DNS name or
// IP literal. A Google registry's port is dropped (Google serves one
// registry per name); any other host keeps an explicit port
// ("localhost:5000", "[::1]:5000"), because another port of the same name
// is another server, maybe another user's. An IPv6 literal keeps its
// brackets, so that ParseHost of its own result returns it unchanged.
// Errors never quote user info, which may hold a password.
func ParseHost(serverURL string) (string, error) {
	s := strings.TrimSpace(serverURL)
	if s == "" {
		return "", errEmptyServerURL
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", errors.New("server URL contains a control character")
		}
	}
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		scheme := strings.ToLower(s[:i])
		if scheme != "https" && scheme != "http" {
			return "", fmt.Errorf("unsupported scheme %s in server URL (want https:// or none)", quoteHost(s[:i]))
		}
		s = s[i+len("://"):]
	} else {
		s = strings.TrimPrefix(s, "//")
	}
	// The authority ends where the path, query or fragment begins; a
	// backslash is refused below, never read as a separator.
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	// WHATWG parsers read a backslash as '/', Go's as a bad character: the
	// host of "evil.com\@gcr.io" is ambiguous, so refuse it.
	if strings.ContainsRune(s, '\\') {
		return "", errors.New("server URL has a backslash before its path")
	}
	// User info ends at the last '@': "gcr.io@evil.com" is evil.com.
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	host, port, err := splitPort(s)
	if err != nil {
		return "", err
	}
	if host, err = normalizeHost(host); err != nil {
		return "", err
	}
	if port == "" || IsGoogleRegistry(host) {
		return host, nil
	}
	return host + ":" + port, nil
}

// isScheme reports whether s is a URL scheme (RFC 3986 §3.1).
func isScheme(s string) bool {
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// splitPort splits an authority into its host (an IPv6 literal keeps its
// brackets, lower-cased) and its port in decimal without leading zeros, or
// "" when there is none.
func splitPort(s string) (host, port string, err error) {
	host = s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("invalid registry host %s: unclosed '['", quoteHost(s))
		}
		host, port = s[1:end], s[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return "", "", fmt.Errorf("invalid registry host %s", quoteHost(s))
		}
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", "", fmt.Errorf("invalid IPv6 address %s", quoteHost(host))
		}
		host = "[" + asciiLower(host) + "]"
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" {
		n, err := strconv.ParseUint(port[1:], 10, 16)
		if err != nil || n == 0 || len(port) > 6 {
			// Not quoted: in a malformed URL it may be part of a password.
			return "", "", errors.New("invalid port in server URL")
		}
		port = strconv.FormatUint(n, 10)
	}
	if host == "" {
		return "", "", errors.New("server URL has no host")
	}
	return host, port, nil
}

// normalizeHost lower-cases a host name, drops one trailing dot and checks
// that it is a valid DNS name (letters, digits, inner hyphens; labels of
// 1–63 characters) or an IP literal.
func normalizeHost(host string) (string, error) {
	if strings.HasPrefix(host, "[") { // an IPv6 literal, already checked
		return host, nil
	}
	// Lower-case ASCII only: strings.ToLower would turn the Kelvin sign
	// into a "k" and let a host that is not in the input through.
	h := asciiLower(strings.TrimSuffix(host, "."))
	if !validHostname(h) {
		return "", fmt.Errorf("invalid registry host %s", quoteHost(host))
	}
	return h, nil
}

// quoteHost is how an error quotes text that should have been a host (or
// a scheme): quoted when it is made of the characters of one and is not
// shaped like a secret, else not shown at all. It may be a password or
// token pasted into the wrong place, and an error line ends up in logs.
func quoteHost(s string) string {
	hostChar := func(r rune) bool {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(".-:[]", r)
	}
	if s == "" || len(s) > 253 || strings.ContainsFunc(s, func(r rune) bool { return !hostChar(r) }) || token.Redact(s) != s {
		return "(not shown: it is not a host name and may be a secret)"
	}
	return strconv.Quote(s)
}

// shownHost is host, as ParseHost returned it, for a message, unless it is
// shaped like a secret (a client secret "GOCSPX-..." is a valid host name).
func shownHost(host string) string {
	if token.Redact(host) != host {
		return "(a host shaped like a secret, not shown)"
	}
	return host
}

// asciiLower lower-cases the ASCII letters of s and leaves every other byte.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// validHostname reports whether h is a lower-case DNS name of valid labels.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

// validLabel reports whether l is a lower-case DNS label (RFC 1123).
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// IsGoogleRegistry reports whether host (as returned by ParseHost) is one of
// Google's registries: gcr.io, any *.gcr.io, or any *.pkg.dev. Google owns
// both domains, so the pattern is matched rather than a list kept.
func IsGoogleRegistry(host string) bool {
	if !validHostname(host) {
		return false
	}
	return host == "gcr.io" ||
		strings.HasSuffix(host, ".gcr.io") ||
		strings.HasSuffix(host, ".pkg.dev")
}

// Policy decides which registries get a token: Google's, plus the Extra
// hosts the user named in DOCKER_CREDENTIAL_GCP_REGISTRIES or the settings
// file. Every other host gets "not found" and no source is consulted.
type Policy struct {
	// Extra are additional hosts in any form ParseHost accepts. An entry
	// with a port serves that port only, one without serves requests
	// without a port only. Entries that do not parse are ignored.
	Extra []string
}

// Allows parses serverURL and reports whether its host gets a token. The
// host is returned either way when it parses, for error messages.
func (p Policy) Allows(serverURL string) (host string, ok bool) {
	host, err := ParseHost(serverURL)
	if err != nil {
		return "", false
	}
	if IsGoogleRegistry(host) {
		return host, true
	}
	for _, e := range p.Extra {
		if extra, err := ParseHost(e); err == nil && extra == host {
			return host, true
		}
	}
	return host, false
}

// SplitRegistries splits a comma-separated host list such as
// DOCKER_CREDENTIAL_GCP_REGISTRIES, dropping blanks.
func SplitRegistries(list string) []string {
	var out []string
	for h := range strings.SplitSeq(list, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}
