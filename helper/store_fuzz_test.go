package helper

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/token"
	"github.com/docker/docker-credential-helpers/credentials"
)

// fuzzSecretMarker marks secrets in seeds; no error may quote it unless
// the input put it in the server URL or username, which errors may name.
const fuzzSecretMarker = "SECRET-"

// fuzzIsolate points everything the helper could read from the
// environment at empty temp dirs and a dead metadata address, once per
// fuzz process (isolate takes a *testing.T; this is its *testing.F twin).
func fuzzIsolate(f *testing.F) {
	root := f.TempDir()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "DOCKER_CREDENTIAL_GCP_") || strings.HasPrefix(name, "GOOGLE_") {
			f.Setenv(name, "")
		}
	}
	f.Setenv("HOME", filepath.Join(root, "home"))
	f.Setenv("XDG_CONFIG_HOME", filepath.Join(root, "config"))
	f.Setenv("XDG_CACHE_HOME", filepath.Join(root, "cache"))
	f.Setenv("CLOUDSDK_CONFIG", filepath.Join(root, "gcloud"))
	f.Setenv("GCE_METADATA_HOST", "127.0.0.1:1")
}

var storeInputSeeds = []string{
	`{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"ya29.SECRET-a"}`,
	`{"ServerURL":"https://eu.gcr.io/v2/","Username":"oauth2accesstoken","Secret":"ya29.SECRET-b"}` + "\n",
	`{"ServerURL":"europe-west1-docker.pkg.dev","Username":"_json_key","Secret":"{\"type\":\"service_account\",\"private_key\":\"SECRET-k\"}"}`,
	`{"ServerURL":"us-docker.pkg.dev","Username":"_json_key_base64","Secret":"eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0="}`,
	`{"ServerURL":"registry.example.com:5000","Username":"oauth2accesstoken","Secret":"SECRET-c"}`,
	`{"ServerURL":"gcr.io.evil.com","Username":"oauth2accesstoken","Secret":"SECRET-d"}`,
	`{"ServerURL":"evil.com/gcr.io","Username":"_json_key","Secret":"SECRET-e"}`,
	`{"ServerURL":"gcr.io","Username":"_json_key","Secret":"SECRET-not-json"}`,
	`{"ServerURL":"gcr.io","Username":"_json_key","Secret":"{\"type\":\"SECRET-type\"}"}`,
	`{"ServerURL":"gcr.io","Username":"_json_key_base64","Secret":"SECRET-!!"}`,
	`{"ServerURL":"gcr.io","Username":"admin","Secret":"SECRET-f"}`,
	`{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"ya29.SECRET g"}`,
	`{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"  "}`,
	`{"ServerURL":"","Username":"oauth2accesstoken","Secret":"SECRET-h"}`,
	`{"ServerURL":"gcr.io","Username":"","Secret":"SECRET-i"}`,
	`{"ServerURL":1,"Username":true,"Secret":[]}`,
	`{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":{"k":"SECRET-j"}}`,
	`["gcr.io","oauth2accesstoken","SECRET-k"]`,
	`{"ServerURL":"gcr.io\u0000","Username":"oauth2accesstoken","Secret":"SECRET-l"}`,
	"{\"ServerURL\":\"gcr.io\xff\",\"Username\":\"oauth2accesstoken\",\"Secret\":\"SECRET-m\"}",
	"{\"ServerURL\":\n\"gcr.io\",\n\"Username\":\"oauth2accesstoken\",\n\"Secret\":\"SECRET-n\"}\n",
	`{"serverurl":"GCR.IO.","username":"oauth2accesstoken","secret":"SECRET-o"} trailing`,
	`{"ServerURL":"gcr.io","Username":"oauth2accesstoken","Secret":"SECRET-p"`,
	`null`, ``, "\x00", "not json",
}

// FuzzStoreInput feeds arbitrary bytes to the protocol's `store` action
// (credentials.Store over Helper.Add). It must never panic; a refusal
// writes nothing and quotes no secret; an acceptance lists back exactly
// the entry the input described, in a 0600 file.
func FuzzStoreInput(f *testing.F) {
	fuzzIsolate(f)
	for _, s := range storeInputSeeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, input []byte) {
		path := filepath.Join(dir, storeFileName)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		h := &Helper{
			Store:   &Store{Path: path},
			Policy:  Policy{Extra: []string{"registry.example.com"}},
			Scopes:  []string{token.CloudPlatformScope},
			sources: func(token.Options) []token.Source { return nil },
		}
		err := credentials.Store(h, bytes.NewReader(input))
		c, decoded := fuzzDecodeStoreInput(input)
		if err != nil {
			if _, statErr := os.Stat(path); statErr == nil {
				t.Fatalf("a refused store (%v) wrote %s", err, path)
			}
			if msg := err.Error(); strings.Contains(msg, fuzzSecretMarker) &&
				!(decoded && strings.Contains(c.ServerURL+c.Username, fuzzSecretMarker)) {
				t.Fatalf("error quotes a secret: %q", msg)
			}
			return
		}
		if !decoded {
			t.Fatalf("store accepted input that does not decode as credentials: %q", input)
		}
		host, perr := ParseHost(c.ServerURL)
		if perr != nil {
			t.Fatalf("store accepted server URL %q that ParseHost refuses: %v", c.ServerURL, perr)
		}
		if _, ok := h.Policy.Allows(host); !ok {
			t.Fatalf("store accepted %q, outside the policy", host)
		}
		list, err := h.List()
		if err != nil || len(list) != 1 || list[host] != c.Username {
			t.Fatalf("after storing %q for %q, List = %v, %v", c.Username, host, list, err)
		}
		e, ok, err := h.Store.Get(host)
		if err != nil || !ok || e.Username != c.Username || e.Secret != c.Secret {
			t.Fatalf("Get(%q) = %+v, %v, %v; want the stored entry back", host, e, ok, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != storeFilePerm {
			t.Fatalf("store file mode %v (%v), want %v", fi.Mode().Perm(), err, storeFilePerm)
		}
	})
}

// fuzzDecodeStoreInput reads input the way credentials.Store does: lines
// joined without their line breaks, then one JSON value.
func fuzzDecodeStoreInput(input []byte) (credentials.Credentials, bool) {
	var c credentials.Credentials
	var joined bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(input))
	for sc.Scan() {
		joined.Write(sc.Bytes())
	}
	if sc.Err() != nil {
		return c, false
	}
	if err := json.NewDecoder(&joined).Decode(&c); err != nil {
		return c, false
	}
	return c, true
}

var storedFileSeeds = []string{
	``, `{}`, `null`, `[]`, `{"credentials":null}`, `{"credentials":{}}`,
	`{"credentials":{"gcr.io":{"username":"oauth2accesstoken","secret":"ya29.SECRET-a","stored_at":"2026-01-02T03:04:05Z"}}}`,
	`{"credentials":{"gcr.io":{"username":"_json_key","secret":"{\"type\":\"service_account\",\"private_key\":\"SECRET-b\"}","stored_at":"2026-01-02T03:04:05.123456789+02:00"},"eu.gcr.io":{"username":"oauth2accesstoken","secret":"SECRET-c","stored_at":"0001-01-01T00:00:00Z"}}}`,
	`{"credentials":{"GCR.IO":{"username":"oauth2accesstoken","secret":"SECRET-d"},"gcr.io":{"username":"x"}}}`,
	`{"credentials":{"gcr.io":{"username":"oauth2accesstoken","secret":"SECRET-e","stored_at":"yesterday"}}}`,
	`{"credentials":{"gcr.io":{"username":42,"secret":"SECRET-f"}}}`,
	`{"credentials":{"gcr.io":"SECRET-g"}}`,
	`{"credentials":["SECRET-h"]}`,
	`{"credentials":{"gcr.io":{"username":"oauth2accesstoken","secret":"SECRET-i"}}`,
	`{"credentials":{"gcr.io":{"secret":"SECRET-j\u0000\ud800"}},"credentials":{}}`,
	"{\"credentials\":{\"gcr.io\xff\":{\"secret\":\"SECRET-k\xfe\"}}}",
	`{"Credentials":{"us.gcr.io":{"Username":"oauth2accesstoken","SECRET":"SECRET-l"}},"extra":[1,2,3]}`,
	"\xef\xbb\xbf{\"credentials\":{}}",
	"SECRET-m",
}

// FuzzStoredFile writes arbitrary bytes as credentials.json. Get and List
// must never panic and agree; a file they cannot read is an error naming
// the file (and quoting no secret) that a Put refuses to overwrite; a
// readable one keeps every entry through a Put.
func FuzzStoredFile(f *testing.F) {
	fuzzIsolate(f)
	for _, s := range storedFileSeeds {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Store{Path: filepath.Join(dir, storeFileName)}
		if err := os.WriteFile(s.Path, data, storeFilePerm); err != nil {
			t.Fatal(err)
		}
		list, listErr := s.List()
		_, _, getErr := s.Get("gcr.io")
		if (listErr == nil) != (getErr == nil) {
			t.Fatalf("List error %v but Get error %v", listErr, getErr)
		}
		newEntry := Entry{Username: UsernameAccessToken, Secret: "ya29.new", StoredAt: time.Unix(1700000000, 0).UTC()}
		if listErr != nil {
			msg := listErr.Error()
			if !strings.Contains(msg, s.Path) {
				t.Fatalf("error does not name the file: %q", msg)
			}
			if strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, fuzzSecretMarker) {
				t.Fatalf("error is not one secret-free line: %q", msg)
			}
			if err := s.Put("gcr.io", newEntry); err == nil {
				t.Fatal("Put overwrote a store file that cannot be read")
			}
			if after, _ := os.ReadFile(s.Path); !bytes.Equal(after, data) {
				t.Fatal("a failed Put changed the unreadable store file")
			}
			return
		}
		for host, user := range list {
			if key, err := ParseHost(host); err != nil || key != host {
				continue // not a key Get can reach; still listed and kept
			}
			e, ok, err := s.Get(host)
			if err != nil || !ok || e.Username != user {
				t.Fatalf("List has %q: %q but Get = %+v, %v, %v", host, user, e, ok, err)
			}
		}
		if err := s.Put("gcr.io", newEntry); err != nil {
			t.Fatalf("Put on a readable store: %v", err)
		}
		want := maps.Clone(list)
		want["gcr.io"] = UsernameAccessToken
		got, err := s.List()
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("after Put, List = %v, %v; want %v", got, err, want)
		}
	})
}
