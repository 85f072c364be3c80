package helper

import (
	"slices"
	"strings"
	"testing"
)

// parseHostCases are server URLs in every form clients send, with the host
// ParseHost must find ("" = error). The fuzz target seeds from them.
var parseHostCases = []struct {
	in, want string
}{
	// Good forms.
	{"gcr.io", "gcr.io"},
	{"https://gcr.io", "gcr.io"},
	{"http://gcr.io", "gcr.io"},
	{"HTTPS://GCR.IO/", "gcr.io"},
	{"gcr.io/proj/img", "gcr.io"},
	{"gcr.io/proj/img:tag", "gcr.io"},
	{"gcr.io/proj/img@sha256:0123abcd", "gcr.io"},
	{"GCR.IO.", "gcr.io"},
	{"https://gcr.io./v2/", "gcr.io"},
	{"us.gcr.io:443", "us.gcr.io"},
	{"https://us.gcr.io:443/v2/", "us.gcr.io"},
	{"https://user@eu.gcr.io/v2/", "eu.gcr.io"},
	{"https://user:pass@asia.gcr.io:443/v2/?x=1#frag", "asia.gcr.io"},
	{"marketplace.gcr.io", "marketplace.gcr.io"},
	{"mirror.gcr.io", "mirror.gcr.io"},
	{"europe-west1-docker.pkg.dev", "europe-west1-docker.pkg.dev"},
	{"https://us-central1-docker.pkg.dev/proj/repo/img", "us-central1-docker.pkg.dev"},
	{"docker.europe-west1.rep.pkg.dev", "docker.europe-west1.rep.pkg.dev"},
	{"  https://gcr.io\n", "gcr.io"},
	{"\tgcr.io \r\n", "gcr.io"},
	{"//gcr.io/v2/", "gcr.io"},
	{"gcr.io?x", "gcr.io"},
	{"gcr.io#x", "gcr.io"},
	// Another port of a non-Google host is another server: kept.
	{"registry.example.com:5000", "registry.example.com:5000"},
	{"localhost:5000", "localhost:5000"},
	{"http://localhost:31337/v2/", "localhost:31337"},
	{"LOCALHOST.:05000", "localhost:5000"},
	{"127.0.0.1:5000", "127.0.0.1:5000"},
	{"[::1]:5000", "[::1]:5000"},
	{"https://user:pw@[::1]:5000/v2/", "[::1]:5000"},
	{"[::1]", "[::1]"},
	{"gcr.io:5000", "gcr.io"},
	{"https://europe-docker.pkg.dev:8443/v2/", "europe-docker.pkg.dev"},
	{"https://[2001:DB8::1]/v2/", "[2001:db8::1]"},
	{"xn--bcher-kva.example", "xn--bcher-kva.example"},

	// Parse fine, but are someone else's host.
	{"gcr.io@evil.com", "evil.com"},
	{"https://gcr.io@evil.com/v2/", "evil.com"},
	{"gcr.io:443@evil.com", "evil.com"},
	{"evil.com#gcr.io", "evil.com"},
	{"evil.com?gcr.io", "evil.com"},
	{"evil.com/gcr.io", "evil.com"},
	{"https://evil.com/https://gcr.io", "evil.com"},
	{"evil.com/x://gcr.io", "evil.com"},
	{"gcr.io.evil.com", "gcr.io.evil.com"},
	{"evilgcr.io", "evilgcr.io"},
	{"xgcr.io", "xgcr.io"},
	{"docker.pkg.dev.evil.com", "docker.pkg.dev.evil.com"},
	{"index.docker.io", "index.docker.io"},
	{"https://index.docker.io/v1/", "index.docker.io"},

	// Garbage.
	{"", ""},
	{"   \n", ""},
	{"https://", ""},
	{"/gcr.io", ""},
	{":443", ""},
	{"gcr.io:", ""},
	{"gcr.io:0", ""},
	{"gcr.io:65536", ""},
	{"gcr.io:44x", ""},
	{"gcr.io:443:443", ""},
	{"gcr.io..", ""},
	{"gcr..io", ""},
	{".gcr.io", ""},
	{"-x.gcr.io", ""},
	{"x-.gcr.io", ""},
	{"a_b.gcr.io", ""},
	{"gcr%2eio", ""},
	{"evil.com%2fgcr.io", ""},
	{"evil.com%00.gcr.io", ""},
	{"evil.com\x00.gcr.io", ""},
	{"gcr.io\x00", ""},
	{"evil.com\ngcr.io", ""},
	{"gcr.io\tevil.com", ""},
	{"evil.com gcr.io", ""},
	{"evil.com\\gcr.io", ""},
	{"evil.com\\@gcr.io", ""},
	{"ftp://gcr.io", ""},
	{"file:///etc/passwd", ""},
	{"gcr.io.evil.com://gcr.io", ""},
	{"http:gcr.io", ""},
	{"[::1", ""},
	{"[gcr.io]", ""},
	{"[127.0.0.1]", ""},
	{"[fe80::1%25eth0]", ""},
	{"[::1]x", ""},
	{"::1", ""},
	{"gcr.ıo", ""},
	{"\u212a.gcr.io", ""}, // Kelvin sign, which strings.ToLower makes a "k"
	{"gcr.io\u200b", ""},
	{"ｇｃｒ.io", ""},
	{strings.Repeat("a", 64) + ".gcr.io", ""},
	{strings.Repeat("a.", 127) + "gcr.io", ""},
}

func TestParseHost(t *testing.T) {
	for _, tc := range parseHostCases {
		got, err := ParseHost(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParseHost(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestParseHostIdempotent: the store keys by ParseHost's result and parses
// keys again, so a parsed host must parse to itself.
func TestParseHostIdempotent(t *testing.T) {
	for _, tc := range parseHostCases {
		if tc.want == "" {
			continue
		}
		if got, err := ParseHost(tc.want); err != nil || got != tc.want {
			t.Errorf("ParseHost(%q) = %q, %v; want it unchanged", tc.want, got, err)
		}
	}
}

func TestParseHostErrorHidesUserInfo(t *testing.T) {
	for _, in := range []string{
		"https://user:s3cr3t@gcr.io:x/",
		"https://user:s3cr3t@bad_host/",
		"https://s3cr3t:p/a@gcr.io",
		"https://user:s3cr3t@[::1/",
	} {
		_, err := ParseHost(in)
		if err == nil {
			t.Fatalf("ParseHost(%q) succeeded", in)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("ParseHost(%q) error quotes the password: %v", in, err)
		}
	}
}

func TestIsGoogleRegistry(t *testing.T) {
	good := []string{
		"gcr.io", "us.gcr.io", "eu.gcr.io", "asia.gcr.io", "marketplace.gcr.io",
		"mirror.gcr.io", "k8s.gcr.io", "a.b.gcr.io",
		"us-docker.pkg.dev", "europe-west1-docker.pkg.dev",
		"docker.europe-west1.rep.pkg.dev", "us-central1-python.pkg.dev",
	}
	bad := []string{
		"", "gcr", "io", "pkg.dev", "gcr.io.", "GCR.IO", "gcr.io:443",
		"gcr.io.evil.com", "evilgcr.io", "xgcr.io", "evil-gcr.io",
		"docker.pkg.dev.evil.com", "pkg.dev.evil.com", "evilpkg.dev",
		"evil.com", "evil.com/gcr.io", "gcr.io@evil.com", "evil.com#gcr.io",
		"evil.com?gcr.io", ".gcr.io", "..gcr.io", "a..gcr.io", "a_b.gcr.io",
		"-a.gcr.io", "a-.pkg.dev", ".pkg.dev", "a .gcr.io", "a\x00.gcr.io",
		"https://gcr.io", "[::1]", "%67cr.io", "x.gcr.io%2f",
		strings.Repeat("a", 64) + ".gcr.io",
	}
	for _, h := range good {
		if !IsGoogleRegistry(h) {
			t.Errorf("IsGoogleRegistry(%q) = false, want true", h)
		}
	}
	for _, h := range bad {
		if IsGoogleRegistry(h) {
			t.Errorf("IsGoogleRegistry(%q) = true, want false", h)
		}
	}
}

// TestPolicyAllows covers every evil form of SPEC §2 and every good one.
func TestPolicyAllows(t *testing.T) {
	p := Policy{Extra: []string{"registry.example.com", "https://Local.Example:5000/", "  ", "bad host", "[::1]", "[::1]:5000", "gcr.io:8443"}}
	allowed := map[string]string{
		"https://gcr.io":                        "gcr.io",
		"gcr.io/proj/img":                       "gcr.io",
		"GCR.IO.":                               "gcr.io",
		"us.gcr.io:443":                         "us.gcr.io",
		"https://user@eu.gcr.io/v2/":            "eu.gcr.io",
		"asia.gcr.io":                           "asia.gcr.io",
		"marketplace.gcr.io":                    "marketplace.gcr.io",
		"mirror.gcr.io":                         "mirror.gcr.io",
		"europe-west1-docker.pkg.dev":           "europe-west1-docker.pkg.dev",
		"https://us-docker.pkg.dev/v2/":         "us-docker.pkg.dev",
		"docker.europe-west1.rep.pkg.dev":       "docker.europe-west1.rep.pkg.dev",
		"registry.example.com":                  "registry.example.com",
		"https://REGISTRY.example.com./v2/":     "registry.example.com",
		"local.example:5000":                    "local.example:5000",
		"https://LOCAL.example:05000/v2/":       "local.example:5000",
		"[::1]":                                 "[::1]",
		"[::1]:5000":                            "[::1]:5000",
		"gcr.io:443":                            "gcr.io",
		"  https://gcr.io/v2/library/busybox\n": "gcr.io",
	}
	for in, want := range allowed {
		host, ok := p.Allows(in)
		if !ok || host != want {
			t.Errorf("Allows(%q) = %q, %v; want %q, true", in, host, ok, want)
		}
	}
	refused := []string{
		"gcr.io.evil.com", "evilgcr.io", "evil.com/gcr.io", "gcr.io@evil.com",
		"evil.com#gcr.io", "evil.com?gcr.io", "xgcr.io", "docker.pkg.dev.evil.com",
		"https://gcr.io.evil.com/v2/", "https://gcr.io@evil.com/", "https://evil.com/gcr.io",
		"pkg.dev", "evil.com", "index.docker.io", "https://index.docker.io/v1/",
		"registry.example.com.evil.com", "example.com", "bad host", "",
		"gcr.io%2eevil.com", "evil.com\\@gcr.io", "ftp://gcr.io", "[::2]",
		// An extra host serves the port it was given, or none, only.
		"local.example", "local.example:6000", "http://local.example:31337/v2/",
		"registry.example.com:8443", "https://registry.example.com:443/", "[::1]:6000",
	}
	for _, in := range refused {
		if host, ok := p.Allows(in); ok {
			t.Errorf("Allows(%q) = %q, true; want refused", in, host)
		}
	}
	if _, ok := (Policy{}).Allows("registry.example.com"); ok {
		t.Error("an empty policy allows a non-Google host")
	}
}

func TestSplitRegistries(t *testing.T) {
	got := SplitRegistries(" a.example , ,b.example:5000,")
	if want := []string{"a.example", "b.example:5000"}; !slices.Equal(got, want) {
		t.Errorf("SplitRegistries = %q, want %q", got, want)
	}
	if got := SplitRegistries(""); len(got) != 0 {
		t.Errorf("SplitRegistries(\"\") = %q, want none", got)
	}
}

func TestRegistryLists(t *testing.T) {
	for _, h := range DefaultRegistries {
		if !IsGoogleRegistry(h) {
			t.Errorf("default registry %q is not a Google registry", h)
		}
	}
	if len(ArtifactRegistryRegions) < 40 {
		t.Errorf("only %d Artifact Registry regions", len(ArtifactRegistryRegions))
	}
	all := AllRegionRegistries()
	seen := map[string]bool{}
	for _, h := range all {
		if seen[h] {
			t.Errorf("AllRegionRegistries lists %q twice", h)
		}
		seen[h] = true
		if !IsGoogleRegistry(h) {
			t.Errorf("%q is not a Google registry", h)
		}
	}
	if !slices.Equal(all[:len(DefaultRegistries)], DefaultRegistries) {
		t.Error("AllRegionRegistries does not start with DefaultRegistries")
	}
	for _, h := range []string{"us-central1-docker.pkg.dev", "europe-west1-docker.pkg.dev", "asia-docker.pkg.dev"} {
		if !seen[h] {
			t.Errorf("AllRegionRegistries lacks %q", h)
		}
	}
	if want := len(DefaultRegistries) + len(ArtifactRegistryRegions) - 3; len(all) != want {
		t.Errorf("AllRegionRegistries has %d hosts, want %d", len(all), want)
	}
	if !slices.Equal(all, AllRegionRegistries()) {
		t.Error("AllRegionRegistries is not stable")
	}
}
