package e2e

import (
	"strings"
	"testing"
)

// doctor names the sources after the one used, so a stale
// GOOGLE_OAUTH_ACCESS_TOKEN hiding a key file is plain to see.
func TestDoctorNamesSourcesNotChecked(t *testing.T) {
	t.Parallel()
	e, g, key := cmdsKeyEnv(t, "doctor-doctor@proj.iam.gserviceaccount.com")
	const stale = "ya29.doctor-stale-token"
	e.Set("GOOGLE_OAUTH_ACCESS_TOKEN", stale)

	d := cmdsMustRun(t, e, "", "doctor")
	for _, want := range []string{
		"used  GOOGLE_OAUTH_ACCESS_TOKEN",
		"skip  GOOGLE_APPLICATION_CREDENTIALS (" + key + "): not checked, GOOGLE_OAUTH_ACCESS_TOKEN comes first",
		"skip  metadata server (",
	} {
		if !strings.Contains(d.Stdout, want) {
			t.Errorf("doctor lacks %q:\n%s", want, d.Stdout)
		}
	}
	if n := g.Count("any"); n != 0 {
		t.Errorf("%d token requests for sources after the winner, want 0", n)
	}
	cmdsAssertNoSecret(t, "doctor", d.Stdout+d.Stderr, stale)
}

// docker matches credHelpers keys exactly; doctor must not count
// "https://gcr.io" as routing gcr.io.
func TestDoctorCredHelpersMatchExactly(t *testing.T) {
	t.Parallel()
	e, _, _ := cmdsKeyEnv(t, "doctor-keys@proj.iam.gserviceaccount.com")
	cmdsWriteConfig(t, e, `{"credHelpers": {"https://gcr.io": "gcp"}}`, 0o600)

	d := cmdsMustRun(t, e, "", "doctor")
	if strings.Contains(d.Stdout, `credHelpers route to "gcp"`) {
		t.Errorf("doctor says a URL-shaped key routes to the helper:\n%s", d.Stdout)
	}
	if !strings.Contains(d.Stdout, `credHelpers key "https://gcr.io" routes nothing`) {
		t.Errorf("doctor does not flag the key docker never matches:\n%s", d.Stdout)
	}

	// configure-docker adds the key docker does match, and doctor agrees.
	cmdsMustRun(t, e, "", "configure-docker", "--registries", "gcr.io")
	d = cmdsMustRun(t, e, "", "doctor")
	if !strings.Contains(d.Stdout, `credHelpers route to "gcp": gcr.io`) {
		t.Errorf("after configure-docker, doctor does not report gcr.io routed:\n%s", d.Stdout)
	}
}
