package helper

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseHostPolicy checks that no server URL makes the policy hand a
// token to a host that is not Google's or the user's: whatever Allows
// accepts is gcr.io, *.gcr.io, *.pkg.dev or an extra host with its port
// exactly, and appears in the input. Its seeds (every table input) run in plain `go test`.
func FuzzParseHostPolicy(f *testing.F) {
	for _, tc := range parseHostCases {
		f.Add(tc.in)
	}
	for _, h := range AllRegionRegistries() {
		f.Add("https://" + h + "/v2/")
	}
	extra := []string{"registry.example.com", "localhost:5000", "[::1]"}
	for _, h := range extra {
		f.Add(h)
		f.Add("https://user@" + h + "/v2/")
	}
	// Other ports of the extra hosts, which must not be served.
	f.Add("localhost:6000")
	f.Add("http://localhost:31337/v2/")
	f.Add("localhost:05000")
	f.Add("[::1]:5000")
	p := Policy{Extra: extra}
	f.Fuzz(func(t *testing.T, in string) {
		host, err := ParseHost(in)
		if err == nil {
			if host == "" || host != asciiLower(host) || strings.HasSuffix(host, ".") {
				t.Fatalf("ParseHost(%q) = %q: not a normalised host", in, host)
			}
			if again, err := ParseHost(host); err != nil || again != host {
				t.Fatalf("ParseHost(%q) = %q, but ParseHost(%q) = %q, %v", in, host, host, again, err)
			}
		}
		got, ok := p.Allows(in)
		if !ok {
			return
		}
		if err != nil || got != host {
			t.Fatalf("Allows(%q) = %q, but ParseHost = %q, %v", in, got, host, err)
		}
		if !(got == "gcr.io" || strings.HasSuffix(got, ".gcr.io") || strings.HasSuffix(got, ".pkg.dev") ||
			slices.Contains(extra, got)) {
			t.Fatalf("Allows(%q) accepted %q", in, got)
		}
		name, port := splitHostPort(got)
		if !strings.Contains(asciiLower(in), name) || !strings.Contains(in, port) {
			t.Fatalf("Allows(%q) accepted %q, which is not in the input", in, got)
		}
		if !strings.Contains(got, "[") && !validHostname(name) {
			t.Fatalf("Allows(%q) accepted %q, which is not a valid DNS name", in, got)
		}
	})
}

// splitHostPort splits a host as ParseHost returns it into its name (an
// IPv6 literal without brackets) and its port, "" when it has none.
func splitHostPort(host string) (name, port string) {
	if v6, port, ok := strings.Cut(strings.TrimPrefix(host, "["), "]"); ok {
		return v6, strings.TrimPrefix(port, ":")
	}
	name, port, _ = strings.Cut(host, ":")
	return name, port
}
