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

// shellWord quotes s for a POSIX shell when it needs quoting.
func shellWord(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._:/@[]", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
