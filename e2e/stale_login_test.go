package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// configure-docker's advice for a stale static login in "auths" works when
// followed with the real docker CLI: docker logout removes an entry only
// when the credential store it picks for that spelling succeeds, so the
// advice depends on the key's spelling and on credsStore. Where no docker
// command can remove it, the advice says to edit the file, and this test
// shows docker logout indeed leaves it.
func TestStaleLoginAdviceWorksWithDocker(t *testing.T) {
	t.Parallel()
	docker := clientLookPath(t, "docker", "apt-get install docker.io, or docker-ce-cli")
	logout := regexp.MustCompile(`(?:: |; )docker logout (\S+)`)
	for _, c := range []struct {
		name, key, credsStore string
		byHand                bool
	}{
		{"bare host", "gcr.io", "", false},
		{"https URL", "https://gcr.io", "", false},
		{"URL with a path", "https://gcr.io/v1/", "", false},
		{"bare host with credsStore", "gcr.io", "desktop", false},
		{"https URL with credsStore", "https://gcr.io", "desktop", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t)
			cfg := map[string]any{"auths": map[string]any{
				c.key:     map[string]string{"auth": "b2F1dGgyYWNjZXNzdG9rZW46eWEyOS5vbGQ="},
				"quay.io": map[string]string{"auth": "dTpw"},
			}}
			if c.credsStore != "" {
				cfg["credsStore"] = c.credsStore
			}
			data, _ := json.Marshal(cfg)
			cmdsWriteConfig(t, e, string(data), 0o600)

			r := cmdsMustRun(t, e, "", "configure-docker", "--registries", "gcr.io")
			warning := ""
			for _, line := range strings.Split(r.Stderr, "\n") {
				if strings.Contains(line, "static login for gcr.io") {
					warning = line
				}
			}
			if warning == "" {
				t.Fatalf("no stale-login warning:\n%s", r.Stderr)
			}
			t.Logf("advice: %s", warning)

			m := logout.FindStringSubmatch(warning)
			if c.byHand {
				if m != nil || !strings.Contains(warning, `delete the entry "`+c.key+`" from "auths"`) {
					t.Fatalf("advice %q, want editing the file by hand", warning)
				}
				// Why: no docker logout spelling removes it.
				for _, arg := range []string{"gcr.io", c.key} {
					if out, err := e.Command(docker, "logout", arg).CombinedOutput(); err != nil {
						t.Logf("docker logout %s: %v %s", arg, err, out)
					}
				}
				if !staleAuthsHas(t, e, c.key) {
					t.Errorf("docker logout removed %q after all; the advice could be a docker command", c.key)
				}
				return
			}
			if m == nil {
				t.Fatalf("advice %q names no docker logout command", warning)
			}
			out, err := e.Command(docker, "logout", strings.Trim(m[1], "'")).CombinedOutput()
			if err != nil {
				t.Fatalf("docker logout %s: %v\n%s", m[1], err, out)
			}
			if staleAuthsHas(t, e, c.key) {
				t.Errorf("following the advice (docker logout %s) left the %q entry:\n%s", m[1], c.key, cmdsReadConfig(t, e))
			}
			if !staleAuthsHas(t, e, "quay.io") {
				t.Errorf("docker logout took another registry's login too")
			}
			// doctor gives the same advice, and none once it is gone.
			if d := e.Run("", "doctor"); strings.Contains(d.Stdout, "stale static login") {
				t.Errorf("doctor still reports a stale login:\n%s", d.Stdout)
			}
		})
	}
}

// staleAuthsHas reports whether docker's config still holds an auths entry key.
func staleAuthsHas(t *testing.T, e *Env, key string) bool {
	t.Helper()
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if err := json.Unmarshal(cmdsReadConfig(t, e), &cfg); err != nil {
		t.Fatal(err)
	}
	_, ok := cfg.Auths[key]
	return ok
}
