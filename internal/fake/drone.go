package fake

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/99designs/httpsignatures-go"
	"github.com/drone/drone-go/plugin/registry"
)

// DroneSignedHeaders are the headers drone-go's client signs.
var DroneSignedHeaders = []string{"accept", "accept-encoding", "content-type", "date", "digest"}

// DroneRequest is a registry-extension request signed with secret the way
// drone-go's client signs it (Date and a Digest of digestBody among the
// signed headers), carrying body, which a test may make differ from
// digestBody to swap a captured request's body.
func DroneRequest(t testing.TB, endpoint, secret, digestBody, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(digestBody))
	req.Header.Set("Accept", registry.V1)
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Digest", "SHA-256="+base64.StdEncoding.EncodeToString(sum[:]))
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	SignDroneRequest(t, req, secret, DroneSignedHeaders...)
	return req
}

// SignDroneRequest (re)signs req with secret over headers, with the
// signing library drone-go's client uses, into its Signature header.
func SignDroneRequest(t testing.TB, req *http.Request, secret string, headers ...string) {
	t.Helper()
	req.Header.Del("Signature")
	signer := httpsignatures.NewSigner(httpsignatures.AlgorithmHmacSha256, headers...)
	if err := signer.SignRequest("hmac-key", secret, req); err != nil {
		t.Fatal(err)
	}
}
