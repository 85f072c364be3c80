package token

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// redactedMark replaces whatever redact removes.
const redactedMark = "[redacted]"

// minSecretFragment is the shortest run of a secret's text that redact
// removes on its own: a server may echo a secret cut short, and a later
// truncation (oneLine) may cut one, so no run of this many bytes of any
// form of a secret survives redact. Shorter runs are too short to use.
const minSecretFragment = 12

// secretPatterns are the shapes of Google secrets we may not have been
// told about, e.g. the signed JWT assertion x/oauth2 sends, or a token
// an endpoint echoes back: access tokens (ya29.), refresh tokens (1//,
// raw or URL-escaped), JWTs and OAuth client secrets (GOCSPX-, in any
// case, as a host name normalizer lowers it).
var secretPatterns = lazyRegexp(`ya29\.[0-9A-Za-z_.\-]{8,}` +
	`|eyJ[0-9A-Za-z_\-]{4,}\.[0-9A-Za-z_\-]{4,}\.[0-9A-Za-z_\-]*` +
	`|(?i:GOCSPX-)[0-9A-Za-z_\-]{8,}`)

// refreshTokenPattern is a refresh token, "1//" raw or URL-escaped, after a
// character that cannot be part of a host or path (so "127.0.0.1//x" is left).
var refreshTokenPattern = lazyRegexp(`(^|[^0-9A-Za-z.:/%])1(?://|%2[Ff]%2[Ff])[0-9A-Za-z_\-]{8,}`)

// redact removes secrets from s, which may quote a server's answer that
// echoes our request: every secret, and every line of a multi-line secret
// such as a PEM key, in each form a request or an answer carries it (raw,
// query-escaped as in a form body, path-escaped, JSON-escaped, with
// upper- or lower-case percent escapes); every run of minSecretFragment
// bytes or more of those forms (a secret cut short); and anything shaped
// like a Google token or JWT. Callers redact before they shorten a
// message, never after.
func redact(s string, secrets []string) string {
	forms := secretForms(secrets)
	for _, f := range forms {
		s = strings.ReplaceAll(s, f, redactedMark)
	}
	s = redactFragments(s, forms)
	s = refreshTokenPattern().ReplaceAllString(s, "${1}"+redactedMark)
	return secretPatterns().ReplaceAllString(s, redactedMark)
}

// secretForms lists the texts to remove for secrets, longest first, so a
// secret is removed whole before any shorter form inside it.
func secretForms(secrets []string) []string {
	seen := map[string]bool{}
	var forms []string
	add := func(v string) {
		for _, f := range []string{v, url.QueryEscape(v), url.PathEscape(v), jsonEscape(v, true), jsonEscape(v, false)} {
			for _, f := range []string{f, lowerEscapes(f)} {
				if f != "" && !seen[f] {
					seen[f] = true
					forms = append(forms, f)
				}
			}
		}
	}
	for _, secret := range secrets {
		if strings.TrimSpace(secret) == "" {
			continue
		}
		add(secret)
		for line := range strings.SplitSeq(secret, "\n") {
			if line = strings.TrimSpace(line); len(line) >= 16 {
				add(line)
			}
		}
	}
	slices.SortStableFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return forms
}

// jsonEscape is s as it appears inside a JSON string, with or without
// encoding/json's escaping of <, > and &.
func jsonEscape(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if enc.Encode(s) != nil {
		return ""
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// percentEscape is one %XX escape.
var percentEscape = lazyRegexp(`%[0-9A-F]{2}`)

// lowerEscapes is s with its percent escapes in lower case, as some
// servers re-encode what they echo.
func lowerEscapes(s string) string {
	return percentEscape().ReplaceAllStringFunc(s, strings.ToLower)
}

// redactFragments replaces every run of s made of windows of
// minSecretFragment bytes that occur in one of forms.
func redactFragments(s string, forms []string) string {
	const k = minSecretFragment
	if len(s) < k {
		return s
	}
	grams := map[string]bool{}
	for _, f := range forms {
		for i := 0; i+k <= len(f); i++ {
			grams[f[i:i+k]] = true
		}
	}
	if len(grams) == 0 {
		return s
	}
	covered := make([]bool, len(s))
	found := false
	for i := 0; i+k <= len(s); i++ {
		if grams[s[i:i+k]] {
			found = true
			for j := i; j < i+k; j++ {
				covered[j] = true
			}
		}
	}
	if !found {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !covered[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(redactedMark)
		for i < len(s) && covered[i] {
			i++
		}
	}
	return strings.ToValidUTF8(b.String(), "")
}

// Redact is redact for callers that write out text which may quote a
// secret (the trace's error lines): secrets are the ones the caller
// knows of; token and JWT shapes go whatever the list.
func Redact(s string, secrets ...string) string { return redact(s, secrets) }

// lazyRegexp compiles expr on first use, not at start-up, which every
// command (get included) would pay for patterns it may never use.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
