package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=..."
// (make, install.sh); left alone, the module's build info is read instead.
var (
	version = "dev"
	commit  = "unknown"
)

// versionLine is what `version` prints (SPEC §1).
func versionLine() string {
	v, c := version, commit
	if v == "dev" {
		if info, ok := debug.ReadBuildInfo(); ok {
			v, c = fromBuildInfo(info, c)
		}
	}
	return fmt.Sprintf("docker-credential-gcp %s (%s, %s)", v, c, runtime.Version())
}

// fromBuildInfo is the version and commit a build without -ldflags carries:
// `go install …@v1.2.3` stamps the module version (a pseudo-version for a
// commit), `go build` in a checkout stamps one from git (Go ≥1.24) plus
// vcs.revision. The commit falls back to the pseudo-version's hash.
func fromBuildInfo(info *debug.BuildInfo, commit string) (string, string) {
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	v = strings.TrimPrefix(v, "v")
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			return v, shortCommit(s.Value)
		}
	}
	base, _, _ := strings.Cut(v, "+")
	if i := strings.LastIndexByte(base, '-'); i >= 0 && isHex(base[i+1:]) && len(base)-i-1 == 12 {
		return v, base[i+1:]
	}
	return v, commit
}

// shortCommit is the 12-digit abbreviation pseudo-versions use.
func shortCommit(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return s != ""
}
