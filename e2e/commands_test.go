package e2e

import (
	"bytes"
	"encoding/base64"
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

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// cmdsDefaultHosts are the hosts configure-docker and dockerconfig use when
// none are named (helper.DefaultRegistries), spelled out here so a change
// to that list is a visible change to what users get.
var cmdsDefaultHosts = []string{
	"gcr.io", "us.gcr.io", "eu.gcr.io", "asia.gcr.io", "marketplace.gcr.io",
	"us-docker.pkg.dev", "europe-docker.pkg.dev", "asia-docker.pkg.dev",
}

// cmdsRichConfig is a docker config.json as docker writes it (tab
// indentation) with a bit of everything: keys in a non-alphabetical order,
// a stale static gcr.io login, a credsStore, another helper, proxies and
// keys docker has not invented yet.
const cmdsRichConfig = `{
	"zeta-unknown": {
		"nested": [
			1,
			2.5,
			{
				"x": null
			}
		]
	},
	"auths": {
		"gcr.io": {
			"auth": "X2pzb25fa2V5OnNlY3JldA=="
		},
		"https://index.docker.io/v1/": {
			"auth": "dXNlcjpwYXNz"
		}
	},
	"credsStore": "desktop",
	"credHelpers": {
		"123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"
	},
	"proxies": {
		"default": {
			"httpProxy": "http://proxy.example:3128"
		}
	},
	"psFormat": "table {{.ID}}\\t{{.Image}}",
	"alpha-unknown": true
}
`

// cmdsMustRun runs the binary and fails the test unless it exits 0.
func cmdsMustRun(t *testing.T, e *Env, stdin string, args ...string) Result {
	t.Helper()
	r := e.Run(stdin, args...)
	if r.Code != 0 {
		t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

func cmdsConfigPath(e *Env) string { return filepath.Join(e.DockerConfig, "config.json") }

// cmdsWriteConfig writes docker's config.json with mode.
func cmdsWriteConfig(t *testing.T, e *Env, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(e.DockerConfig, 0o700); err != nil {
		t.Fatal(err)
	}
	path := cmdsConfigPath(e)
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func cmdsReadConfig(t *testing.T, e *Env) []byte {
	t.Helper()
	data, err := os.ReadFile(cmdsConfigPath(e))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func cmdsMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// cmdsTopKeys is the order of the top-level keys of a JSON object.
func cmdsTopKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %v %v", tok, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func cmdsDecode(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%v in:\n%s", err, data)
	}
	return m
}

// cmdsCredHelpers is the credHelpers object of a docker config.
func cmdsCredHelpers(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var c struct {
		CredHelpers map[string]string `json:"credHelpers"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c.CredHelpers
}

// cmdsSettingsPath is where configure-docker records --key-file and hosts.
func cmdsSettingsPath(e *Env) string {
	return filepath.Join(e.ConfigHome, "docker-credential-gcp", "config.json")
}

func cmdsAssertAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (or cannot be checked: %v); nothing should have been written", path, err)
	}
}

// cmdsIssued checks that tok is a cloud-platform token the fake issued to
// principal.
func cmdsIssued(t *testing.T, g *fake.Google, tok, principal string) {
	t.Helper()
	is, ok := g.Issued(tok)
	if !ok {
		t.Fatalf("token %q was not issued by the fake token endpoint", tok)
	}
	if is.Principal != principal {
		t.Errorf("token issued to %q, want %q", is.Principal, principal)
	}
	if !strings.Contains(is.Scope, fake.CloudPlatformScope) {
		t.Errorf("token scope %q lacks cloud-platform", is.Scope)
	}
}

// cmdsGet runs `get` for server and returns the secret.
func cmdsGet(t *testing.T, e *Env, server string) string {
	t.Helper()
	r := cmdsMustRun(t, e, server+"\n", "get")
	var c struct{ ServerURL, Username, Secret string }
	if err := json.Unmarshal([]byte(r.Stdout), &c); err != nil {
		t.Fatalf("get output %q: %v", r.Stdout, err)
	}
	if c.Username != "oauth2accesstoken" {
		t.Errorf("get username = %q", c.Username)
	}
	return c.Secret
}

func TestCmdsConfigureDockerMissingConfig(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	r := cmdsMustRun(t, e, "", "configure-docker")
	data := cmdsReadConfig(t, e)
	helpers := cmdsCredHelpers(t, data)
	for _, h := range cmdsDefaultHosts {
		if helpers[h] != "gcp" {
			t.Errorf("credHelpers[%q] = %q, want gcp", h, helpers[h])
		}
	}
	if keys := cmdsTopKeys(t, data); !slices.Equal(keys, []string{"credHelpers"}) {
		t.Errorf("new config has keys %v", keys)
	}
	if m := cmdsMode(t, cmdsConfigPath(e)); m&0o077 != 0 {
		t.Errorf("new config mode %o is readable by others", m)
	}
	if strings.Contains(r.Stderr, "not on PATH") {
		t.Errorf("warned about PATH although the helper is on PATH:\n%s", r.Stderr)
	}
	cmdsMustRun(t, e, "", "configure-docker")
	if again := cmdsReadConfig(t, e); !bytes.Equal(again, data) {
		t.Errorf("second run changed the file:\n%s\n---\n%s", data, again)
	}
}

func TestCmdsConfigureDockerEmptyConfig(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{"zero bytes": "", "empty object": "{}\n"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := NewEnv(t)
			cmdsWriteConfig(t, e, content, 0o600)
			cmdsMustRun(t, e, "", "configure-docker", "--registries", "gcr.io")
			data := cmdsReadConfig(t, e)
			if got := cmdsCredHelpers(t, data); !reflect.DeepEqual(got, map[string]string{"gcr.io": "gcp"}) {
				t.Errorf("credHelpers = %v", got)
			}
			cmdsMustRun(t, e, "", "configure-docker", "--registries", "gcr.io")
			if again := cmdsReadConfig(t, e); !bytes.Equal(again, data) {
				t.Errorf("second run changed the file")
			}
		})
	}
}

func TestCmdsConfigureDockerRichConfig(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	cmdsWriteConfig(t, e, cmdsRichConfig, 0o640)
	path := cmdsConfigPath(e)

	// --dry-run shows the result and writes nothing.
	dry := cmdsMustRun(t, e, "", "configure-docker", "--dry-run")
	if got := string(cmdsReadConfig(t, e)); got != cmdsRichConfig {
		t.Fatalf("--dry-run wrote the config:\n%s", got)
	}
	if cmdsCredHelpers(t, []byte(dry.Stdout))["gcr.io"] != "gcp" {
		t.Errorf("--dry-run did not print the resulting config:\n%s", dry.Stdout)
	}
	cmdsAssertAbsent(t, cmdsSettingsPath(e))

	r := cmdsMustRun(t, e, "", "configure-docker")
	data := cmdsReadConfig(t, e)
	if dry.Stdout != string(data) {
		t.Errorf("--dry-run printed something else than the run wrote:\n%s\n---\n%s", dry.Stdout, data)
	}
	wantKeys := []string{"zeta-unknown", "auths", "credsStore", "credHelpers", "proxies", "psFormat", "alpha-unknown"}
	if keys := cmdsTopKeys(t, data); !slices.Equal(keys, wantKeys) {
		t.Errorf("top-level keys %v, want %v", keys, wantKeys)
	}
	before, after := cmdsDecode(t, []byte(cmdsRichConfig)), cmdsDecode(t, data)
	for k, v := range before {
		if k != "credHelpers" && !reflect.DeepEqual(after[k], v) {
			t.Errorf("%s changed: %v -> %v", k, v, after[k])
		}
	}
	helpers := cmdsCredHelpers(t, data)
	if helpers["123456789012.dkr.ecr.us-east-1.amazonaws.com"] != "ecr-login" {
		t.Errorf("another helper's entry was lost: %v", helpers)
	}
	for _, h := range cmdsDefaultHosts {
		if helpers[h] != "gcp" {
			t.Errorf("credHelpers[%q] = %q", h, helpers[h])
		}
	}
	if m := cmdsMode(t, path); m != 0o640 {
		t.Errorf("mode %o, want 0640 kept", m)
	}
	if !strings.Contains(r.Stderr, "warning:") || !strings.Contains(r.Stderr, `static login for gcr.io in "auths"`) {
		t.Errorf("no warning about the stale gcr.io login on stderr:\n%s", r.Stderr)
	}
	if strings.Contains(r.Stdout, "gcr.io") {
		t.Errorf("warnings went to stdout: %q", r.Stdout)
	}

	cmdsMustRun(t, e, "", "configure-docker")
	if again := cmdsReadConfig(t, e); !bytes.Equal(again, data) {
		t.Errorf("second run changed bytes:\n%s\n---\n%s", data, again)
	}

	cmdsMustRun(t, e, "", "configure-docker", "--remove")
	if got := string(cmdsReadConfig(t, e)); got != cmdsRichConfig {
		t.Errorf("--remove did not restore the original:\n%s", got)
	}
	if m := cmdsMode(t, path); m != 0o640 {
		t.Errorf("mode after --remove %o", m)
	}
}

func TestCmdsConfigureDockerUnparseable(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	const broken = "{\n\t\"auths\": {\n"
	cmdsWriteConfig(t, e, broken, 0o600)
	for _, args := range [][]string{{"configure-docker"}, {"configure-docker", "--remove"}} {
		r := e.Run("", args...)
		if r.Code != 1 {
			t.Errorf("%v: exit %d, want 1", args, r.Code)
		}
		if !strings.Contains(r.Stderr, "not valid JSON") {
			t.Errorf("%v: stderr %q does not say why", args, r.Stderr)
		}
		if got := string(cmdsReadConfig(t, e)); got != broken {
			t.Errorf("%v: an unparseable config was rewritten: %q", args, got)
		}
	}
	if entries, _ := os.ReadDir(e.DockerConfig); len(entries) != 1 {
		t.Errorf("stray files left in %s: %v", e.DockerConfig, entries)
	}
}

func TestCmdsConfigureDockerKeyFile(t *testing.T) {
	t.Parallel()
	g := fake.NewGoogle(t)
	e := NewEnv(t)
	const email = "ci@proj.iam.gserviceaccount.com"
	key := g.WriteServiceAccountKey(t, e.Home, email)

	// A relative path is recorded absolute; no token is minted to check it.
	c := e.Command(binary, "configure-docker", "--key-file", filepath.Base(key))
	c.Dir = e.Home
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("configure-docker --key-file: %v\n%s", err, out)
	} else if !strings.Contains(string(out), email) {
		t.Errorf("output does not name the key's account:\n%s", out)
	}
	if n := g.Count("any"); n != 0 {
		t.Errorf("configure-docker made %d token requests", n)
	}
	settings, err := os.ReadFile(cmdsSettingsPath(e))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(settings), key) {
		t.Errorf("settings do not record %s:\n%s", key, settings)
	}
	if strings.Contains(string(settings), "PRIVATE KEY") {
		t.Error("the key itself was copied into the settings")
	}

	tok := cmdsGet(t, e, "https://europe-docker.pkg.dev")
	cmdsIssued(t, g, tok, email)

	// doctor names the recorded key as the source.
	d := cmdsMustRun(t, e, "", "doctor")
	if !strings.Contains(d.Stdout, "used  key file "+key) {
		t.Errorf("doctor does not report the key file as used:\n%s", d.Stdout)
	}

	// --remove keeps it (other docker configs may route to it) and says
	// so; --remove --forget-key forgets it.
	r := cmdsMustRun(t, e, "", "configure-docker", "--remove")
	if !strings.Contains(r.Stderr, "kept the key file "+key) {
		t.Errorf("--remove does not say it kept the key file:\n%s", r.Stderr)
	}
	cmdsIssued(t, g, cmdsGet(t, e, "gcr.io"), email)
	cmdsMustRun(t, e, "", "configure-docker", "--remove", "--forget-key")
	if r := e.Run("gcr.io", "get"); r.Code != 1 || !strings.Contains(r.Stdout, "credentials not found") {
		t.Errorf("get after --remove --forget-key: exit %d %q", r.Code, r.Stdout)
	}
}

func TestCmdsConfigureDockerBadKeyFile(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not-json.json":       "-----BEGIN PRIVATE KEY-----\n",
		"incomplete-sa.json":  `{"type":"service_account","client_email":"x@p.iam.gserviceaccount.com"}`,
		"unknown-type.json":   `{"type":"no_such_type"}`,
		"missing-file.json":   "",
		"directory-not-a-key": "",
	} {
		path := filepath.Join(dir, name)
		switch name {
		case "missing-file.json":
		case "directory-not-a-key":
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r := e.Run("", "configure-docker", "--key-file", path)
		if r.Code != 1 {
			t.Errorf("%s: exit %d, want 1", name, r.Code)
		}
		if !strings.Contains(r.Stderr, "--key-file") || !strings.Contains(r.Stderr, path) {
			t.Errorf("%s: error does not name the flag and file: %q", name, r.Stderr)
		}
		if n := strings.Count(strings.TrimSpace(r.Stderr), "\n"); n != 0 {
			t.Errorf("%s: error is %d lines: %q", name, n+1, r.Stderr)
		}
	}
	cmdsAssertAbsent(t, cmdsConfigPath(e))
	cmdsAssertAbsent(t, cmdsSettingsPath(e))
}

func TestCmdsConfigureDockerNotOnPath(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	e.Set("PATH", "/usr/bin:/bin")
	r := cmdsMustRun(t, e, "", "configure-docker")
	if !strings.Contains(r.Stderr, "warning: docker-credential-gcp is not on PATH") {
		t.Errorf("no PATH warning:\n%s", r.Stderr)
	}
	if cmdsCredHelpers(t, cmdsReadConfig(t, e))["gcr.io"] != "gcp" {
		t.Error("the config was not written despite the warning")
	}
	d := e.Run("", "doctor")
	if !strings.Contains(d.Stdout, "docker-credential-gcp is not on PATH") {
		t.Errorf("doctor does not report the helper missing from PATH:\n%s", d.Stdout)
	}
}

// cmdsKeyEnv is an environment whose credential is a service-account key
// given by GOOGLE_APPLICATION_CREDENTIALS.
func cmdsKeyEnv(t *testing.T, email string) (*Env, *fake.Google, string) {
	t.Helper()
	g := fake.NewGoogle(t)
	e := NewEnv(t)
	key := g.WriteServiceAccountKey(t, t.TempDir(), email)
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", key)
	return e, g, key
}

func TestCmdsToken(t *testing.T) {
	t.Parallel()
	const email = "scripts@proj.iam.gserviceaccount.com"
	e, g, _ := cmdsKeyEnv(t, email)

	r := cmdsMustRun(t, e, "", "token")
	if !strings.HasSuffix(r.Stdout, "\n") || strings.Count(r.Stdout, "\n") != 1 {
		t.Errorf("token output is not one line: %q", r.Stdout)
	}
	tok := strings.TrimSpace(r.Stdout)
	cmdsIssued(t, g, tok, email)
	if r.Stderr != "" {
		t.Errorf("token wrote to stderr: %q", r.Stderr)
	}

	alias := cmdsMustRun(t, e, "", "print-access-token")
	if got := strings.TrimSpace(alias.Stdout); got != tok {
		t.Errorf("print-access-token = %q, want the cached %q", got, tok)
	}

	j := cmdsMustRun(t, e, "", "token", "--format", "json")
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Expiry      string `json:"expiry"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(j.Stdout), &out); err != nil {
		t.Fatalf("--format json: %v\n%s", err, j.Stdout)
	}
	if out.AccessToken != tok || out.TokenType != "Bearer" {
		t.Errorf("--format json = %+v", out)
	}
	if out.ExpiresIn < 50*60 || out.ExpiresIn > 3600 {
		t.Errorf("expires_in = %d", out.ExpiresIn)
	}
	exp, err := time.Parse(time.RFC3339, out.Expiry)
	if err != nil {
		t.Errorf("expiry %q: %v", out.Expiry, err)
	} else if is, _ := g.Issued(tok); exp.Sub(is.Expiry).Abs() > 2*time.Second {
		t.Errorf("expiry %s, fake says %s", exp, is.Expiry)
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d jwt grants for three calls, want 1 (cache)", n)
	}

	for _, bad := range [][]string{{"token", "--format", "yaml"}, {"token", "--registry", "docker.io"}, {"token", "extra"}, {"token", "--no-such-flag"}} {
		r := e.Run("", bad...)
		if r.Code != 1 || r.Stdout != "" || r.Stderr == "" {
			t.Errorf("%v: exit %d stdout %q stderr %q", bad, r.Code, r.Stdout, r.Stderr)
		}
	}
	if n := g.Count("any"); n != 1 {
		t.Errorf("bad invocations minted: %d requests", n)
	}
}

func TestCmdsTokenNoCredentials(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	r := e.Run("", "token")
	if r.Code != 1 || r.Stdout != "" {
		t.Fatalf("exit %d stdout %q", r.Code, r.Stdout)
	}
	for _, want := range []string{"no Google credentials", "GOOGLE_APPLICATION_CREDENTIALS", "--key-file"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr %q lacks %q", r.Stderr, want)
		}
	}
}

// cmdsDockerConfigAuths decodes a printed docker config into host → user:password.
func cmdsDockerConfigAuths(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var c struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	out := map[string]string{}
	for host, a := range c.Auths {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			t.Fatalf("auths[%s]: %v", host, err)
		}
		out[host] = string(raw)
	}
	return out
}

func TestCmdsDockerConfig(t *testing.T) {
	t.Parallel()
	const email = "pull@proj.iam.gserviceaccount.com"
	e, g, _ := cmdsKeyEnv(t, email)

	r := cmdsMustRun(t, e, "", "dockerconfig")
	auths := cmdsDockerConfigAuths(t, []byte(r.Stdout))
	var hosts []string
	for h, cred := range auths {
		hosts = append(hosts, h)
		tok, ok := strings.CutPrefix(cred, "oauth2accesstoken:")
		if !ok {
			t.Errorf("%s: %q is not oauth2accesstoken:<token>", h, cred)
			continue
		}
		cmdsIssued(t, g, tok, email)
	}
	slices.Sort(hosts)
	want := slices.Sorted(slices.Values(cmdsDefaultHosts))
	if !slices.Equal(hosts, want) {
		t.Errorf("hosts %v, want %v", hosts, want)
	}
	if n := g.Count("jwt"); n != 1 {
		t.Errorf("%d jwt grants for %d hosts, want 1", n, len(hosts))
	}

	r = cmdsMustRun(t, e, "", "dockerconfig", "--registries", "europe-west1-docker.pkg.dev,https://EU.GCR.IO/")
	auths = cmdsDockerConfigAuths(t, []byte(r.Stdout))
	if len(auths) != 2 || auths["europe-west1-docker.pkg.dev"] == "" || auths["eu.gcr.io"] == "" {
		t.Errorf("--registries: auths %v", slices.Collect(func(yield func(string) bool) {
			for h := range auths {
				yield(h)
			}
		}))
	}

	// --output writes the same kind of file, 0600, and prints nothing.
	out := filepath.Join(t.TempDir(), "drone", "config.json")
	w := cmdsMustRun(t, e, "", "dockerconfig", "--output", out, "--registries", "gcr.io")
	if w.Stdout != "" {
		t.Errorf("--output printed %q", w.Stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if a := cmdsDockerConfigAuths(t, data); len(a) != 1 || !strings.HasPrefix(a["gcr.io"], "oauth2accesstoken:") {
		t.Errorf("--output file auths %v", a)
	}
	if m := cmdsMode(t, out); m != 0o600 {
		t.Errorf("--output mode %o, want 0600", m)
	}

	before := g.Count("any")
	for _, bad := range [][]string{{"dockerconfig", "--registries", "docker.io"}, {"dockerconfig", "--refresh"}} {
		r := e.Run("", bad...)
		if r.Code != 1 || r.Stdout != "" || r.Stderr == "" {
			t.Errorf("%v: exit %d stdout %q stderr %q", bad, r.Code, r.Stdout, r.Stderr)
		}
	}
	if g.Count("any") != before {
		t.Error("a refused dockerconfig reached the token endpoint")
	}
}

// cmdsAssertNoSecret fails when out contains any of secrets (blank ones
// and very short ones are ignored).
func cmdsAssertNoSecret(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		s = strings.TrimSpace(s)
		if len(s) < 8 {
			continue
		}
		if strings.Contains(out, s) {
			t.Errorf("%s contains a secret (%.12s...)", what, s)
		}
	}
}

// cmdsPEMLines are the base64 body lines of a key file's private key.
func cmdsPEMLines(t *testing.T, keyFile string) []string {
	t.Helper()
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(k.PrivateKey, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Fatal("no PEM body in the key file")
	}
	return lines
}

func TestCmdsDoctor(t *testing.T) {
	t.Parallel()
	t.Run("service account via GOOGLE_APPLICATION_CREDENTIALS", func(t *testing.T) {
		t.Parallel()
		const email = "doctor-sa@proj.iam.gserviceaccount.com"
		e, g, key := cmdsKeyEnv(t, email)
		cmdsMustRun(t, e, "", "configure-docker")
		d := cmdsMustRun(t, e, "", "doctor")
		for _, want := range []string{"used  GOOGLE_APPLICATION_CREDENTIALS (" + key + ")", "principal: " + email, "kind: service_account", "minted now", "valid until", `credHelpers route to "gcp"`, "Helper on PATH:"} {
			if !strings.Contains(d.Stdout, want) {
				t.Errorf("doctor lacks %q:\n%s", want, d.Stdout)
			}
		}
		// A second doctor reports the cache hit.
		d2 := cmdsMustRun(t, e, "", "doctor")
		if !strings.Contains(d2.Stdout, "from the cache") {
			t.Errorf("second doctor does not report the cached token:\n%s", d2.Stdout)
		}
		tok := strings.TrimSpace(cmdsMustRun(t, e, "", "token").Stdout)
		cmdsIssued(t, g, tok, email)
		secrets := append([]string{tok}, cmdsPEMLines(t, key)...)
		cmdsAssertNoSecret(t, "doctor", d.Stdout+d.Stderr+d2.Stdout+d2.Stderr, secrets...)
		if n := g.Count("jwt"); n != 1 {
			t.Errorf("%d jwt grants, want 1", n)
		}
	})
	t.Run("authorized_user ADC file in CLOUDSDK_CONFIG", func(t *testing.T) {
		t.Parallel()
		g := fake.NewGoogle(t)
		e := NewEnv(t)
		const clientID, clientSecret, refresh = "123-user.apps.googleusercontent.com", "GOCSPX-doctor-client-secret", "1//doctor-refresh-token-abcdef"
		if err := os.MkdirAll(e.CloudSDK, 0o700); err != nil {
			t.Fatal(err)
		}
		adc := filepath.Join(e.CloudSDK, "application_default_credentials.json")
		if err := os.WriteFile(adc, g.AuthorizedUserJSON(clientID, clientSecret, refresh), 0o600); err != nil {
			t.Fatal(err)
		}
		d := cmdsMustRun(t, e, "", "doctor")
		if strings.Contains(d.Stdout, clientID) {
			t.Errorf("doctor shows the OAuth client_id as the principal:\n%s", d.Stdout)
		}
		for _, want := range []string{"used  gcloud application default credentials (" + adc + ")", "kind: authorized_user", "principal: unknown", "skip  GOOGLE_APPLICATION_CREDENTIALS"} {
			if !strings.Contains(d.Stdout, want) {
				t.Errorf("doctor lacks %q:\n%s", want, d.Stdout)
			}
		}
		tok := strings.TrimSpace(cmdsMustRun(t, e, "", "token").Stdout)
		if is, ok := g.Issued(tok); !ok || is.Via != "refresh" {
			t.Errorf("token %v %v", is, ok)
		}
		cmdsAssertNoSecret(t, "doctor", d.Stdout+d.Stderr, tok, refresh, clientSecret)
	})
	t.Run("metadata server", func(t *testing.T) {
		t.Parallel()
		const email = "vm-sa@proj.iam.gserviceaccount.com"
		m := fake.NewMetadata(t, email)
		e := NewEnv(t)
		e.Set("GCE_METADATA_HOST", m.Host())
		d := cmdsMustRun(t, e, "", "doctor")
		for _, want := range []string{"used  metadata server (" + m.Host() + ")", "principal: " + email} {
			if !strings.Contains(d.Stdout, want) {
				t.Errorf("doctor lacks %q:\n%s", want, d.Stdout)
			}
		}
		tok := strings.TrimSpace(cmdsMustRun(t, e, "", "token").Stdout)
		if !m.Issued(tok) {
			t.Errorf("token %q not from the metadata server", tok)
		}
		cmdsAssertNoSecret(t, "doctor", d.Stdout+d.Stderr, tok)
	})
	t.Run("nothing", func(t *testing.T) {
		t.Parallel()
		e := NewEnv(t)
		d := e.Run("", "doctor")
		if d.Code != 1 {
			t.Errorf("exit %d, want 1", d.Code)
		}
		for _, want := range []string{"FAIL", "no Google credentials", "skip  metadata server", "does not exist: run docker-credential-gcp configure-docker"} {
			if !strings.Contains(d.Stdout, want) {
				t.Errorf("doctor lacks %q:\n%s", want, d.Stdout)
			}
		}
		if !strings.Contains(d.Stderr, "no Google credentials") {
			t.Errorf("stderr %q", d.Stderr)
		}
	})
	t.Run("revoked key fails with the source named", func(t *testing.T) {
		t.Parallel()
		const email = "revoked@proj.iam.gserviceaccount.com"
		e, g, key := cmdsKeyEnv(t, email)
		g.Revoke(email)
		d := e.Run("", "doctor")
		if d.Code != 1 {
			t.Errorf("exit %d, want 1", d.Code)
		}
		if !strings.Contains(d.Stdout, "FAIL") || !strings.Contains(d.Stdout+d.Stderr, "invalid_grant") {
			t.Errorf("doctor does not explain the failure:\n%s\n%s", d.Stdout, d.Stderr)
		}
		cmdsAssertNoSecret(t, "doctor", d.Stdout+d.Stderr, cmdsPEMLines(t, key)...)
	})
}

func TestCmdsHelpVersionUnknown(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	for cmd, usage := range map[string]string{
		"configure-docker":            "Usage: docker-credential-gcp configure-docker",
		"token":                       "Usage: docker-credential-gcp token",
		"print-access-token":          "Usage: docker-credential-gcp token",
		"dockerconfig":                "Usage: docker-credential-gcp dockerconfig",
		"doctor":                      "Usage: docker-credential-gcp doctor",
		"drone-registry":              "Usage: docker-credential-gcp drone-registry",
		"kubelet-credential-provider": "Usage: docker-credential-gcp kubelet-credential-provider",
	} {
		for _, flag := range []string{"--help", "-h"} {
			r := e.Run("", cmd, flag)
			if r.Code != 0 || !strings.Contains(r.Stdout, usage) {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", cmd, flag, r.Code, r.Stdout, r.Stderr)
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		r := e.Run("", args...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "Usage: docker-credential-gcp <command>") {
			t.Errorf("%v: exit %d, stdout %q", args, r.Code, r.Stdout)
		}
		for _, c := range []string{"configure-docker", "token", "dockerconfig", "doctor", "drone-registry", "kubelet-credential-provider"} {
			if !strings.Contains(r.Stdout, c) {
				t.Errorf("%v does not list %s", args, c)
			}
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := e.Run("", args...)
		if r.Code != 0 || !strings.HasPrefix(r.Stdout, "docker-credential-gcp e2e (test, go1.") {
			t.Errorf("%v: exit %d, stdout %q", args, r.Code, r.Stdout)
		}
	}
	for _, args := range [][]string{{"no-such-command"}, {}} {
		r := e.Run("", args...)
		if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "Usage: docker-credential-gcp <command>") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.Code, r.Stdout, r.Stderr)
		}
	}
	if r := e.Run("", "no-such-command"); !strings.Contains(r.Stderr, `unknown command "no-such-command"`) {
		t.Errorf("stderr %q does not name the unknown command", r.Stderr)
	}
}
