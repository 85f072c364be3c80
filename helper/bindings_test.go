package helper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/config"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
	"github.com/docker/docker-credential-helpers/credentials"
)

func TestParseBindings(t *testing.T) {
	const sa = "sa@p.iam.gserviceaccount.com"
	good := map[string][]config.Binding{
		"":     nil,
		" ; ;": nil,
		"europe-docker.pkg.dev=/secrets/release.json": {{Host: "europe-docker.pkg.dev", CredentialFile: "/secrets/release.json"}},
		"EU.GCR.IO.=impersonate:" + sa:                {{Host: "eu.gcr.io", Impersonate: sa}},
		" a-docker.pkg.dev = /k/a.json , impersonate: " + sa + " ;us-docker.pkg.dev=impersonate:" + sa + ";": {
			{Host: "a-docker.pkg.dev", CredentialFile: "/k/a.json", Impersonate: sa},
			{Host: "us-docker.pkg.dev", Impersonate: sa},
		},
		"gcr.io=/k/../k/x.json":                  {{Host: "gcr.io", CredentialFile: "/k/x.json"}},
		"gcr.io=/k/a,b.json , impersonate:" + sa: {{Host: "gcr.io", CredentialFile: "/k/a,b.json", Impersonate: sa}},
		"gcr.io=/k/a,b.json":                     {{Host: "gcr.io", CredentialFile: "/k/a,b.json"}},
	}
	for in, want := range good {
		got, err := ParseBindings(in)
		if err != nil {
			t.Errorf("ParseBindings(%q): %v", in, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("ParseBindings(%q) = %+v, want %+v", in, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("ParseBindings(%q)[%d] = %+v, want %+v", in, i, got[i], want[i])
			}
		}
	}
	const pasted = `{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----SECRET"}`
	bad := map[string]string{
		"europe-docker.pkg.dev":                                     `entry 1 has no "="`,
		"gcr.io=/a.json;gcr.io=/b.json":                             "entry 2 binds gcr.io a second time",
		"GCR.IO=/a.json;gcr.io.=/b.json":                            "entry 2 binds gcr.io a second time",
		"*-docker.pkg.dev=/a.json":                                  "wildcards are not supported",
		"https://gcr.io=/a.json":                                    "bare registry host",
		"gcr.io:443=/a.json":                                        "bare registry host",
		"localhost:5000=/a.json;LOCALHOST.:05000=/b.json":           "entry 2 binds localhost:5000 a second time",
		"user:pw@gcr.io=/a.json":                                    "bare registry host",
		"gcr.io/project=/a.json":                                    "bare registry host",
		"=/a.json":                                                  "entry 1",
		"gcr.io=relative/key.json":                                  "must be an absolute path",
		"gcr.io=":                                                   "the binding is empty",
		"gcr.io=impersonate:a@p.iam,impersonate:b@p.iam":            "two impersonation targets",
		"gcr.io=/a.json,impersonate:b@p.iam,impersonate:c@p.iam":    "two impersonation targets",
		"gcr.io=/a.json, impersonate:b@p.iam , impersonate:c@p.iam": "two impersonation targets",
		"gcr.io=/k/a,b.json,impersonate:x":                          "not a service-account e-mail",
		"gcr.io=impersonate:not-an-email":                           "not a service-account e-mail",
		"gcr.io=impersonate:":                                       "not a service-account e-mail",
		"gcr.io=" + pasted:                                          "must be an absolute path",
		"gcr.io=/a.json;us-docker.pkg.dev=impersonate:x y":          "entry 2 (us-docker.pkg.dev)",
	}
	for in, want := range bad {
		_, err := ParseBindings(in)
		if err == nil {
			t.Errorf("ParseBindings(%q) succeeded, want an error", in)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, want) || !strings.HasPrefix(msg, EnvBindings+": ") || strings.Contains(msg, "SECRET") || strings.Contains(msg, "\n") {
			t.Errorf("ParseBindings(%q) = %q, want one line starting with %s and containing %q, no spec quoted", in, msg, EnvBindings, want)
		}
	}
}

// bindingWorld is a fake Google with three service accounts: dev@ the
// default source (GOOGLE_APPLICATION_CREDENTIALS), release@ bound by key
// file, and pusher@ an impersonation target.
type bindingWorld struct {
	g                      *fake.Google
	dev, release, pusher   string
	devKey, releaseKeyPath string
}

func newBindingWorld(t *testing.T) bindingWorld {
	t.Helper()
	w := bindingWorld{
		g:       fake.NewGoogle(t),
		dev:     "dev@proj.iam.gserviceaccount.com",
		release: "release@proj.iam.gserviceaccount.com",
		pusher:  "pusher@proj.iam.gserviceaccount.com",
	}
	dir := t.TempDir()
	w.devKey = w.g.WriteServiceAccountKey(t, dir, w.dev)
	w.releaseKeyPath = w.g.WriteServiceAccountKey(t, dir, w.release)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", w.devKey)
	t.Setenv("DOCKER_CREDENTIAL_GCP_IAM_ENDPOINT", w.g.IAMURL())
	return w
}

// issued checks that tok came from the fake for principal, via how,
// authorised (for iam) by source.
func (w bindingWorld) issued(t *testing.T, host, tok, principal, via, source string) {
	t.Helper()
	is, ok := w.g.Issued(tok)
	if !ok || is.Principal != principal || is.Via != via || is.Source != source {
		t.Errorf("token for %s: issued %+v (known %v); want %s via %s from %q", host, is, ok, principal, via, source)
	}
}

// gets has h answer a get for host and checks that the token came from
// the fake for principal, via how, authorised by source.
func (w bindingWorld) gets(t *testing.T, h *Helper, host, principal, via, source string) {
	t.Helper()
	_, secret, err := h.Get(host)
	if err != nil {
		t.Fatalf("Get(%s): %v", host, err)
	}
	w.issued(t, host, secret, principal, via, source)
}

func TestBindingsGiveEachHostItsIdentity(t *testing.T) {
	isolate(t)
	w := newBindingWorld(t)
	t.Setenv(EnvBindings, "europe-docker.pkg.dev="+w.releaseKeyPath+";us-docker.pkg.dev=impersonate:"+w.pusher)
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	get := func(host string) string {
		t.Helper()
		_, secret, err := h.Get(host)
		if err != nil {
			t.Fatalf("Get(%s): %v", host, err)
		}
		return secret
	}
	eu, us, gcr := get("https://europe-docker.pkg.dev/v2/"), get("us-docker.pkg.dev/p/r/i"), get("gcr.io")
	w.issued(t, "europe-docker.pkg.dev", eu, w.release, "jwt", "")
	w.issued(t, "us-docker.pkg.dev", us, w.pusher, "iam", w.dev)
	w.issued(t, "gcr.io", gcr, w.dev, "jwt", "")
	// A region the bindings do not name gets the default, and shares the
	// default's cached token: same identity, no new mint.
	if other := get("asia-docker.pkg.dev"); other != gcr {
		t.Errorf("an unbound host got %q, want the default token", other)
	}
	// release@, dev@ once (the impersonation's base token goes through
	// the cache, so gcr.io reuses it), and one IAM call.
	if jwt, iam := w.g.Count("jwt"), w.g.Count("iam"); jwt != 2 || iam != 1 {
		t.Errorf("grants: %d jwt, %d iam; want 2 and 1", jwt, iam)
	}
	before := w.g.Count("any")
	// Second round: every host is served from the cache, each its own token.
	if get("europe-docker.pkg.dev") != eu || get("us-docker.pkg.dev") != us || get("gcr.io") != gcr {
		t.Error("a warm get returned another identity's token")
	}
	if n := w.g.Count("any"); n != before {
		t.Errorf("warm gets sent %d requests", n-before)
	}
	if eu == us || us == gcr || eu == gcr {
		t.Error("two identities share a token")
	}
}

func TestBindingCacheIdentities(t *testing.T) {
	isolate(t)
	w := newBindingWorld(t)
	t.Setenv(EnvBindings, "europe-docker.pkg.dev="+w.releaseKeyPath+";us-docker.pkg.dev=impersonate:"+w.pusher+";asia-docker.pkg.dev="+w.releaseKeyPath+",impersonate:"+w.pusher)
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, host := range []string{"gcr.io", "europe-docker.pkg.dev", "us-docker.pkg.dev", "asia-docker.pkg.dev"} {
		cred, _, err := h.Resolve(t.Context(), host)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", host, err)
		}
		if prev, dup := ids[cred.Identity]; dup {
			t.Errorf("%s and %s share cache identity %s", prev, host, cred.Identity)
		}
		ids[cred.Identity] = host
	}
	// The same binding on two hosts is one identity: one token serves both.
	t.Setenv(EnvBindings, "europe-docker.pkg.dev="+w.releaseKeyPath+";europe-west1-docker.pkg.dev="+w.releaseKeyPath)
	h2, err := New()
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := h2.Resolve(t.Context(), "europe-docker.pkg.dev")
	b, _, _ := h2.Resolve(t.Context(), "europe-west1-docker.pkg.dev")
	if a == nil || b == nil || a.Identity != b.Identity {
		t.Errorf("one credential file bound to two hosts: identities %v, %v", a, b)
	}
}

func TestBindingOrder(t *testing.T) {
	d := isolate(t)
	w := newBindingWorld(t)
	other := "other@proj.iam.gserviceaccount.com"
	otherKey := w.g.WriteServiceAccountKey(t, t.TempDir(), other)

	t.Run("stored credential wins", func(t *testing.T) {
		writeSettings(t, d, `{"bindings":[{"host":"gcr.io","credential_file":"`+w.releaseKeyPath+`","impersonate":"`+w.pusher+`"}]}`)
		t.Cleanup(func() { writeSettings(t, d, `{}`) })
		h, err := New()
		if err != nil {
			t.Fatal(err)
		}
		key, _ := os.ReadFile(otherKey)
		if err := h.Add(&credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKey, Secret: string(key)}); err != nil {
			t.Fatal(err)
		}
		w.gets(t, h, "gcr.io", other, "jwt", "")
		// erase drops the stored credential; the binding stays and serves.
		if err := h.Delete("gcr.io"); err != nil {
			t.Fatal(err)
		}
		w.gets(t, h, "gcr.io", w.pusher, "iam", w.release)
	})
	t.Run("binding before GOOGLE_OAUTH_ACCESS_TOKEN and replaces DOCKER_CREDENTIAL_GCP_IMPERSONATE", func(t *testing.T) {
		t.Setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.from-env")
		t.Setenv("DOCKER_CREDENTIAL_GCP_IMPERSONATE", "global@proj.iam.gserviceaccount.com")
		t.Setenv(EnvBindings, "europe-docker.pkg.dev="+w.releaseKeyPath)
		h, err := New()
		if err != nil {
			t.Fatal(err)
		}
		w.gets(t, h, "europe-docker.pkg.dev", w.release, "jwt", "")
		if _, _, err := h.Get("gcr.io"); err == nil {
			// gcr.io is unbound: the env token impersonating global@, which
			// the fake does not know as a bearer, so IAM refuses it.
			t.Error("unbound gcr.io did not go through DOCKER_CREDENTIAL_GCP_IMPERSONATE")
		}
	})
	t.Run("env replaces the recorded binding", func(t *testing.T) {
		writeSettings(t, d, `{"bindings":[{"host":"gcr.io","credential_file":"`+otherKey+`"},{"host":"eu.gcr.io","credential_file":"`+otherKey+`"}]}`)
		t.Cleanup(func() { writeSettings(t, d, `{}`) })
		t.Setenv(EnvBindings, "gcr.io="+w.releaseKeyPath)
		h, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if b := h.Bindings["gcr.io"]; b.CredentialFile != w.releaseKeyPath || !strings.HasPrefix(b.Origin, EnvBindings) {
			t.Errorf("gcr.io binding = %+v", b)
		}
		if b := h.Bindings["eu.gcr.io"]; b.CredentialFile != otherKey || !strings.Contains(b.Origin, "settings file") {
			t.Errorf("eu.gcr.io binding = %+v", b)
		}
		w.gets(t, h, "gcr.io", w.release, "jwt", "")
	})
	t.Run("missing bound file is an error, not a fall-through", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "gone.json")
		t.Setenv(EnvBindings, "gcr.io="+missing)
		h, err := New()
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = h.Get("gcr.io")
		if err == nil || credentials.IsErrCredentialsNotFound(err) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "bound to gcr.io") {
			t.Errorf("Get with a missing bound file = %v", err)
		}
	})
	t.Run("binding a host the policy refuses", func(t *testing.T) {
		t.Setenv(EnvBindings, "registry.example.com="+w.releaseKeyPath)
		if _, err := New(); err == nil || !strings.Contains(err.Error(), EnvRegistries) {
			t.Errorf("New = %v, want an error naming %s", err, EnvRegistries)
		}
		t.Setenv(EnvRegistries, "registry.example.com")
		if _, err := New(); err != nil {
			t.Errorf("New with the host allowed: %v", err)
		}
	})
	t.Run("impersonation binding without any default source", func(t *testing.T) {
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
		t.Setenv(EnvBindings, "gcr.io=impersonate:"+w.pusher)
		h, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.Get("gcr.io"); !credentials.IsErrCredentialsNotFound(err) {
			t.Errorf("Get = %v, want not found", err)
		}
	})
}

func TestBindingEraseDropsItsCache(t *testing.T) {
	isolate(t)
	w := newBindingWorld(t)
	t.Setenv(EnvBindings, "europe-docker.pkg.dev="+w.releaseKeyPath)
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	_, first, err := h.Get("europe-docker.pkg.dev")
	if err != nil {
		t.Fatal(err)
	}
	_, gcr, _ := h.Get("gcr.io")
	if err := h.Delete("europe-docker.pkg.dev"); err != nil {
		t.Fatal(err)
	}
	h2, _ := New()
	_, second, err := h2.Get("europe-docker.pkg.dev")
	if err != nil || second == first {
		t.Errorf("after erase: %v, same token %v; want a fresh mint", err, second == first)
	}
	w.issued(t, "europe-docker.pkg.dev", second, w.release, "jwt", "")
	if _, again, _ := h2.Get("gcr.io"); again != gcr {
		t.Error("erasing a bound host dropped another identity's cached token")
	}
}

// A binding hand-edited into the settings file is normalized like one
// configure-docker records, and one that names no bare host is an error
// naming the settings file, never a binding that silently misses.
func TestRecordedBindingHostsNormalized(t *testing.T) {
	d := isolate(t)
	w := newBindingWorld(t)
	writeSettings(t, d, `{"bindings":[{"host":"Europe-Docker.PKG.dev.","credential_file":"`+w.releaseKeyPath+`"}]}`)
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	w.gets(t, h, "europe-docker.pkg.dev", w.release, "jwt", "")

	writeSettings(t, d, `{"bindings":[{"host":"https://gcr.io/p","credential_file":"`+w.releaseKeyPath+`"}]}`)
	if _, err := New(); err == nil || !strings.Contains(err.Error(), "settings file") || !strings.Contains(err.Error(), "bare registry host") {
		t.Errorf("New with a recorded binding for a URL: %v, want an error naming the settings file", err)
	}

	// Two entries for one host, once normalized: which one applies would
	// depend on their order, so neither does.
	writeSettings(t, d, `{"bindings":[{"host":"GCR.IO","credential_file":"`+w.releaseKeyPath+`"},{"host":"gcr.io.","impersonate":"pusher@p.iam.gserviceaccount.com"}]}`)
	if _, err := New(); err == nil || !strings.Contains(err.Error(), "settings file") || !strings.Contains(err.Error(), "two recorded bindings name gcr.io") {
		t.Errorf("New with two recorded bindings for gcr.io: %v, want an error naming the settings file and the host", err)
	}
}
