package cmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/config"
	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// desktopConfig is a config.json as Docker Desktop writes it (tabs, no
// trailing newline), with a stale static login for eu.gcr.io.
const desktopConfig = `{
	"auths": {
		"https://eu.gcr.io": {
			"auth": "X2pzb25fa2V5OnNlY3JldA=="
		},
		"https://index.docker.io/v1/": {}
	},
	"credsStore": "desktop",
	"currentContext": "desktop-linux",
	"proxies": {
		"default": {
			"httpProxy": "http://proxy.example:3128",
			"noProxy": "*.local"
		}
	},
	"experimental": "enabled",
	"x-unknown": {
		"nested": [
			1,
			2.50,
			"\u00e9t\u00e9 <b>"
		]
	}
}`

// configureEnv isolates the test and puts a docker-credential-gcp on PATH
// (so no PATH warning unless a test wants one). It returns docker's
// config.json path.
func configureEnv(t *testing.T) (env *testEnv, dockerConfig string) {
	t.Helper()
	env = isolateEnv(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-gcp"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	return env, filepath.Join(env.Docker, "config.json")
}

func writeFile(t *testing.T, path, data string, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// credHelpersOf decodes the credHelpers of the docker config at path.
func credHelpersOf(t *testing.T, path string) map[string]string {
	t.Helper()
	var c struct {
		CredHelpers map[string]string `json:"credHelpers"`
	}
	if err := json.Unmarshal([]byte(readFile(t, path)), &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c.CredHelpers
}

func defaultHelpers() map[string]string {
	want := make(map[string]string)
	for _, h := range helper.DefaultRegistries {
		want[h] = "gcp"
	}
	return want
}

func settingsOf(t *testing.T) config.Config {
	t.Helper()
	c, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func assertNoSettings(t *testing.T) {
	t.Helper()
	path, err := config.Path()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("settings file %s written (stat: %v)", path, err)
	}
}

func assertFileMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModeDir | fs.ModePerm); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func configure(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := runInProcess(t, ConfigureDocker, args...)
	if err != nil {
		t.Fatalf("configure-docker %v: %v\nstderr:\n%s", args, err, stderr)
	}
	return stdout, stderr
}

func TestConfigureDockerCreatesMissingFile(t *testing.T) {
	env, _ := configureEnv(t)
	dir := filepath.Join(env.Docker, "nested")
	t.Setenv("DOCKER_CONFIG", dir)
	path := filepath.Join(dir, "config.json")

	_, stderr := configure(t)
	if got := credHelpersOf(t, path); !reflect.DeepEqual(got, defaultHelpers()) {
		t.Errorf("credHelpers = %v, want %v", got, defaultHelpers())
	}
	assertFileMode(t, dir, fs.ModeDir|0o700)
	assertFileMode(t, path, 0o600)
	for _, want := range []string{
		"Adding credentials for: gcr.io, us.gcr.io, eu.gcr.io, asia.gcr.io, marketplace.gcr.io, us-docker.pkg.dev, europe-docker.pkg.dev, asia-docker.pkg.dev\n",
		"Updated " + path + "\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "warning:") {
		t.Errorf("unexpected warning:\n%s", stderr)
	}
	assertNoSettings(t)
}

func TestConfigureDockerEmptyFile(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "whitespace": "\n  \n"} {
		t.Run(name, func(t *testing.T) {
			_, path := configureEnv(t)
			writeFile(t, path, content, 0o644)
			configure(t, "--registries", "gcr.io")
			if got := readFile(t, path); got != "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcp\"\n\t}\n}\n" {
				t.Errorf("config.json =\n%s", got)
			}
			assertFileMode(t, path, 0o644)
		})
	}
}

// Every other key keeps its value and place, the mode stays, and the
// static login and credsStore are mentioned.
func TestConfigureDockerRichConfig(t *testing.T) {
	_, path := configureEnv(t)
	writeFile(t, path, desktopConfig, 0o640)

	_, stderr := configure(t)
	got := readFile(t, path)
	want := strings.TrimSuffix(desktopConfig, "\n}") + ",\n\t\"credHelpers\": {\n" +
		"\t\t\"gcr.io\": \"gcp\",\n\t\t\"us.gcr.io\": \"gcp\",\n\t\t\"eu.gcr.io\": \"gcp\",\n" +
		"\t\t\"asia.gcr.io\": \"gcp\",\n\t\t\"marketplace.gcr.io\": \"gcp\",\n" +
		"\t\t\"us-docker.pkg.dev\": \"gcp\",\n\t\t\"europe-docker.pkg.dev\": \"gcp\",\n" +
		"\t\t\"asia-docker.pkg.dev\": \"gcp\"\n\t}\n}"
	if got != want {
		t.Errorf("config.json =\n%s\nwant\n%s", got, want)
	}
	assertFileMode(t, path, 0o640)
	for _, want := range []string{
		"warning: " + path + " holds a static login for eu.gcr.io in \"auths\"",
		// docker logout cannot remove "https://eu.gcr.io" while a
		// credsStore is set (see e2e TestStaleLoginAdviceWorksWithDocker).
		`delete the entry "https://eu.gcr.io" from "auths" in ` + path + ` by hand`,
		`note: ` + path + ` sets credsStore "desktop"; that is fine`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "logout gcr.io") || strings.Contains(stderr, "index.docker.io") {
		t.Errorf("warned about a host without a static login:\n%s", stderr)
	}
}

func TestConfigureDockerRefusesUnparseable(t *testing.T) {
	env, path := configureEnv(t)
	const broken = "{\n\t\"auths\": {\n"
	writeFile(t, path, broken, 0o600)
	key := fake.NewGoogle(t).WriteServiceAccountKey(t, env.Home, "ci@proj.iam.gserviceaccount.com")

	_, _, err := runInProcess(t, ConfigureDocker, "--key-file", key)
	if err == nil || !strings.Contains(err.Error(), "refusing to modify "+path) || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("err = %v, want a refusal naming %s", err, path)
	}
	if got := readFile(t, path); got != broken {
		t.Errorf("unparseable config changed to\n%s", got)
	}
	assertNoSettings(t)
}

func TestConfigureDockerSecondRunChangesNothing(t *testing.T) {
	_, path := configureEnv(t)
	writeFile(t, path, desktopConfig, 0o600)
	configure(t, "--registries", "gcr.io,europe-west4-docker.pkg.dev")
	first := readFile(t, path)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}

	_, stderr := configure(t, "--registries", "gcr.io,europe-west4-docker.pkg.dev")
	if got := readFile(t, path); got != first {
		t.Errorf("second run changed the file:\n%s", got)
	}
	if fi, err := os.Stat(path); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("second run rewrote the file")
	}
	if want := "No change: " + path + " already routes these hosts to docker-credential-gcp"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if strings.Contains(stderr, "Adding credentials") {
		t.Errorf("the second run says it is adding credentials, then that nothing changed:\n%s", stderr)
	}
	// Adding one more host names only that one.
	_, stderr = configure(t, "--registries", "gcr.io,eu.gcr.io")
	if !strings.Contains(stderr, "Adding credentials for: eu.gcr.io\n") {
		t.Errorf("stderr does not name just the host added:\n%s", stderr)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files left in the docker dir: %v", entries)
	}
}

func TestConfigureDockerDryRun(t *testing.T) {
	env, path := configureEnv(t)
	key := fake.NewGoogle(t).WriteServiceAccountKey(t, env.Home, "ci@proj.iam.gserviceaccount.com")

	stdout, stderr := configure(t, "--dry-run", "--registries", "gcr.io,registry.example.com", "--key-file", key)
	want := "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcp\",\n\t\t\"registry.example.com\": \"gcp\"\n\t}\n}\n"
	if stdout != want {
		t.Errorf("stdout =\n%s\nwant\n%s", stdout, want)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dry run created %s", path)
	}
	assertNoSettings(t)
	if !strings.Contains(stderr, "Would record in ") || !strings.Contains(stderr, key) {
		t.Errorf("stderr does not say what it would record:\n%s", stderr)
	}

	configure(t, "--registries", "gcr.io")
	before := readFile(t, path)
	// Nothing to change: the config is still printed, as it stays.
	stdout, stderr = configure(t, "--dry-run", "--registries", "gcr.io")
	if stdout != before {
		t.Errorf("dry run with nothing to change: stdout = %q, want the config %q", stdout, before)
	}
	if want := "No change: " + path + " already routes these hosts to docker-credential-gcp (dry run; it stays as follows):"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if strings.Contains(stderr, "Adding credentials") {
		t.Errorf("a run that adds nothing says it is adding:\n%s", stderr)
	}
	stdout, _ = configure(t, "--dry-run", "--remove")
	if want := "{}\n"; stdout != want {
		t.Errorf("dry-run --remove stdout = %q, want %q", stdout, want)
	}
	if got := readFile(t, path); got != before {
		t.Errorf("dry run changed the file:\n%s", got)
	}
}

// configure then --remove gives back the original file byte for byte when
// it had no credHelpers; entries of other helpers are never removed.
func TestConfigureDockerRemove(t *testing.T) {
	t.Run("restores original", func(t *testing.T) {
		_, path := configureEnv(t)
		writeFile(t, path, desktopConfig, 0o640)
		configure(t, "--all-regions")
		_, stderr := configure(t, "--remove")
		if got := readFile(t, path); got != desktopConfig {
			t.Errorf("after --remove config.json =\n%s\nwant the original", got)
		}
		assertFileMode(t, path, 0o640)
		if !strings.Contains(stderr, "Removing credentials for: ") || !strings.Contains(stderr, "Updated "+path) {
			t.Errorf("stderr:\n%s", stderr)
		}
		_, stderr = configure(t, "--remove")
		if !strings.Contains(stderr, "No change: "+path+" routes none of these hosts") {
			t.Errorf("second --remove stderr:\n%s", stderr)
		}
	})
	t.Run("keeps other helpers", func(t *testing.T) {
		_, path := configureEnv(t)
		writeFile(t, path, `{"credHelpers": {"public.ecr.aws": "ecr-login", "gcr.io": "gcloud"}}`, 0o600)
		_, stderr := configure(t, "--registries", "gcr.io,eu.gcr.io")
		if !strings.Contains(stderr, "warning: gcr.io was routed to docker-credential-gcloud") {
			t.Errorf("no warning about replacing gcloud:\n%s", stderr)
		}
		configure(t, "--remove", "--registries", "eu.gcr.io,public.ecr.aws")
		want := map[string]string{"public.ecr.aws": "ecr-login", "gcr.io": "gcp"}
		if got := credHelpersOf(t, path); !reflect.DeepEqual(got, want) {
			t.Errorf("after partial --remove credHelpers = %v, want %v", got, want)
		}
		configure(t, "--remove")
		want = map[string]string{"public.ecr.aws": "ecr-login"}
		if got := credHelpersOf(t, path); !reflect.DeepEqual(got, want) {
			t.Errorf("after --remove credHelpers = %v, want %v", got, want)
		}
	})
	// Removing from another docker config ($DOCKER_CONFIG) leaves what
	// the first one still routes: its hosts, bindings and the key file.
	t.Run("another docker config", func(t *testing.T) {
		env, path := configureEnv(t)
		key := fake.NewGoogle(t).WriteServiceAccountKey(t, env.Home, "ci@proj.iam.gserviceaccount.com")
		configure(t, "--registries", "gcr.io,registry.example.com", "--key-file", key)
		want := settingsOf(t)
		other := t.TempDir()
		t.Setenv("DOCKER_CONFIG", other)
		configure(t, "--registries", "gcr.io,other.example.com")
		configure(t, "--remove")
		if got := settingsOf(t); !reflect.DeepEqual(got, want) {
			t.Errorf("--remove in %s changed the settings the first config relies on: %+v, want %+v", other, got, want)
		}
		if got := credHelpersOf(t, path); got["registry.example.com"] != "gcp" || got["gcr.io"] != "gcp" {
			t.Errorf("the first docker config lost its entries: %v", got)
		}
	})
	t.Run("missing file stays missing", func(t *testing.T) {
		_, path := configureEnv(t)
		configure(t, "--remove")
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("--remove created %s", path)
		}
	})
	t.Run("settings", func(t *testing.T) {
		env, path := configureEnv(t)
		key := fake.NewGoogle(t).WriteServiceAccountKey(t, env.Home, "ci@proj.iam.gserviceaccount.com")
		configure(t, "--registries", "gcr.io,a.example.com,b.example.com:5000", "--key-file", key)
		configure(t, "--remove", "--registries", "a.example.com")
		if got, want := settingsOf(t), (config.Config{KeyFile: key, Registries: []string{"b.example.com:5000"}}); !reflect.DeepEqual(got, want) {
			t.Errorf("after partial --remove settings = %+v, want %+v", got, want)
		}
		// The key file serves every docker config: --remove keeps it and
		// says so; --remove --forget-key forgets it.
		_, stderr := configure(t, "--remove")
		if got, want := settingsOf(t), (config.Config{KeyFile: key}); !reflect.DeepEqual(got, want) {
			t.Errorf("after --remove settings = %+v, want %+v", got, want)
		}
		if !strings.Contains(stderr, "note: kept the key file "+key) || !strings.Contains(stderr, "configure-docker --remove --forget-key") {
			t.Errorf("stderr does not say the key file is kept and how to forget it:\n%s", stderr)
		}
		if got := credHelpersOf(t, path); len(got) != 0 {
			t.Errorf("credHelpers left: %v", got)
		}
		_, stderr = configure(t, "--remove", "--forget-key")
		if got := settingsOf(t); !reflect.DeepEqual(got, config.Config{}) {
			t.Errorf("after --remove --forget-key settings = %+v, want none", got)
		}
		if !strings.Contains(stderr, "forgot key file "+key) || strings.Contains(stderr, "kept") {
			t.Errorf("stderr does not say the key file is forgotten:\n%s", stderr)
		}
		if _, _, err := runInProcess(t, ConfigureDocker, "--forget-key"); err == nil || !strings.Contains(err.Error(), "--forget-key goes with --remove") {
			t.Errorf("--forget-key without --remove: %v", err)
		}
		if _, _, err := runInProcess(t, ConfigureDocker, "--remove", "--key-file", key); err == nil {
			t.Error("--remove --key-file accepted")
		}
		for _, flag := range []string{"--self-signed-jwt", "--self-signed-jwt=false"} {
			if _, _, err := runInProcess(t, ConfigureDocker, "--remove", flag); err == nil || !strings.Contains(err.Error(), "--remove cannot be combined with --self-signed-jwt") {
				t.Errorf("--remove %s: %v", flag, err)
			}
		}
		for _, args := range [][]string{{"--log", "trace.jsonl"}, {"--log", ""}} {
			if _, _, err := runInProcess(t, ConfigureDocker, append([]string{"--remove"}, args...)...); err == nil || !strings.Contains(err.Error(), "--remove cannot be combined with --log") {
				t.Errorf("--remove %q: %v", args, err)
			}
		}
		if got := settingsOf(t); !reflect.DeepEqual(got, config.Config{}) {
			t.Errorf("after refused --remove combinations settings = %+v, want none", got)
		}
	})
}

// Settings that cannot be written (a settings dir others may write) stop
// configure-docker before docker's config is touched, and it does not claim
// to have added the host.
func TestConfigureDockerSettingsRefusedChangesNothing(t *testing.T) {
	env, path := configureEnv(t)
	const before = `{"credHelpers":{"gcr.io":"gcp"}}`
	writeFile(t, path, before, 0o600)
	dir := filepath.Join(env.ConfigHome, "docker-credential-gcp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runInProcess(t, ConfigureDocker, "--registries", "registry.example.com")
	if err == nil || !strings.Contains(err.Error(), "refusing to write settings") {
		t.Errorf("err = %v, want the settings refused", err)
	}
	if strings.Contains(stderr, "Adding credentials") {
		t.Errorf("stderr claims a change that was not made:\n%s", stderr)
	}
	if got := readFile(t, path); got != before {
		t.Errorf("docker's config changed to %s", got)
	}
}

func TestConfigureDockerHelperNotOnPath(t *testing.T) {
	_, path := configureEnv(t)
	t.Setenv("PATH", t.TempDir())
	_, stderr := configure(t)
	if want := `warning: docker-credential-gcp is not on PATH, so docker will fail with "executable file not found"`; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if len(credHelpersOf(t, path)) == 0 {
		t.Error("config not written")
	}
}

func TestConfigureDockerAllRegions(t *testing.T) {
	_, path := configureEnv(t)
	configure(t, "--all-regions", "--registries", "extra.example.com")
	got := credHelpersOf(t, path)
	all := helper.AllRegionRegistries()
	if len(got) != len(all)+1 || len(all) < 40 {
		t.Errorf("%d credHelpers, want %d + 1", len(got), len(all))
	}
	for _, h := range append(all, "europe-west4-docker.pkg.dev", "extra.example.com") {
		if got[h] != "gcp" {
			t.Errorf("credHelpers[%s] = %q", h, got[h])
		}
	}
}

func TestConfigureDockerRegistries(t *testing.T) {
	t.Run("normalised", func(t *testing.T) {
		_, path := configureEnv(t)
		configure(t, "--registries", "https://GCR.IO/v2/, Europe-West1-Docker.pkg.dev.,gcr.io")
		want := map[string]string{"gcr.io": "gcp", "europe-west1-docker.pkg.dev": "gcp"}
		if got := credHelpersOf(t, path); !reflect.DeepEqual(got, want) {
			t.Errorf("credHelpers = %v, want %v", got, want)
		}
		assertNoSettings(t)
	})
	t.Run("non-Google", func(t *testing.T) {
		_, path := configureEnv(t)
		_, stderr := configure(t, "--registries", "gcr.io,registry.example.com:5000,https://other.example.org/")
		want := map[string]string{"gcr.io": "gcp", "registry.example.com:5000": "gcp", "other.example.org": "gcp"}
		if got := credHelpersOf(t, path); !reflect.DeepEqual(got, want) {
			t.Errorf("credHelpers = %v, want %v", got, want)
		}
		// The port stays: another port of the same name is another server.
		if got := settingsOf(t).Registries; !slices.Equal(got, []string{"registry.example.com:5000", "other.example.org"}) {
			t.Errorf("settings registries = %v", got)
		}
		if !strings.Contains(stderr, "non-Google registries registry.example.com:5000, other.example.org, so 'get' gives them a Google token") {
			t.Errorf("stderr does not mention the extra hosts:\n%s", stderr)
		}
	})
	for _, bad := range []string{"not a host", "ftp://gcr.io", "gcr.io:99999", "a..b", "gcr.io,-bad-.com", ","} {
		t.Run(bad, func(t *testing.T) {
			_, path := configureEnv(t)
			_, _, err := runInProcess(t, ConfigureDocker, "--registries", bad)
			if err == nil || !strings.Contains(err.Error(), "--registries") {
				t.Errorf("err = %v, want a --registries error", err)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Error("config written despite the error")
			}
		})
	}
}

func TestConfigureDockerKeyFile(t *testing.T) {
	t.Run("good, relative path made absolute", func(t *testing.T) {
		env, path := configureEnv(t)
		fake.NewGoogle(t).WriteServiceAccountKey(t, env.Home, "ci@proj.iam.gserviceaccount.com")
		t.Chdir(env.Home)
		_, stderr := configure(t, "--key-file", "ci@proj.iam.gserviceaccount.com.json")
		want := filepath.Join(env.Home, "ci@proj.iam.gserviceaccount.com.json")
		if got := settingsOf(t).KeyFile; got != want {
			t.Errorf("recorded key file %q, want %q", got, want)
		}
		if !strings.Contains(stderr, "key file "+want+" (ci@proj.iam.gserviceaccount.com)") {
			t.Errorf("stderr does not name the key and its account:\n%s", stderr)
		}
		if len(credHelpersOf(t, path)) == 0 {
			t.Error("docker config not written")
		}
		settingsPath, _ := config.Path()
		assertFileMode(t, settingsPath, 0o600)
	})

	env, _ := configureEnv(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content, 0o600)
		return p
	}
	big := bytes.Repeat([]byte(" "), 1<<20+1)
	for name, tc := range map[string]struct{ path, want string }{
		"missing":   {filepath.Join(dir, "absent.json"), "file does not exist"},
		"directory": {dir, "is a directory"},
		"not JSON":  {write("garbage.json", "key: value"), "not a valid credential JSON"},
		"PEM":       {write("sa.pem", "-----BEGIN PRIVATE KEY-----"), "this is a PEM file (-----BEGIN PRIVATE KEY-----), not the JSON key"},
		"no email":  {write("noemail.json", `{"type": "service_account", "private_key": "x"}`), "client_email"},
		"damaged key": {write("damaged.json", `{"type": "service_account", "client_email": "ci@p.iam.gserviceaccount.com",
			"private_key": "-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY----- "}`),
			"the private key in " + filepath.Join(dir, "damaged.json") + " is damaged (its line breaks are missing"},
		"unknown type": {write("weird.json", `{"type": "nonsense"}`), "--key-file"},
		"too large":    {write("big.json", string(big)), "larger than 1 MiB"},
		"empty":        {write("empty.json", ""), "empty"},
		"empty path":   {"", "--key-file needs the path of a service-account key file; it was given an empty one"},
		"blank path":   {"  ", "it was given an empty one"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := runInProcess(t, ConfigureDocker, "--key-file", tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--key-file") {
				t.Errorf("err = %v, want a --key-file error containing %q", err, tc.want)
			}
			assertNoSettings(t)
			if _, err := os.Stat(filepath.Join(env.Docker, "config.json")); !errors.Is(err, fs.ErrNotExist) {
				t.Error("docker config written despite a bad key")
			}
		})
	}
}

func TestConfigureDockerHelpAndArgs(t *testing.T) {
	_, path := configureEnv(t)
	stdout, _, err := runInProcess(t, ConfigureDocker, "--help")
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: docker-credential-gcp configure-docker", "--remove", "--key-file", "--dry-run", "--all-regions", "--registries"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if _, _, err := runInProcess(t, ConfigureDocker, "extra"); err == nil {
		t.Error("a positional argument was accepted")
	}
	if _, _, err := runInProcess(t, ConfigureDocker, "--no-such-flag"); err == nil {
		t.Error("an unknown flag was accepted")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Error("config written")
	}
}
