package cmd

import (
	"fmt"
	"strings"

	"github.com/docker-credential-gcp/docker-credential-gcp/dockerconfig"
)

// staleLoginAdvice says how to remove the static logins in f's "auths"
// (keys, as written) for registry, which docker routes to this helper
// (registry is the credHelpers key). It gives advice the docker CLI
// carries out: `docker logout X` erases X through the credential store
// docker picks for that spelling (credHelpers for the bare registry, else
// credsStore, else the file itself) and removes the file's entry only when
// that store succeeds.
func staleLoginAdvice(f *dockerconfig.File, registry string, keys []string, onPath bool) string {
	var advice []string
	for _, key := range keys {
		switch store := f.CredsStore(); {
		case hasUserinfo(key):
			// Never quoted, not even in a command: it may hold a password.
			advice = append(advice, fmt.Sprintf("delete the entry %q from \"auths\" in %s by hand (its key holds user info, maybe a password, so it is not shown or passed to docker logout)", shownKey(key), f.Path()))
		case key == registry && onPath:
			// Through docker-credential-gcp erase, then the file.
			advice = append(advice, "docker logout "+shellWord(key))
		case key == registry:
			advice = append(advice, fmt.Sprintf("docker logout %s once docker-credential-%s is on PATH (until then docker logout removes nothing)", shellWord(key), helperName))
		case store == "":
			// No store claims this spelling: docker erases it from the file.
			advice = append(advice, "docker logout "+shellWord(key))
		default:
			advice = append(advice, fmt.Sprintf("delete the entry %q from \"auths\" in %s by hand (docker logout hands that spelling to credsStore %q, which leaves the file alone)", key, f.Path(), store))
		}
	}
	return strings.Join(advice, "; ")
}

// hasUserinfo reports whether key, a docker config key (a host or URL),
// has user info before its host: "https://bob:PW@eu.gcr.io".
func hasUserinfo(key string) bool {
	return shownKey(key) != key
}

// shownKey is key, a docker config key, with its user info, which may hold
// a password, replaced by "[redacted]" wherever it is printed.
func shownKey(key string) string {
	scheme, rest := "", key
	if i := strings.Index(key, "://"); i >= 0 {
		scheme, rest = key[:i+len("://")], key[i+len("://"):]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return key
	}
	return scheme + "[redacted]@" + rest[at+1:]
}

// shellWord quotes s for a POSIX shell when it needs quoting.
func shellWord(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._:/@[]", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
