package token

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

func TestMetadataFound(t *testing.T) {
	isolateEnv(t)
	m := fake.NewMetadata(t, "vm@proj.iam.gserviceaccount.com")
	t.Setenv("GCE_METADATA_HOST", m.Host())
	s := metadataSource{scopes: []string{CloudPlatformScope}}
	cred := mustFind(t, s)
	if cred.Kind != "metadata" || cred.Principal != "vm@proj.iam.gserviceaccount.com" || !cred.Cacheable ||
		cred.Identity != "metadata:"+m.Host()+":default:"+CloudPlatformScope {
		t.Errorf("credential %+v", cred)
	}
	if m.TokenCount() != 0 {
		t.Error("Find fetched a token")
	}
	tok := mintToken(t, cred)
	if !m.Issued(tok.AccessToken) || m.TokenCount() != 1 {
		t.Errorf("token %q not issued by the fake (token requests %d)", tok.AccessToken, m.TokenCount())
	}
	if left := time.Until(tok.Expiry); left < 59*time.Minute || left > time.Hour {
		t.Errorf("expiry in %v, want about an hour", left)
	}
}

// While the cache holds a reusable token of the metadata server's default
// account, finding the source asks the server nothing, and the e-mail
// comes from the cache entry; once the token is due for renewal, Find
// probes again, and off Google Cloud it is not found fast.
func TestMetadataWarmFindSendsNoRequest(t *testing.T) {
	isolateEnv(t)
	m := fake.NewMetadata(t, "vm@proj.iam.gserviceaccount.com")
	t.Setenv("GCE_METADATA_HOST", m.Host())
	clock := newFakeClock()
	cache := clockedCache(t, clock)
	s := metadataSource{scopes: []string{CloudPlatformScope}, cache: cache}

	cred := mustFind(t, s)
	first := mustToken(t, cache.TokenSource(cred))
	cold := m.Count()
	if cold != 2 {
		t.Fatalf("a cold find and mint made %d requests, want 2 (e-mail, token)", cold)
	}
	for range 3 {
		fresh := NewFileCache(cache.dir) // as the next process sees it
		fresh.now = clock.Now
		warm := mustFind(t, metadataSource{scopes: []string{CloudPlatformScope}, cache: fresh})
		if warm.Principal != "vm@proj.iam.gserviceaccount.com" || warm.Identity != cred.Identity {
			t.Errorf("warm credential %+v, want the cached e-mail and the same identity", warm)
		}
		if tok := mustToken(t, fresh.TokenSource(warm)); tok.AccessToken != first.AccessToken {
			t.Error("a warm get did not reuse the cached token")
		}
	}
	if n := m.Count() - cold; n != 0 {
		t.Errorf("warm finds and gets made %d requests to the metadata server, want 0", n)
	}

	clock.Advance(16 * time.Minute)
	cred = mustFind(t, s)
	mustToken(t, cache.TokenSource(cred))
	if n := m.Count() - cold; n != 2 {
		t.Errorf("after the token was due for renewal, %d requests, want 2 (probe, token)", n)
	}

	// The entry is fresh, but it belongs to another host.
	t.Setenv("GCE_METADATA_HOST", fake.RefusedHost(t))
	refused := metadataSource{scopes: []string{CloudPlatformScope}, cache: cache}
	if _, err := refused.Find(testContext(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("another metadata host found %v; its cache key must differ", err)
	}
}

func TestMetadataNoServiceAccount(t *testing.T) {
	isolateEnv(t)
	m := fake.NewMetadata(t, "")
	t.Setenv("GCE_METADATA_HOST", m.Host())
	wantNotFound(t, metadataSource{}, "has no service account")
}

func TestMetadataAbsentIsFast(t *testing.T) {
	notGoogle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not here", http.StatusNotFound)
	}))
	defer notGoogle.Close()
	tests := []struct {
		name   string
		host   func(testing.TB) string
		within time.Duration
		reason string
	}{
		{"refused", fake.RefusedHost, 100 * time.Millisecond, "refused"},
		{"blackhole", fake.BlackholeHost, 1500 * time.Millisecond, "no answer within"},
		{"not a metadata server", func(testing.TB) string { return strings.TrimPrefix(notGoogle.URL, "http://") },
			100 * time.Millisecond, "Metadata-Flavor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			host := tt.host(t)
			t.Setenv("GCE_METADATA_HOST", host)
			start := time.Now()
			_, err := metadataSource{}.Find(testContext(t))
			d := time.Since(start)
			t.Logf("%s: not found after %v: %v", tt.name, d, err)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want not found", err)
			}
			if !strings.Contains(err.Error(), "no metadata server at "+host) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("reason %q", err)
			}
			if d > tt.within {
				t.Errorf("took %v, want ≤ %v", d, tt.within)
			}
		})
	}
}

func TestMetadataServerError(t *testing.T) {
	isolateEnv(t)
	m := fake.NewMetadata(t, "vm@proj.iam.gserviceaccount.com")
	t.Setenv("GCE_METADATA_HOST", m.Host())
	m.FailWith(http.StatusInternalServerError)
	start := time.Now()
	err := wantBroken(t, metadataSource{}, "HTTP 500")
	d := time.Since(start)
	t.Logf("500: error after %v (%d requests): %v", d, m.Count(), err)
	if d > 1500*time.Millisecond {
		t.Errorf("took %v", d)
	}
	if m.Count() < 2 {
		t.Errorf("%d requests: a 5xx should be retried", m.Count())
	}

	// Found, then the token request fails.
	m.FailWith(0)
	cred := mustFind(t, metadataSource{scopes: []string{CloudPlatformScope}})
	m.FailWith(http.StatusForbidden)
	_, err = cred.TokenSource.Token()
	if err == nil || !strings.Contains(err.Error(), "metadata server ("+m.Host()+")") || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("token error %v", err)
	}
}

// What a metadata server (or a proxy in its place) answers is quoted in
// errors with anything shaped like a token redacted, also when the quote
// is cut short right inside one.
func TestMetadataErrorsRedactTokens(t *testing.T) {
	const secret = "ya29.a0AfH6SMBmetadataSECRETmetadataSECRET"
	for name, body := range map[string]string{
		"whole":      "token " + secret + " has expired",
		"at the cut": strings.Repeat("e ", 145) + secret,
	} {
		t.Run(name, func(t *testing.T) {
			isolateEnv(t)
			failing := "token"
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Metadata-Flavor", "Google")
				if !strings.HasSuffix(r.URL.Path, "/"+failing) {
					_, _ = w.Write([]byte("vm@proj.iam.gserviceaccount.com"))
					return
				}
				http.Error(w, body, http.StatusForbidden)
			}))
			defer srv.Close()
			t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(srv.URL, "http://"))

			_, err := mustFind(t, metadataSource{scopes: []string{CloudPlatformScope}}).TokenSource.Token()
			if err == nil || !strings.Contains(err.Error(), "HTTP 403") || strings.Contains(err.Error(), "ya29.") {
				t.Errorf("token request refused: %v; want HTTP 403 without the token", err)
			}
			failing = "email"
			err = wantBroken(t, metadataSource{}, "HTTP 403")
			if strings.Contains(err.Error(), "ya29.") {
				t.Errorf("probe refused: %v; want it without the token", err)
			}
		})
	}
}
