package helper

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseBindings checks that DOCKER_CREDENTIAL_GCP_BINDINGS never
// panics, that every binding it accepts names one normalized host that
// appears in the input and a clean absolute path or a plausible e-mail,
// and that its errors are one line that never echoes a spec.
func FuzzParseBindings(f *testing.F) {
	for _, s := range []string{
		"europe-docker.pkg.dev=/secrets/release.json",
		"gcr.io=impersonate:sa@p.iam.gserviceaccount.com;us-docker.pkg.dev=/k/a,b.json,impersonate:x@y",
		"*-docker.pkg.dev=/k.json", "gcr.io=SECRETKEY", "a=b=c", ";;", "GCR.IO.=/x/../y",
		"localhost:5000=/k.json;[::1]:05000=impersonate:x@y", "gcr.io:443=/k.json",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		bindings, err := ParseBindings(in)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("ParseBindings(%q): error spans lines: %q", in, err)
			}
			// A spec may be key material; a host is quoted, so skip specs it holds.
			if host, spec, ok := strings.Cut(in, "="); ok && len(spec) >= 12 && !strings.ContainsAny(spec, ";") && !strings.Contains(host, spec) && strings.Contains(err.Error(), spec) {
				t.Fatalf("ParseBindings(%q): error quotes the spec: %q", in, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, b := range bindings {
			name, port := splitHostPort(b.Host)
			if host, err := ParseHost(b.Host); err != nil || host != b.Host || strings.ContainsAny(b.Host, "*/@") ||
				port != "" && IsGoogleRegistry(name) {
				t.Fatalf("ParseBindings(%q): host %q is not a normalized bare host", in, b.Host)
			}
			if !strings.Contains(asciiLower(in), name) || !strings.Contains(in, port) {
				t.Fatalf("ParseBindings(%q): host %q not in the input", in, b.Host)
			}
			if seen[b.Host] {
				t.Fatalf("ParseBindings(%q): %s bound twice", in, b.Host)
			}
			seen[b.Host] = true
			if b.CredentialFile == "" && b.Impersonate == "" {
				t.Fatalf("ParseBindings(%q): empty binding for %s", in, b.Host)
			}
			if b.CredentialFile != "" && (!filepath.IsAbs(b.CredentialFile) || filepath.Clean(b.CredentialFile) != b.CredentialFile) {
				t.Fatalf("ParseBindings(%q): path %q is not clean and absolute", in, b.CredentialFile)
			}
			if b.Impersonate != "" && CheckServiceAccount(b.Impersonate) != nil {
				t.Fatalf("ParseBindings(%q): target %q accepted", in, b.Impersonate)
			}
		}
	})
}
