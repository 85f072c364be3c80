package token

import "strings"

// UnrecognizedPrincipal stands in for a principal that does not look like
// one: a credential file's client_email may hold anything, even a pasted
// private key, and doctor and configure-docker print the principal.
const UnrecognizedPrincipal = "(unrecognized, not shown)"

// maxPrincipalLen bounds a printed principal; real ones are under 300 bytes.
const maxPrincipalLen = 512

// principalPrefixes start the workload identity principals Google defines.
var principalPrefixes = []string{"principal://", "principalSet://", "//iam.googleapis.com/"}

// ShownPrincipal is the one check of what may be printed as a credential's
// principal: s itself when it looks like an account e-mail or a workload
// identity principal (principal://…, principalSet://…, //iam.googleapis.com/…),
// else UnrecognizedPrincipal. An empty s stays empty (unknown).
func ShownPrincipal(s string) string {
	if s == "" || isEmail(s) || isWorkloadPrincipal(s) {
		return s
	}
	return UnrecognizedPrincipal
}

// isEmail reports whether s is a plain address local@domain: a local part
// of 1–64 letters, digits and ._%+- and a dotted DNS domain.
func isEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || len(domain) > 253 || !strings.Contains(domain, ".") {
		return false
	}
	for _, c := range []byte(local) {
		if !isAlnum(c) && !strings.ContainsRune("._%+-", rune(c)) {
			return false
		}
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// isWorkloadPrincipal reports whether s is a principal identifier such as
// principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/s
// or a workload identity provider's audience: a known prefix, then only
// URL-safe characters, no spaces or line breaks.
func isWorkloadPrincipal(s string) bool {
	if len(s) > maxPrincipalLen {
		return false
	}
	for _, p := range principalPrefixes {
		if rest, ok := strings.CutPrefix(s, p); ok && rest != "" {
			for _, c := range []byte(rest) {
				if !isAlnum(c) && !strings.ContainsRune("._~:/@%+=-", rune(c)) {
					return false
				}
			}
			return true
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
