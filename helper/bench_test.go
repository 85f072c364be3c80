package helper

import (
	"path/filepath"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// BenchmarkWarmGet is docker's hot path in-process: a get for gcr.io with
// a key in GOOGLE_APPLICATION_CREDENTIALS and a fresh token in the on-disk
// cache.
// (e2e's BenchmarkProcessTimings measures it as a whole process.)
func BenchmarkWarmGet(b *testing.B) {
	isolate(b)
	g := fake.NewGoogle(b)
	b.Setenv("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(b, b.TempDir(), "bench@proj.iam.gserviceaccount.com"))
	h, err := New()
	if err != nil {
		b.Fatal(err)
	}
	if h.Cache == nil {
		b.Fatal("no token cache")
	}
	if _, _, err := h.Get("gcr.io"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		// A new Helper each time, as each docker call is a new process.
		h, err := New()
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := h.Get("gcr.io"); err != nil {
			b.Fatal(err)
		}
	}
	if n := g.Count("jwt"); n != 1 {
		b.Fatalf("%d mints, want 1: the benchmark did not measure the warm path", n)
	}
}

// BenchmarkRefusedHost is a get for a host outside the policy, which must
// cost next to nothing.
func BenchmarkRefusedHost(b *testing.B) {
	isolate(b)
	h := &Helper{Store: &Store{Path: filepath.Join(b.TempDir(), "credentials.json")}}
	for b.Loop() {
		if _, _, err := h.Get("https://gcr.io.evil.com/v2/"); err == nil {
			b.Fatal("evil host got a token")
		}
	}
}
