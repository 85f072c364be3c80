package cmd

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// decodeDockerConfig parses a config.json the dockerconfig command wrote
// and returns each host's token, checking every auth is
// oauth2accesstoken:<token> for a token the fake issued.
func decodeDockerConfig(t *testing.T, g *fake.Google, data []byte) map[string]string {
	t.Helper()
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
	tokens := make(map[string]string)
	for host, a := range cfg.Auths {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			t.Fatalf("%s: auth is not base64: %v", host, err)
		}
		user, tok, ok := strings.Cut(string(raw), ":")
		if !ok || user != "oauth2accesstoken" {
			t.Fatalf("%s: auth decodes to user %q, want oauth2accesstoken:<token>", host, user)
		}
		if _, ok := g.Issued(tok); !ok {
			t.Errorf("%s: token %q was not issued by the fake", host, tok)
		}
		tokens[host] = tok
	}
	return tokens
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestDockerConfigDefaultHosts(t *testing.T) {
	g, _, _ := withServiceAccountKey(t)
	// Without the cache, one mint for all hosts is this command's doing.
	t.Setenv("DOCKER_CREDENTIAL_GCP_NO_CACHE", "1")

	out, _, err := runInProcess(t, DockerConfig)
	if err != nil {
		t.Fatal(err)
	}
	tokens := decodeDockerConfig(t, g, []byte(out))
	want := slices.Sorted(slices.Values(helper.DefaultRegistries))
	if got := sortedKeys(tokens); !slices.Equal(got, want) {
		t.Errorf("hosts = %v, want %v", got, want)
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d JWT grants for %d hosts, want 1", n, len(want))
	}
	if !strings.HasPrefix(out, "{\n\t\"auths\": {\n\t\t\"") || !strings.HasSuffix(out, "}\n") {
		t.Errorf("output is not tab-indented JSON ending in a newline:\n%s", out)
	}

	again, _, err := runInProcess(t, DockerConfig)
	if err != nil {
		t.Fatal(err)
	}
	if keysOf(t, again) != keysOf(t, out) {
		t.Errorf("host order changed between runs")
	}
}

// keysOf is the order in which hosts appear in a printed config.
func keysOf(t *testing.T, out string) string {
	t.Helper()
	var order []string
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, "\t\t\"") {
			order = append(order, strings.TrimSpace(line))
		}
	}
	return strings.Join(order, ",")
}

func TestDockerConfigChosenRegistries(t *testing.T) {
	g, _, _ := withServiceAccountKey(t)

	out, _, err := runInProcess(t, DockerConfig,
		"--registries", "https://europe-docker.pkg.dev/project/repo,EU.GCR.IO",
		"--registries", "eu.gcr.io")
	if err != nil {
		t.Fatal(err)
	}
	tokens := decodeDockerConfig(t, g, []byte(out))
	if got, want := sortedKeys(tokens), []string{"eu.gcr.io", "europe-docker.pkg.dev"}; !slices.Equal(got, want) {
		t.Errorf("hosts = %v, want %v", got, want)
	}
	if tokens["eu.gcr.io"] != tokens["europe-docker.pkg.dev"] {
		t.Errorf("hosts with the same credential got different tokens")
	}
}

func TestDockerConfigRefusesBadRegistries(t *testing.T) {
	for _, value := range []string{"evil.com", "gcr.io.evil.com", "gcr.io,evil.com/gcr.io", "docker.pkg.dev.evil.com", "gcr.io@evil.com", "http://"} {
		t.Run(value, func(t *testing.T) {
			g, _, _ := withServiceAccountKey(t)
			out, _, err := runInProcess(t, DockerConfig, "--registries", value)
			if err == nil || !strings.Contains(err.Error(), "--registries") {
				t.Errorf("error = %v, want one naming --registries", err)
			}
			if out != "" {
				t.Errorf("printed %q on error", out)
			}
			if n := g.Count("any"); n != 0 {
				t.Errorf("%d token requests, want none", n)
			}
		})
	}
}

func TestDockerConfigNoCredentials(t *testing.T) {
	isolateEnv(t)
	out, _, err := runInProcess(t, DockerConfig)
	if err == nil || !strings.Contains(err.Error(), ErrNoCredentials.Error()) {
		t.Errorf("error = %v, want %q", err, ErrNoCredentials)
	}
	if out != "" {
		t.Errorf("printed %q on error", out)
	}
}

func TestDockerConfigOutputFile(t *testing.T) {
	g, _, _ := withServiceAccountKey(t)
	path := filepath.Join(t.TempDir(), "drone", "config.json")

	out, _, err := runInProcess(t, DockerConfig, "--registries", "gcr.io", "--output", path)
	if err != nil {
		t.Fatal(err)
	}
	if out != "" {
		t.Errorf("printed %q with --output", out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tokens := decodeDockerConfig(t, g, data); len(tokens) != 1 || tokens["gcr.io"] == "" {
		t.Errorf("file holds %v, want gcr.io only", tokens)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode %o, want 600", mode)
	}
}

// --output naming a directory, or nothing, is refused before any token is
// minted, with what to give instead (not a rename error).
func TestDockerConfigOutputMustBeAFile(t *testing.T) {
	g, _, _ := withServiceAccountKey(t)
	dir := t.TempDir()
	for _, c := range []struct{ path, want string }{
		{dir, "--output " + dir + " is a directory; give the path of the file to write, e.g. " + filepath.Join(dir, "config.json")},
		{dir + "/", "is a directory"},
		{"", "--output needs a file path"},
	} {
		_, _, err := runInProcess(t, DockerConfig, "--output", c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--output %q: error = %v, want %q", c.path, err, c.want)
		}
	}
	if n := g.Count("any"); n != 0 {
		t.Errorf("%d token requests for an unusable --output, want 0", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left in the directory: %v", entries)
	}
}

func TestDockerConfigRefreshNeedsOutput(t *testing.T) {
	isolateEnv(t)
	_, _, err := runInProcess(t, DockerConfig, "--refresh")
	if err == nil || !strings.Contains(err.Error(), "--output") {
		t.Errorf("error = %v, want one saying --refresh needs --output", err)
	}
}

func TestDockerConfigHelp(t *testing.T) {
	isolateEnv(t)
	stdout, _, err := runInProcess(t, DockerConfig, "--help")
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"Usage: docker-credential-gcp dockerconfig", "one hour", "kubectl create secret docker-registry", "--registries", "--output", "--refresh"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--help output lacks %q:\n%s", want, stdout)
		}
	}
}

// A --registries value may be a URL with user info; an error names the
// host it found, never the password typed with it.
func TestRegistriesErrorsDoNotEchoUserInfo(t *testing.T) {
	const password = "s3cret-pw-in-url"
	for _, tt := range []struct {
		name    string
		command func([]string, IO) error
		value   string
	}{
		{"dockerconfig non-Google", DockerConfig, "https://ci:" + password + "@evil.com/"},
		{"dockerconfig invalid host", DockerConfig, "https://ci:" + password + "@bad_host!/"},
		{"configure-docker invalid host", ConfigureDocker, "https://ci:" + password + "@bad_host!/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			withServiceAccountKey(t)
			out, stderr, err := runInProcess(t, tt.command, "--registries", tt.value)
			if err == nil {
				t.Fatalf("--registries %s accepted", tt.value)
			}
			if !strings.Contains(err.Error(), "--registries") {
				t.Errorf("error %q does not name --registries", err)
			}
			if strings.Contains(err.Error()+out+stderr, password) {
				t.Errorf("the password in the URL is echoed: %q", err)
			}
		})
	}
}
