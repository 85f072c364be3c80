package helper

import (
	"context"
	"testing"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// A token.Report on Token's context learns what a trace needs, with no
// help from the caller: a cold call mints with one request to the token
// endpoint, a warm one is a cache hit with none.
func TestTokenFillsTheReport(t *testing.T) {
	isolate(t)
	g := fake.NewGoogle(t)
	h := newTestHelper(t)
	h.Cache = token.NewFileCache(t.TempDir())
	key := string(g.ServiceAccountKey(t, "sa@proj.iam.gserviceaccount.com"))
	if err := h.Add(&credentials.Credentials{ServerURL: "gcr.io", Username: UsernameJSONKey, Secret: key}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		cache    token.CacheResult
		requests int
	}{{token.CacheMinted, 1}, {token.CacheHit, 0}} {
		var r token.Report
		if _, _, err := h.Token(token.WithReport(context.Background(), &r), "gcr.io"); err != nil {
			t.Fatal(err)
		}
		if r.Cache() != want.cache || r.Requests() != want.requests {
			t.Errorf("report: cache %q, %d requests; want %q, %d", r.Cache(), r.Requests(), want.cache, want.requests)
		}
	}
}
