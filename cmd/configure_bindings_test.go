package cmd

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/config"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

func TestConfigureDockerBindings(t *testing.T) {
	env, _ := configureEnv(t)
	g := fake.NewGoogle(t)
	release := g.WriteServiceAccountKey(t, env.Home, "release@proj.iam.gserviceaccount.com")
	const pusher = "pusher@proj.iam.gserviceaccount.com"

	_, stderr := configure(t, "--registries", "europe-docker.pkg.dev,EU.GCR.IO", "--bind-credentials", release)
	if !strings.Contains(stderr, "binding for europe-docker.pkg.dev, eu.gcr.io: credential file "+release+" (release@proj.iam.gserviceaccount.com)") {
		t.Errorf("stderr does not describe the binding:\n%s", stderr)
	}
	configure(t, "--registries", "us-docker.pkg.dev", "--bind-impersonate", pusher)
	want := []config.Binding{
		{Host: "europe-docker.pkg.dev", CredentialFile: release},
		{Host: "eu.gcr.io", CredentialFile: release},
		{Host: "us-docker.pkg.dev", Impersonate: pusher},
	}
	if got := settingsOf(t).Bindings; !slices.Equal(got, want) {
		t.Errorf("bindings = %+v, want %+v", got, want)
	}
	// The same binding again changes nothing; a new one replaces in place.
	settingsPath, _ := config.Path()
	before := readFile(t, settingsPath)
	if _, stderr := configure(t, "--registries", "us-docker.pkg.dev", "--bind-impersonate", pusher); strings.Contains(stderr, "Recorded") || readFile(t, settingsPath) != before {
		t.Errorf("a repeated binding rewrote the settings:\n%s", stderr)
	}
	configure(t, "--registries", "eu.gcr.io", "--bind-credentials", release, "--bind-impersonate", pusher)
	want[1].Impersonate = pusher
	if got := settingsOf(t).Bindings; !slices.Equal(got, want) {
		t.Errorf("after rebinding eu.gcr.io: %+v, want %+v", got, want)
	}

	// --remove keeps the bindings (another docker config may route those
	// hosts) and says so; --forget-bindings forgets the named hosts' only.
	_, stderr = configure(t, "--remove", "--registries", "eu.gcr.io")
	if !strings.Contains(stderr, "note: kept the bindings of eu.gcr.io") || !strings.Contains(stderr, "configure-docker --remove --registries eu.gcr.io --forget-bindings") {
		t.Errorf("--remove does not say it kept the binding and how to forget it:\n%s", stderr)
	}
	if got := settingsOf(t).Bindings; !slices.Equal(got, want) {
		t.Errorf("after --remove: %+v, want %+v", got, want)
	}
	_, stderr = configure(t, "--remove", "--registries", "eu.gcr.io,us-docker.pkg.dev", "--forget-bindings")
	if !strings.Contains(stderr, "forgot the binding of eu.gcr.io") || !strings.Contains(stderr, "forgot the binding of us-docker.pkg.dev") || strings.Contains(stderr, "kept the bindings") {
		t.Errorf("--remove --forget-bindings does not say it forgot the bindings:\n%s", stderr)
	}
	if got := settingsOf(t).Bindings; !slices.Equal(got, want[:1]) {
		t.Errorf("after --remove --forget-bindings: %+v, want %+v", got, want[:1])
	}
	// --remove of everything this docker config routes, with
	// --forget-bindings, drops the bindings of every host it removed.
	configure(t, "--remove", "--forget-bindings")
	if got := settingsOf(t).Bindings; got != nil {
		t.Errorf("after --remove --forget-bindings of all: %+v", got)
	}
	if _, _, err := runInProcess(t, ConfigureDocker, "--forget-bindings"); err == nil || !strings.Contains(err.Error(), "--forget-bindings goes with --remove") {
		t.Errorf("--forget-bindings without --remove: %v", err)
	}
}

func TestConfigureDockerBindingErrors(t *testing.T) {
	env, _ := configureEnv(t)
	key := fake.NewGoogle(t).WriteServiceAccountKey(t, env.Home, "release@proj.iam.gserviceaccount.com")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no --registries":  {[]string{"--bind-credentials", key}, "add --registries"},
		"--all-regions":    {[]string{"--all-regions", "--registries", "gcr.io", "--bind-impersonate", "a@p.iam.gserviceaccount.com"}, "not --all-regions"},
		"with --remove":    {[]string{"--remove", "--registries", "gcr.io", "--bind-credentials", key}, "--remove cannot be combined"},
		"empty file":       {[]string{"--registries", "gcr.io", "--bind-credentials", ""}, "needs a credential file"},
		"empty target":     {[]string{"--registries", "gcr.io", "--bind-impersonate", " "}, "needs a service-account e-mail"},
		"bad target":       {[]string{"--registries", "gcr.io", "--bind-impersonate", "not an email"}, "not a service-account e-mail"},
		"missing file":     {[]string{"--registries", "gcr.io", "--bind-credentials", filepath.Join(env.Home, "absent.json")}, "--bind-credentials"},
		"not a credential": {[]string{"--registries", "gcr.io", "--bind-credentials", env.Home}, "is a directory"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := runInProcess(t, ConfigureDocker, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
			assertNoSettings(t)
		})
	}
}
