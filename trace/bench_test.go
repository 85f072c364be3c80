package trace

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// benchCall is one traced get as the edge makes it.
func benchCall() {
	c := Start("get")
	_ = c.Context(context.Background())
	c.Host("gcr.io")
	c.Credential(&token.Credential{Source: "GOOGLE_APPLICATION_CREDENTIALS (/k.json)", Principal: "sa@p.iam.gserviceaccount.com"}, "")
	c.Token(&oauth2.Token{AccessToken: "ya29.bench", Expiry: time.Now().Add(time.Hour)})
	c.End(nil, io.Discard)
}

// BenchmarkUntracedCall is what every call pays with no trace asked for.
func BenchmarkUntracedCall(b *testing.B) {
	b.Setenv(EnvLog, "")
	for b.Loop() {
		benchCall()
	}
}

// BenchmarkTracedCall is a call whose line is appended to a file.
func BenchmarkTracedCall(b *testing.B) {
	b.Setenv(EnvLog, filepath.Join(b.TempDir(), "trace.jsonl"))
	for b.Loop() {
		benchCall()
	}
}
