package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Messages a new user meets in the first hour: each says what is wrong in
// the user's terms, and agrees with the README.

// get, store and erase read stdin through the protocol library's line
// scanner: a line over 64 KiB is refused in words, not as the scanner's
// "token too long", and the README states both limits the code enforces.
func TestStdinLimitsSaidAsREADMESays(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	long := []byte(strings.Repeat("x", 65<<10) + "\n")
	for _, action := range []string{"get", "store", "erase"} {
		r := badRun(t, e, long, action)
		badAssertOneLine(t, r, true, action+": stdin has a line longer than 64 KiB")
		if strings.Contains(r.Stdout, "bufio") || strings.Contains(r.Stdout, "token too long") {
			t.Errorf("%s shows the scanner's error: %q", action, r.Stdout)
		}
	}
	// A truncated JSON is not blamed on its size.
	r := badRun(t, e, []byte(`{"ServerURL":"gcr.io",`), "store")
	badAssertOneLine(t, r, true, "store: stdin must hold a credentials JSON", "unexpected EOF")
	if strings.Contains(r.Stdout, "KiB") {
		t.Errorf("store blames a truncated JSON on a size limit: %q", r.Stdout)
	}

	readme, err := os.ReadFile(filepath.Join(instRepo(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "at most 1 MiB, no line longer than 64 KiB") {
		t.Error("README.md does not state stdin's limits as get enforces them (at most 1 MiB, no line longer than 64 KiB)")
	}
}

// The kubelet's request is JSON a person may have to debug: its errors
// give the line and column, as every other JSON error of ours does, and
// never quote the service-account token.
func TestKubeletRequestErrorsGivePosition(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	const head = "{\"apiVersion\": \"credentialprovider.kubelet.k8s.io/v1\",\n"
	for _, c := range []struct{ name, req, want string }{
		{"syntax", head + ` "kind": CredentialProviderRequest}`, "invalid character 'C' looking for beginning of value at line 2, column 10"},
		{"wrong type", head + ` "kind": "CredentialProviderRequest", "image": 7}`, `"image" is a JSON number where a string belongs, at line 2, column 48`},
		{"cut short", head + ` "serviceAccountToken": "` + badSecret, "unexpected end of JSON input at line 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := badRun(t, e, []byte(c.req), "kubelet-credential-provider")
			badAssertOneLine(t, r, false, "parsing the CredentialProviderRequest on stdin: "+c.want)
			if strings.Contains(r.Stderr, "Go struct") || strings.Contains(r.Stderr, "kubeletRequest") {
				t.Errorf("the error names Go's types: %q", r.Stderr)
			}
		})
	}
}

// token and doctor serve one registry (--registry), the others a list
// (--registries): each takes either spelling, and a list given to a
// one-registry command is refused in one line.
func TestRegistryFlagTakesBothSpellings(t *testing.T) {
	t.Parallel()
	e, g, _ := cmdsKeyEnv(t, "spelling@proj.iam.gserviceaccount.com")

	tok := cmdsMustRun(t, e, "", "token", "--registries", "eu.gcr.io")
	if _, ok := g.Issued(strings.TrimSpace(tok.Stdout)); !ok {
		t.Errorf("token --registries printed %q, not a token the fake issued", tok.Stdout)
	}
	if d := cmdsMustRun(t, e, "", "doctor", "--registries", "europe-docker.pkg.dev"); !strings.Contains(d.Stdout, "Registry: europe-docker.pkg.dev") {
		t.Errorf("doctor --registries did not check that registry:\n%s", d.Stdout)
	}
	dc := cmdsMustRun(t, e, "", "dockerconfig", "--registry", "us-docker.pkg.dev")
	var cfg struct{ Auths map[string]any }
	if err := json.Unmarshal([]byte(dc.Stdout), &cfg); err != nil || len(cfg.Auths) != 1 || cfg.Auths["us-docker.pkg.dev"] == nil {
		t.Errorf("dockerconfig --registry us-docker.pkg.dev: %v, auths %v", err, cfg.Auths)
	}
	cmdsMustRun(t, e, "", "configure-docker", "--registry", "asia.gcr.io")
	if got := cmdsCredHelpers(t, cmdsReadConfig(t, e)); len(got) != 1 || got["asia.gcr.io"] != "gcp" {
		t.Errorf("configure-docker --registry asia.gcr.io routed %v", got)
	}
	// drone-registry serves until stopped: --help after the flag proves
	// the flag parsed.
	cmdsMustRun(t, e, "", "drone-registry", "--registry", "gcr.io", "--help")

	for _, command := range []string{"token", "doctor"} {
		r := badRun(t, e, nil, command, "--registries", "gcr.io,eu.gcr.io")
		badAssertOneLine(t, r, false, "--registry takes one HOST: "+command+" serves one registry at a time")
	}
}

// dockerconfig --help and the README name the Kubernetes secret alike, so
// the README's imagePullSecrets find what the help's command created.
func TestDockerconfigHelpNamesSecretAsREADME(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	help := cmdsMustRun(t, e, "", "dockerconfig", "--help").Stdout
	readme, err := os.ReadFile(filepath.Join(instRepo(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	secret := regexp.MustCompile(`kubectl create secret docker-registry ([a-z0-9-]+)`)
	want := secret.FindStringSubmatch(help)
	if want == nil {
		t.Fatalf("dockerconfig --help shows no kubectl create secret:\n%s", help)
	}
	names := secret.FindAllStringSubmatch(string(readme), -1)
	if len(names) == 0 {
		t.Fatal("README.md shows no kubectl create secret docker-registry")
	}
	for _, m := range names {
		if m[1] != want[1] {
			t.Errorf("README.md names the secret %q, dockerconfig --help %q", m[1], want[1])
		}
	}
	if !strings.Contains(string(readme), "imagePullSecrets: [{ name: "+want[1]+" }]") {
		t.Errorf("README.md's imagePullSecrets do not name %q", want[1])
	}
}

// A PEM private key passed where the JSON key belongs says so and what to
// use instead, wherever a key file is taken, and quotes none of the key.
func TestPEMKeyFileSaysItIsNotTheJSONKey(t *testing.T) {
	t.Parallel()
	e, _, keyJSON := cmdsKeyEnv(t, "pem@proj.iam.gserviceaccount.com")
	data, err := os.ReadFile(keyJSON)
	if err != nil {
		t.Fatal(err)
	}
	var key struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(data, &key); err != nil || !strings.HasPrefix(key.PrivateKey, "-----BEGIN PRIVATE KEY-----") {
		t.Fatalf("the fake's key holds no PEM private key (%v)", err)
	}
	pem := filepath.Join(t.TempDir(), "sa.pem")
	if err := os.WriteFile(pem, []byte(key.PrivateKey), 0o600); err != nil {
		t.Fatal(err)
	}
	body := strings.Split(key.PrivateKey, "\n")[1]
	want := []string{pem, "this is a PEM file (-----BEGIN PRIVATE KEY-----), not the JSON key", "gcloud iam service-accounts keys create KEY.json"}

	r := badRun(t, e, nil, "configure-docker", "--key-file", pem)
	badAssertOneLine(t, r, false, append([]string{"--key-file: "}, want...)...)
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", pem)
	g := badRun(t, e, []byte("gcr.io"), "get")
	badAssertOneLine(t, g, true, append([]string{"GOOGLE_APPLICATION_CREDENTIALS ("}, want...)...)
	for _, out := range []string{r.Stderr, g.Stdout} {
		if strings.Contains(out, "syntax error") || strings.Contains(out, body[:16]) {
			t.Errorf("the error shows the JSON parser's complaint or the key: %q", out)
		}
	}
}
