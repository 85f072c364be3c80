package helper

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
	"github.com/docker/docker-credential-helpers/credentials"
	"golang.org/x/oauth2"
)

// fakeSource is an in-memory token.Source that counts its lookups.
type fakeSource struct {
	name  string
	cred  *token.Credential
	err   error
	calls *atomic.Int32
}

func (s fakeSource) Name() string { return s.name }

func (s fakeSource) Find(context.Context) (*token.Credential, error) {
	if s.calls != nil {
		s.calls.Add(1)
	}
	if s.err != nil {
		return nil, s.err
	}
	return s.cred, nil
}

// countingTokenSource counts mints.
type countingTokenSource struct {
	tok   string
	mints *atomic.Int32
}

func (c countingTokenSource) Token() (*oauth2.Token, error) {
	c.mints.Add(1)
	return &oauth2.Token{AccessToken: c.tok, TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}, nil
}

// newTestHelper is a Helper on a temp store whose default chain is sources.
func newTestHelper(t *testing.T, sources ...token.Source) *Helper {
	t.Helper()
	return &Helper{
		Store:   newTestStore(t),
		Scopes:  []string{token.CloudPlatformScope},
		sources: func(token.Options) []token.Source { return sources },
	}
}

func notFoundSource(name string, calls *atomic.Int32) fakeSource {
	return fakeSource{name: name, err: fmt.Errorf("%s is not set: %w", name, token.ErrNotFound), calls: calls}
}

func readySource(name, tok string, calls *atomic.Int32) fakeSource {
	return fakeSource{name: name, calls: calls, cred: &token.Credential{
		Source:      name,
		Kind:        "access_token",
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok}),
	}}
}

func TestGetRefusedHostNeverLooksAtASource(t *testing.T) {
	isolate(t)
	var calls atomic.Int32
	h := newTestHelper(t, readySource("fake", "ya29.tok", &calls))
	// A corrupt store makes any lookup of the stored source an error.
	if err := os.MkdirAll(filepath.Dir(h.Store.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Store.Path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		"gcr.io.evil.com", "evilgcr.io", "evil.com/gcr.io", "gcr.io@evil.com",
		"evil.com#gcr.io", "evil.com?gcr.io", "xgcr.io", "docker.pkg.dev.evil.com",
		"https://index.docker.io/v1/", "", "not a url", "gcr.io\x00",
	} {
		user, secret, err := h.Get(in)
		if !credentials.IsErrCredentialsNotFound(err) || user != "" || secret != "" {
			t.Errorf("Get(%q) = %q, %q, %v; want credentials not found", in, user, secret, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("refused hosts looked at a source %d times", n)
	}
}

func TestGetToken(t *testing.T) {
	isolate(t)
	var calls atomic.Int32
	h := newTestHelper(t, notFoundSource("first", &calls), readySource("second", "ya29.tok", &calls))
	for _, in := range []string{"https://gcr.io", "GCR.IO.", "europe-west1-docker.pkg.dev/p/r/i"} {
		user, secret, err := h.Get(in)
		if err != nil || user != "oauth2accesstoken" || secret != "ya29.tok" {
			t.Errorf("Get(%q) = %q, %q, %v", in, user, secret, err)
		}
	}
	if n := calls.Load(); n != 6 {
		t.Errorf("sources looked at %d times, want 6", n)
	}
}

func TestGetExtraRegistry(t *testing.T) {
	isolate(t)
	h := newTestHelper(t, readySource("fake", "ya29.tok", nil))
	if _, _, err := h.Get("registry.example.com"); !credentials.IsErrCredentialsNotFound(err) {
		t.Errorf("Get of a host not in the policy = %v", err)
	}
	h.Policy.Extra = []string{"registry.example.com:5000"}
	if _, secret, err := h.Get("https://registry.example.com:5000/v2/"); err != nil || secret != "ya29.tok" {
		t.Errorf("Get of an extra host = %q, %v", secret, err)
	}
	// Another port is another server, maybe another user's listener.
	for _, in := range []string{"registry.example.com", "registry.example.com:6000", "http://registry.example.com:31337/v2/"} {
		if _, _, err := h.Get(in); !credentials.IsErrCredentialsNotFound(err) {
			t.Errorf("Get(%q) of another port of an extra host = %v, want not found", in, err)
		}
	}
}

func TestGetNoCredentials(t *testing.T) {
	isolate(t)
	h := newTestHelper(t, notFoundSource("a", nil), notFoundSource("b", nil))
	_, _, err := h.Get("gcr.io")
	if !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("Get with no source = %v, want credentials not found", err)
	}
	if err.Error() != "credentials not found in native keychain" {
		t.Errorf("not-found text = %q", err)
	}
}

func TestGetBrokenSource(t *testing.T) {
	isolate(t)
	var later atomic.Int32
	broken := fakeSource{name: "GOOGLE_APPLICATION_CREDENTIALS (/k.json)", err: errors.New("not a valid credential JSON:\nsyntax error at byte 3")}
	h := newTestHelper(t, notFoundSource("a", nil), broken, readySource("later", "ya29.tok", &later))
	_, _, err := h.Get("gcr.io")
	if err == nil || credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("Get with a broken source = %v, want its error", err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if !strings.Contains(msg, "GOOGLE_APPLICATION_CREDENTIALS (/k.json)") || !strings.Contains(msg, "syntax error at byte 3") {
		t.Errorf("error does not name the source and cause: %q", msg)
	}
	if later.Load() != 0 {
		t.Error("a broken source fell through to the next one")
	}
}

func TestGetMintFailure(t *testing.T) {
	isolate(t)
	failing := fakeSource{name: "fake key", cred: &token.Credential{
		Source:      "fake key",
		TokenSource: oauth2.ReuseTokenSource(nil, failingTokenSource{}),
	}}
	h := newTestHelper(t, failing)
	_, _, err := h.Get("gcr.io")
	if err == nil || !strings.Contains(err.Error(), "fake key") || strings.ContainsAny(err.Error(), "\n") {
		t.Errorf("Get with a failing mint = %v", err)
	}
}

type failingTokenSource struct{}

func (failingTokenSource) Token() (*oauth2.Token, error) {
	return nil, errors.New("401 Unauthorized\n{\"error\":\"invalid_grant\"}")
}

func TestGetUsesCache(t *testing.T) {
	d := isolate(t)
	var mints atomic.Int32
	src := fakeSource{name: "fake key", cred: &token.Credential{
		Source: "fake key", Kind: "service_account", Identity: "fake:sa@p", Cacheable: true,
		TokenSource: countingTokenSource{tok: "ya29.minted", mints: &mints},
	}}
	h := newTestHelper(t, src)
	h.Cache = token.NewFileCache(filepath.Join(d.cache, "docker-credential-gcp"))
	for range 3 {
		if _, secret, err := h.Get("gcr.io"); err != nil || secret != "ya29.minted" {
			t.Fatalf("Get = %q, %v", secret, err)
		}
	}
	if n := mints.Load(); n != 1 {
		t.Errorf("minted %d times with a cache, want 1", n)
	}
	if err := h.Delete("gcr.io"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Cache.Lookup("fake:sa@p"); ok {
		t.Error("erase left the default chain's cached token")
	}
	if _, _, err := h.Get("gcr.io"); err != nil {
		t.Fatal(err)
	}
	if n := mints.Load(); n != 2 {
		t.Errorf("after erase, minted %d times in all, want 2", n)
	}
}

// TestStoredCredentials stores each kind of credential docker login can
// send and checks that get serves it ahead of the default chain.
func TestStoredCredentials(t *testing.T) {
	isolate(t)
	g := fake.NewGoogle(t)
	const email = "sa@proj.iam.gserviceaccount.com"
	key := string(g.ServiceAccountKey(t, email))
	cases := []struct {
		username, secret, want string // want "" means a token g issued to email
	}{
		{UsernameJSONKey, key, ""},
		{UsernameJSONKeyBase64, base64.StdEncoding.EncodeToString([]byte(key)), ""},
		{UsernameJSONKeyBase64, base64.RawURLEncoding.EncodeToString([]byte(key)), ""},
		{UsernameAccessToken, "ya29.stored", "ya29.stored"},
	}
	for _, tc := range cases {
		t.Run(tc.username, func(t *testing.T) {
			var chain atomic.Int32
			h := newTestHelper(t, readySource("default", "ya29.default", &chain))
			before := time.Now().UTC()
			err := h.Add(&credentials.Credentials{ServerURL: "https://EU.GCR.IO/", Username: tc.username, Secret: tc.secret})
			if err != nil {
				t.Fatal(err)
			}
			e, ok, err := h.Store.Get("eu.gcr.io")
			if err != nil || !ok {
				t.Fatalf("stored entry: %v, %v", ok, err)
			}
			if e.Username != tc.username || e.Secret != tc.secret || e.StoredAt.Before(before) || time.Since(e.StoredAt) > time.Minute {
				t.Errorf("stored entry = {%q, secret ok %v, %v}", e.Username, e.Secret == tc.secret, e.StoredAt)
			}
			list, err := h.List()
			if err != nil || len(list) != 1 || list["eu.gcr.io"] != tc.username {
				t.Errorf("List = %v, %v", list, err)
			}
			user, secret, err := h.Get("eu.gcr.io")
			if err != nil || user != "oauth2accesstoken" {
				t.Fatalf("Get = %q, %v", user, err)
			}
			if issued, ok := g.Issued(secret); tc.want == "" && (!ok || issued.Principal != email) {
				t.Errorf("Get returned a token the fake did not issue to %s (%+v, %v)", email, issued, ok)
			} else if tc.want != "" && secret != tc.want {
				t.Errorf("Get secret = %q, want %q", secret, tc.want)
			}
			if chain.Load() != 0 {
				t.Error("the default chain was consulted despite a stored credential")
			}
			// Other hosts do not see it.
			if _, secret, _ := h.Get("us.gcr.io"); secret != "ya29.default" {
				t.Errorf("another host got %q", secret)
			}
			for range 2 {
				if err := h.Delete("eu.gcr.io"); err != nil {
					t.Fatal(err)
				}
			}
			if _, secret, _ := h.Get("eu.gcr.io"); secret != "ya29.default" {
				t.Errorf("after erase Get = %q, want the default chain's token", secret)
			}
		})
	}
	if n := g.Count("jwt"); n != 3 {
		t.Errorf("token endpoint called %d times, want 3", n)
	}
}

func TestStoredAccessTokenExpires(t *testing.T) {
	isolate(t)
	h := newTestHelper(t, readySource("default", "ya29.default", nil))
	old := Entry{Username: UsernameAccessToken, Secret: "ya29.old", StoredAt: time.Now().Add(-61 * time.Minute)}
	if err := h.Store.Put("gcr.io", old); err != nil {
		t.Fatal(err)
	}
	if _, secret, err := h.Get("gcr.io"); err != nil || secret != "ya29.default" {
		t.Errorf("Get with a stale stored token = %q, %v; want the next source's", secret, err)
	}
	_, skipped, err := h.Resolve(context.Background(), "gcr.io")
	if err != nil || len(skipped) != 1 || !strings.Contains(skipped[0].Source, "gcr.io") {
		t.Errorf("Resolve = %+v, %v; want the stale token skipped", skipped, err)
	}
	fresh := Entry{Username: UsernameAccessToken, Secret: "ya29.fresh", StoredAt: time.Now().Add(-59 * time.Minute)}
	if err := h.Store.Put("gcr.io", fresh); err != nil {
		t.Fatal(err)
	}
	if _, secret, err := h.Get("gcr.io"); err != nil || secret != "ya29.fresh" {
		t.Errorf("Get with a fresh stored token = %q, %v", secret, err)
	}
}

func TestDeleteDropsStoredCredentialsCache(t *testing.T) {
	d := isolate(t)
	g := fake.NewGoogle(t)
	key := string(g.ServiceAccountKey(t, "sa@proj.iam.gserviceaccount.com"))
	h := newTestHelper(t, notFoundSource("default", nil))
	h.Cache = token.NewFileCache(filepath.Join(d.cache, "docker-credential-gcp"))
	add := func() {
		t.Helper()
		if err := h.Add(&credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKey, Secret: key}); err != nil {
			t.Fatal(err)
		}
	}
	add()
	for range 2 {
		if _, _, err := h.Get("gcr.io"); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.Count("jwt"); n != 1 {
		t.Fatalf("minted %d times, want 1 (cached)", n)
	}
	if err := h.Delete("gcr.io"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Get("gcr.io"); !credentials.IsErrCredentialsNotFound(err) {
		t.Errorf("Get after erase = %v", err)
	}
	add()
	if _, _, err := h.Get("gcr.io"); err != nil {
		t.Fatal(err)
	}
	if n := g.Count("jwt"); n != 2 {
		t.Errorf("after erase and store, minted %d times in all, want 2 (cache dropped)", n)
	}
}

func TestDeleteIdempotent(t *testing.T) {
	isolate(t)
	h := newTestHelper(t, notFoundSource("default", nil))
	for _, in := range []string{"gcr.io", "https://gcr.io/", "evil.com", "eu.gcr.io"} {
		if err := h.Delete(in); err != nil {
			t.Errorf("Delete(%q) = %v", in, err)
		}
	}
	if _, err := os.Stat(h.Store.Path); !os.IsNotExist(err) {
		t.Errorf("erase of nothing created the store: %v", err)
	}
	if err := h.Delete(""); err == nil {
		t.Error("Delete of an empty server URL succeeded")
	}
	h.Store = nil
	if err := h.Delete("gcr.io"); err != nil {
		t.Errorf("Delete without a store = %v", err)
	}
}

// TestAddErrors checks that every refusal explains itself without the secret.
func TestAddErrors(t *testing.T) {
	isolate(t)
	const secret = "SUPERSECRETVALUE"
	keyish := `{"type":"service_account","private_key":"` + secret + `"`
	damaged := `{"type":"service_account","client_email":"ci@p.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY----- ` + secret + ` -----END PRIVATE KEY----- "}`
	cases := []struct {
		name string
		c    credentials.Credentials
		want string
	}{
		{"not Google", credentials.Credentials{ServerURL: "https://evil.com", Username: UsernameAccessToken, Secret: secret}, "DOCKER_CREDENTIAL_GCP_REGISTRIES"},
		{"evil form", credentials.Credentials{ServerURL: "gcr.io@evil.com", Username: UsernameJSONKey, Secret: secret}, "evil.com"},
		{"bad URL", credentials.Credentials{ServerURL: "https://user:" + secret + "@bad_host/", Username: UsernameAccessToken, Secret: secret}, "invalid registry host"},
		{"bad username", credentials.Credentials{ServerURL: "gcr.io", Username: "admin", Secret: secret}, "_json_key (password: key JSON), _json_key_base64 (password: base64 key JSON) or oauth2accesstoken"},
		{"bad JSON", credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKey, Secret: keyish}, "not a valid credential JSON"},
		{`no "type" field`, credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKey, Secret: `{"private_key":"` + secret + `"}`}, `no "type" field`},
		{"secret type", credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKey, Secret: `{"type":"` + secret + `"}`}, "type"},
		{"bad base64", credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKeyBase64, Secret: secret + "!!"}, "not valid base64"},
		{"base64 of junk", credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKeyBase64, Secret: base64.StdEncoding.EncodeToString([]byte(secret))}, "not a valid credential JSON"},
		{"empty token", credentials.Credentials{ServerURL: "gcr.io", Username: UsernameAccessToken, Secret: "  "}, "empty"},
		{"damaged private key", credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKey, Secret: damaged}, "the private key in the credential JSON is damaged"},
		{"damaged private key, base64", credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKeyBase64, Secret: base64.StdEncoding.EncodeToString([]byte(damaged))}, "download the key again"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHelper(t)
			err := h.Add(&tc.c)
			if err == nil {
				t.Fatal("Add succeeded")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), tc.c.Secret) {
				t.Errorf("error contains the secret: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if _, err := os.Stat(h.Store.Path); !os.IsNotExist(err) {
				t.Error("a refused credential was stored")
			}
		})
	}
}

func TestAddExtraRegistry(t *testing.T) {
	isolate(t)
	h := newTestHelper(t)
	h.Policy.Extra = []string{"registry.example.com:5000"}
	c := &credentials.Credentials{ServerURL: "https://registry.example.com:5000", Username: UsernameAccessToken, Secret: "ya29.x"}
	if err := h.Add(c); err != nil {
		t.Fatal(err)
	}
	if list, _ := h.List(); list["registry.example.com:5000"] != UsernameAccessToken {
		t.Errorf("List = %v", list)
	}
}

func TestAddWithoutStore(t *testing.T) {
	isolate(t)
	h := newTestHelper(t)
	h.Store = nil
	err := h.Add(&credentials.Credentials{ServerURL: "gcr.io", Username: UsernameAccessToken, Secret: "ya29.x"})
	if err == nil || !strings.Contains(err.Error(), "HOME") {
		t.Errorf("Add without a store = %v", err)
	}
	if list, err := h.List(); err != nil || len(list) != 0 {
		t.Errorf("List without a store = %v, %v", list, err)
	}
}

func TestCorruptStoreIsAnError(t *testing.T) {
	isolate(t)
	h := newTestHelper(t, readySource("default", "ya29.default", nil))
	if err := os.MkdirAll(filepath.Dir(h.Store.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Store.Path, []byte(`{"credentials":`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := h.Get("gcr.io")
	if err == nil || credentials.IsErrCredentialsNotFound(err) || !strings.Contains(err.Error(), h.Store.Path) {
		t.Errorf("Get with a corrupt store = %v, want an error naming %s", err, h.Store.Path)
	}
	if _, err := h.List(); err == nil || !strings.Contains(err.Error(), h.Store.Path) {
		t.Errorf("List with a corrupt store = %v", err)
	}
}

// TestHelperProtocol drives the helper through the wire protocol, as
// docker does, to check the shapes of its answers.
func TestHelperProtocol(t *testing.T) {
	isolate(t)
	h := newTestHelper(t, readySource("default", "ya29.default", nil))
	var out strings.Builder
	if err := credentials.HandleCommand(h, credentials.ActionGet, strings.NewReader("https://gcr.io\n"), &out); err != nil {
		t.Fatal(err)
	}
	var got credentials.Credentials
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatal(err)
	}
	if got.Username != "oauth2accesstoken" || got.Secret != "ya29.default" {
		t.Errorf("get answered %+v", got)
	}
	err := credentials.HandleCommand(h, credentials.ActionStore,
		strings.NewReader(`{"ServerURL":"https://us.gcr.io","Username":"oauth2accesstoken","Secret":"ya29.s"}`), &out)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := credentials.HandleCommand(h, credentials.ActionList, strings.NewReader(""), &out); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != `{"us.gcr.io":"oauth2accesstoken"}` {
		t.Errorf("list answered %s", out.String())
	}
	if err := credentials.HandleCommand(h, credentials.ActionErase, strings.NewReader("https://us.gcr.io\n"), &out); err != nil {
		t.Fatal(err)
	}
	err = credentials.HandleCommand(h, credentials.ActionGet, strings.NewReader("https://evil.com\n"), &out)
	if !credentials.IsErrCredentialsNotFound(err) {
		t.Errorf("get of a foreign host = %v", err)
	}
}

func TestResolveImpersonationError(t *testing.T) {
	isolate(t)
	t.Setenv("DOCKER_CREDENTIAL_GCP_IMPERSONATE", "target@proj.iam.gserviceaccount.com")
	t.Setenv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", "http://"+closedPort(t))
	h := newTestHelper(t, readySource("default", "ya29.default", nil))
	_, _, err := h.Get("gcr.io")
	if err == nil || credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("Get impersonating through a dead IAM endpoint = %v, want an error", err)
	}
	if strings.Contains(err.Error(), "ya29.default") || strings.ContainsAny(err.Error(), "\n") {
		t.Errorf("error leaks the token or spans lines: %v", err)
	}
}

func TestNew(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		d := isolate(t)
		h, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if h.Store == nil || h.Store.Path != filepath.Join(d.config, "docker-credential-gcp", "credentials.json") {
			t.Errorf("Store = %+v", h.Store)
		}
		if h.Cache == nil {
			t.Error("no cache")
		}
		if len(h.Scopes) != 1 || h.Scopes[0] != token.CloudPlatformScope {
			t.Errorf("Scopes = %v", h.Scopes)
		}
		if len(h.Policy.Extra) != 0 || h.KeyFile != "" {
			t.Errorf("Policy = %+v, KeyFile = %q", h.Policy, h.KeyFile)
		}
	})
	t.Run("settings and env", func(t *testing.T) {
		d := isolate(t)
		writeSettings(t, d, `{"key_file":"/keys/k.json","registries":["a.example"]}`)
		t.Setenv(EnvRegistries, "b.example, c.example:5000")
		h, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if h.KeyFile != "/keys/k.json" {
			t.Errorf("KeyFile = %q", h.KeyFile)
		}
		for _, host := range []string{"a.example", "b.example", "c.example:5000", "gcr.io"} {
			if _, ok := h.Policy.Allows(host); !ok {
				t.Errorf("policy refuses %s", host)
			}
		}
	})
	t.Run("no cache", func(t *testing.T) {
		for _, v := range []string{"1", "true", "TRUE"} {
			isolate(t)
			t.Setenv(EnvNoCache, v)
			if h, err := New(); err != nil || h.Cache != nil {
				t.Errorf("%s=%s: cache %v, %v", EnvNoCache, v, h.Cache, err)
			}
		}
	})
	t.Run("no home", func(t *testing.T) {
		isolate(t)
		for _, v := range []string{"HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"} {
			t.Setenv(v, "")
			os.Unsetenv(v)
		}
		h, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if h.Store != nil || h.Cache == nil {
			t.Errorf("without HOME: store %v, cache %v; want no store and a memory-only cache", h.Store, h.Cache)
		}
		h.sources = func(token.Options) []token.Source { return []token.Source{readySource("default", "ya29.x", nil)} }
		if _, secret, err := h.Get("gcr.io"); err != nil || secret != "ya29.x" {
			t.Errorf("Get without HOME = %q, %v", secret, err)
		}
	})
	t.Run("corrupt settings", func(t *testing.T) {
		d := isolate(t)
		writeSettings(t, d, `{"registries":`)
		if _, err := New(); err == nil {
			t.Error("New with a corrupt settings file succeeded")
		}
	})
}

func writeSettings(t *testing.T, d testDirs, content string) {
	t.Helper()
	dir := filepath.Join(d.config, "docker-credential-gcp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultSourcesWiring runs the real default chain in an empty
// environment: no source exists, so get answers not found, quickly.
func TestDefaultSourcesWiring(t *testing.T) {
	isolate(t)
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = h.Get("gcr.io")
	if !credentials.IsErrCredentialsNotFound(err) {
		t.Errorf("Get with nothing configured = %v, want not found", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Get took %v off Google Cloud", d)
	}
	t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.env")
	if _, secret, err := h.Get("gcr.io"); err != nil || secret != "ya29.env" {
		t.Errorf("Get with GOOGLE_OAUTH_ACCESS_TOKEN = %q, %v", secret, err)
	}
}

// hangingSource blocks Find until its context ends, as a token endpoint
// that never answers does.
type hangingSource struct{}

func (hangingSource) Name() string { return "hanging" }
func (hangingSource) Find(ctx context.Context) (*token.Credential, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("hanging source gave up: %w", ctx.Err())
}

// Get's deadline counts from the process's start (New), not from the call,
// so the whole get process ends within 30 s: getBudget leaves time to
// report and exit.
func TestGetDeadlineCountsFromProcessStart(t *testing.T) {
	isolate(t)
	if getBudget > 25*time.Second {
		t.Fatalf("getBudget %v leaves under 5 s to start, report and exit within 30 s on a loaded machine", getBudget)
	}
	h := newTestHelper(t, hangingSource{})
	h.started = time.Now().Add(-getBudget + 300*time.Millisecond)
	start := time.Now()
	_, _, err := h.Get("gcr.io")
	if err == nil || !strings.Contains(err.Error(), "hanging") {
		t.Errorf("Get = %v, want the hanging source's error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Get gave up after %v; its deadline was 300ms after the call (getBudget after the start)", d)
	}

	if h, err := New(); err != nil || time.Since(h.started) > time.Second {
		t.Errorf("New did not record when it ran: %v %v", h.started, err)
	}
}
