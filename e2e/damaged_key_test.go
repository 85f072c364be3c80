package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// damagedKeyJSON is key with its private key's line breaks turned into
// spaces, the copy-and-paste accident people make.
func damagedKeyJSON(t *testing.T, key []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(key, &m); err != nil {
		t.Fatal(err)
	}
	m["private_key"] = strings.ReplaceAll(m["private_key"].(string), "\n", " ")
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A damaged private key is refused where the user hands it over
// (configure-docker --key-file, docker login's store) with one line saying
// it is damaged and to download it again; a get from one says the same
// instead of an asn1 dump. The key is never printed.
func TestDamagedKeyRefused(t *testing.T) {
	t.Parallel()
	e, g, key := protoKeyEnv(t, "damaged@proj.iam.gserviceaccount.com")
	secrets := protoKeySecrets(t, key)
	damaged := damagedKeyJSON(t, key)
	path := protoWrite(t, t.TempDir(), "damaged.json", damaged)

	r := badRun(t, e, nil, "configure-docker", "--key-file", path)
	badAssertOneLine(t, r, false, "--key-file", "the private key in "+path+" is damaged", "line breaks are missing", "download the key again")
	protoExpectNoSecret(t, r, secrets)
	cmdsAssertAbsent(t, cmdsConfigPath(e))
	cmdsAssertAbsent(t, cmdsSettingsPath(e))

	in, _ := json.Marshal(map[string]string{"ServerURL": "gcr.io", "Username": "_json_key", "Secret": string(damaged)})
	r = badRun(t, e, in, "store")
	badAssertOneLine(t, r, true, "gcr.io", "the private key in the credential JSON is damaged", "download the key again")
	protoExpectNoSecret(t, r, secrets)
	cmdsAssertAbsent(t, filepath.Join(e.ConfigHome, "docker-credential-gcp", "credentials.json"))

	e.Set("GOOGLE_APPLICATION_CREDENTIALS", path)
	r = badRun(t, e, []byte("gcr.io"), "get")
	badAssertOneLine(t, r, true, "GOOGLE_APPLICATION_CREDENTIALS", "is damaged", "download the key again")
	if strings.Contains(r.Stdout, "asn1") {
		t.Errorf("get shows an asn1 dump: %q", r.Stdout)
	}
	protoExpectNoSecret(t, r, secrets)
	if n := g.Count("any"); n != 0 {
		t.Errorf("%d token requests with a damaged key, want 0", n)
	}
}
