package helper

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker-credential-gcp/docker-credential-gcp/config"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// This file is the one home of per-registry identity (SPEC §3): which
// credential a host is bound to, and where that binding was made. A binding
// names exactly one normalized host; there are no wildcards, so a binding
// can never reach a host its author did not name.

// EnvBindings binds credentials to hosts in a CI job's environment:
// "HOST=SPEC;HOST=SPEC", SPEC being an absolute credential-file path,
// impersonate:SA_EMAIL, or PATH,impersonate:SA_EMAIL. For the hosts it
// names it replaces the bindings recorded by configure-docker.
const EnvBindings = "DOCKER_CREDENTIAL_GCP_BINDINGS"

// impersonatePrefix marks the impersonation part of a binding spec.
const impersonatePrefix = "impersonate:"

// Binding is the identity one host uses, and where that was decided.
type Binding struct {
	config.Binding
	// Origin says where the binding was made, for doctor and errors.
	Origin string
}

// String describes the binding without any secret: it holds only a path
// and an e-mail.
func (b Binding) String() string {
	var parts []string
	if b.CredentialFile != "" {
		parts = append(parts, "credential file "+b.CredentialFile)
	} else {
		parts = append(parts, "the default source chain")
	}
	if b.Impersonate != "" {
		parts = append(parts, "impersonating "+b.Impersonate)
	}
	return strings.Join(parts, ", ")
}

// Bindings are the bindings in force, by normalized host.
type Bindings map[string]Binding

// Used describes the binding of host that cred came through, or "" when
// host has none or a credential stored for host won, which comes before
// any binding.
func (b Bindings) Used(host string, cred *token.Credential) string {
	binding, ok := b[host]
	if !ok || cred == nil || strings.HasPrefix(cred.Source, storedSourcePrefix) {
		return ""
	}
	return binding.String()
}

// loadBindings merges the bindings recorded in the settings file with
// those of DOCKER_CREDENTIAL_GCP_BINDINGS, which win host by host. Every
// bound host must be one the policy serves, or the binding could never apply.
func loadBindings(recorded []config.Binding, env string, policy Policy) (Bindings, error) {
	out := Bindings{}
	settings := "settings file"
	if path, err := config.Path(); err == nil && len(recorded) > 0 {
		settings = "settings file " + path
	}
	for _, b := range recorded {
		// configure-docker records hosts normalized; a hand-edited entry
		// is normalized here, or refused, so that it cannot silently miss.
		host, err := BindingHost(b.Host)
		if err != nil {
			return nil, fmt.Errorf("%s: a recorded binding: %w; correct or delete that entry in the file", settings, err)
		}
		// Two entries that normalize to one host would resolve to
		// whichever came last, silently: refused, as the env form does.
		if _, twice := out[host]; twice {
			return nil, fmt.Errorf("%s: two recorded bindings name %s; delete one of them in the file, or run configure-docker --registries %s with the --bind-* flags you want", settings, shownHost(host), shownHost(host))
		}
		b.Host = host
		out[host] = Binding{Binding: b, Origin: settings}
	}
	fromEnv, err := ParseBindings(env)
	if err != nil {
		return nil, err
	}
	for _, b := range fromEnv {
		origin := EnvBindings
		if _, ok := out[b.Host]; ok {
			origin += ", replacing the one in the settings file"
		}
		if _, ok := policy.Allows(b.Host); !ok {
			host := shownHost(b.Host)
			return nil, fmt.Errorf("%s: %s is not a registry this helper serves (gcr.io, *.gcr.io, *.pkg.dev); add it to %s or run configure-docker --registries %s", EnvBindings, host, EnvRegistries, host)
		}
		out[b.Host] = Binding{Binding: b, Origin: origin}
	}
	return out, nil
}

// ParseBindings parses DOCKER_CREDENTIAL_GCP_BINDINGS. Blank entries are
// ignored; anything else that is not HOST=SPEC is an error that names the
// entry by number and never quotes a spec (someone may have pasted a key).
func ParseBindings(s string) ([]config.Binding, error) {
	var out []config.Binding
	seen := map[string]bool{}
	n := 0
	for entry := range strings.SplitSeq(s, ";") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		n++
		rawHost, spec, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("%s: entry %d has no \"=\"; want HOST=/path/credential.json, HOST=impersonate:SA_EMAIL or HOST=/path/credential.json,impersonate:SA_EMAIL, entries separated by ';'", EnvBindings, n)
		}
		host, err := BindingHost(rawHost)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", EnvBindings, n, err)
		}
		if seen[host] {
			return nil, fmt.Errorf("%s: entry %d binds %s a second time; bind each host once", EnvBindings, n, shownHost(host))
		}
		seen[host] = true
		b, err := parseBindingSpec(host, spec)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d (%s): %w", EnvBindings, n, shownHost(host), err)
		}
		out = append(out, b)
	}
	return out, nil
}

// parseBindingSpec reads "PATH", "impersonate:EMAIL" or
// "PATH,impersonate:EMAIL". Only a comma followed (spaces aside) by
// impersonate: splits, so a path may hold commas, but no other part of it
// may name a second target.
func parseBindingSpec(host, spec string) (config.Binding, error) {
	b := config.Binding{Host: host}
	path := strings.TrimSpace(spec)
	if i := strings.LastIndex(path, ","); i >= 0 && isImpersonatePart(path[i+1:]) {
		path, b.Impersonate = strings.TrimSpace(path[:i]), strings.TrimSpace(path[i+1:])
	} else if strings.HasPrefix(path, impersonatePrefix) {
		path, b.Impersonate = "", path
	}
	if b.Impersonate != "" {
		b.Impersonate = strings.TrimSpace(strings.TrimPrefix(b.Impersonate, impersonatePrefix))
		if err := CheckServiceAccount(b.Impersonate); err != nil {
			return b, err
		}
	}
	switch {
	case path == "" && b.Impersonate == "":
		return b, errors.New("the binding is empty; want an absolute credential-file path, impersonate:SA_EMAIL or both")
	case path == "":
	case slices.ContainsFunc(strings.Split(path, ","), isImpersonatePart):
		return b, errors.New("names two impersonation targets")
	case !filepath.IsAbs(path):
		// Not quoted: it may be key material pasted by mistake.
		return b, errors.New("the credential file must be an absolute path (or use impersonate:SA_EMAIL)")
	default:
		b.CredentialFile = filepath.Clean(path)
	}
	return b, nil
}

// isImpersonatePart reports whether part, one comma-separated part of a
// spec, names an impersonation target.
func isImpersonatePart(part string) bool {
	return strings.HasPrefix(strings.TrimSpace(part), impersonatePrefix)
}

// BindingHost checks that s is one bare registry host (no scheme, path,
// user info or wildcard; a port only on a non-Google host, where another
// port is another server) and returns it normalized, as Get sees it.
func BindingHost(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "*") {
		return "", fmt.Errorf("%s: wildcards are not supported; bind each host by name", quoteHost(s))
	}
	errNotBare := errors.New("a binding names a bare registry host such as europe-docker.pkg.dev (no scheme, path or user info; a port only on a non-Google registry)")
	if strings.ContainsAny(s, "/@?#\\") {
		return "", errNotBare
	}
	host, err := ParseHost(s)
	if err != nil {
		return "", err
	}
	if IsGoogleRegistry(host) && strings.Contains(s, ":") {
		return "", errNotBare
	}
	return host, nil
}

// CheckServiceAccount checks the shape of a service-account e-mail to
// impersonate; IAM decides whether it exists. The value is not quoted.
func CheckServiceAccount(email string) error {
	email = strings.TrimSpace(email)
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(domain, "@") ||
		strings.ContainsFunc(email, func(r rune) bool { return r <= ' ' || r == '/' || r == 0x7f || r > 0x7e }) {
		return errors.New("the impersonation target is not a service-account e-mail such as release@PROJECT.iam.gserviceaccount.com")
	}
	return nil
}
