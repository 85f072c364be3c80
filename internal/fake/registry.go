package fake

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1random "github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is a loopback container registry that authenticates like gcr.io:
// every /v2/ request needs a bearer token, and bearer tokens come from
// /v2/token in exchange for HTTP Basic credentials (oauth2accesstoken:<token>).
// It lets end-to-end tests run real clients (crane, skopeo, docker) against
// credentials minted by the helper.
type Registry struct {
	// URL is the registry's base URL, http://127.0.0.1:PORT (https:// with WithTLS).
	URL string
	// Service is the service name the bearer challenge announces ("gcr.io" by default).
	Service string
	// CAFile is the PEM file of the CA that signed the server certificate;
	// empty unless WithTLS. Its directory holds only ca.crt, so it also works
	// as a skopeo --cert-dir.
	CAFile string
	// ProxyURL is an HTTP CONNECT proxy (http://127.0.0.1:PORT) that tunnels
	// connections for the WithTLS host names to this registry, so clients
	// can use HTTPS_PROXY to reach e.g. "gcr.io" here; empty unless WithTLS.
	ProxyURL string

	verify   func(user, password string) bool
	inner    http.Handler
	tlsNames []string

	mu            sync.Mutex
	bearers       map[string]bool
	count401      int
	tokenRequests int
	authorized    int
	lastUsername  string
	lastScope     string
}

// RegistryOption configures NewRegistry.
type RegistryOption func(*Registry)

// WithService sets the service name the bearer challenge announces.
func WithService(service string) RegistryOption {
	return func(r *Registry) { r.Service = service }
}

// WithTLS serves the registry over HTTPS with a certificate for 127.0.0.1,
// localhost and hostnames (wildcards such as "*.pkg.dev" allowed), and starts
// the CONNECT proxy at ProxyURL so clients can reach those names here.
func WithTLS(hostnames ...string) RegistryOption {
	return func(r *Registry) { r.tlsNames = append([]string{"localhost"}, hostnames...) }
}

// NewRegistry starts a registry on 127.0.0.1 that is closed when t ends.
// verify decides which Basic credentials the token endpoint accepts.
func NewRegistry(t testing.TB, verify func(user, password string) bool, opts ...RegistryOption) *Registry {
	t.Helper()
	r := &Registry{
		Service: "gcr.io",
		verify:  verify,
		inner:   registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		bearers: map[string]bool{},
	}
	for _, o := range opts {
		o(r)
	}
	srv := httptest.NewUnstartedServer(r)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if r.tlsNames == nil {
		srv.Start()
	} else {
		cert, caPEM := newRegistryCertificate(t, r.tlsNames)
		dir := t.TempDir()
		r.CAFile = filepath.Join(dir, "ca.crt")
		if err := os.WriteFile(r.CAFile, caPEM, 0o644); err != nil {
			t.Fatalf("writing CA file: %v", err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		r.ProxyURL = startConnectProxy(t, srv.Listener.Addr().String(), r.tlsNames)
	}
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Host returns the registry's address as an image reference uses it: 127.0.0.1:PORT.
func (r *Registry) Host() string {
	return strings.TrimPrefix(strings.TrimPrefix(r.URL, "http://"), "https://")
}

// Count401 returns how many /v2/ requests were refused for lack of a valid bearer token.
func (r *Registry) Count401() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count401
}

// TokenRequests returns how many times /v2/token was called, successfully or not.
func (r *Registry) TokenRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tokenRequests
}

// AuthorizedRequests returns how many /v2/ requests carried a valid bearer token.
func (r *Registry) AuthorizedRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.authorized
}

// LastUsername returns the Basic username of the latest token request ("" if none).
func (r *Registry) LastUsername() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastUsername
}

// LastScope returns the scope parameter of the latest token request ("" if none).
func (r *Registry) LastScope() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastScope
}

// Seed pushes a small random image to repo:latest, bypassing authentication
// and the counters, and returns its digest ("sha256:...").
func (r *Registry) Seed(t testing.TB, repo string) string {
	t.Helper()
	img, err := v1random.Image(1024, 1)
	if err != nil {
		t.Fatalf("random image: %v", err)
	}
	ref, err := name.NewTag(r.Host()+"/"+repo+":latest", name.Insecure)
	if err != nil {
		t.Fatalf("parsing %s: %v", repo, err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(registryHandlerTransport{r.inner})); err != nil {
		t.Fatalf("seeding %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("digest: %v", err)
	}
	return d.String()
}

// ServeHTTP implements the gcr.io-style authentication in front of the registry.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch {
	case req.URL.Path == "/v2/token":
		r.serveToken(w, req)
	case req.URL.Path == "/v2" || strings.HasPrefix(req.URL.Path, "/v2/"):
		if !r.validBearer(req) {
			r.challenge(w, req)
			return
		}
		r.inner.ServeHTTP(w, req)
	default:
		http.NotFound(w, req)
	}
}

func (r *Registry) validBearer(req *http.Request) bool {
	tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok && r.bearers[tok] {
		r.authorized++
		return true
	}
	r.count401++
	return false
}

// challenge answers 401 with the bearer challenge a client needs to find
// the token endpoint, including the scope for repository paths.
func (r *Registry) challenge(w http.ResponseWriter, req *http.Request) {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	c := fmt.Sprintf(`Bearer realm="%s://%s/v2/token",service="%s"`, scheme, req.Host, r.Service)
	if scope := registryScope(req); scope != "" {
		c += fmt.Sprintf(`,scope="%s"`, scope)
	}
	w.Header().Set("WWW-Authenticate", c)
	writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
}

// registryScope returns the token scope a request to path needs, as
// distribution registries announce it: pull for reads, pull,push for writes.
func registryScope(req *http.Request) string {
	p := strings.TrimPrefix(req.URL.Path, "/v2/")
	if p == "_catalog" {
		return "registry:catalog:*"
	}
	for _, kind := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(p, kind); i > 0 {
			action := "pull"
			if req.Method != http.MethodGet && req.Method != http.MethodHead {
				action = "pull,push"
			}
			return "repository:" + p[:i] + ":" + action
		}
	}
	return ""
}

// serveToken exchanges Basic credentials accepted by verify for a random
// bearer token, like gcr.io's /v2/token.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	user, password, hasBasic := req.BasicAuth()
	r.mu.Lock()
	r.tokenRequests++
	r.lastUsername = user
	r.lastScope = req.URL.Query().Get("scope")
	r.mu.Unlock()
	if req.Method != http.MethodGet || !hasBasic || r.verify == nil || !r.verify(user, password) {
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid credentials for "+r.Service)
		return
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	tok := "registry-" + hex.EncodeToString(b)
	r.mu.Lock()
	r.bearers[tok] = true
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   300,
		"issued_at":    time.Now().UTC().Format(time.RFC3339),
	})
}

func writeRegistryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": message}},
	})
}

// registryHandlerTransport sends requests straight to a handler, without a network.
type registryHandlerTransport struct{ h http.Handler }

func (ht registryHandlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// newRegistryCertificate returns a server certificate for 127.0.0.1 and names,
// signed by a fresh CA, and that CA's PEM.
func newRegistryCertificate(t testing.TB, names []string) (tls.Certificate, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("CA key: %v", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake registry CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("server key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "fake registry"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("server certificate: %v", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caPEM
}

// startConnectProxy serves HTTP CONNECT on 127.0.0.1, tunnelling
// connections for names (exact or "*." wildcard) to target and refusing
// every other host, so nothing leaves the machine.
func startConnectProxy(t testing.TB, target string, names []string) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodConnect {
			http.Error(w, "fake registry proxy only tunnels CONNECT", http.StatusMethodNotAllowed)
			return
		}
		host, _, err := net.SplitHostPort(req.Host)
		if err != nil {
			host = req.Host
		}
		if !proxyServes(host, names) {
			http.Error(w, "fake registry proxy does not serve "+host, http.StatusForbidden)
			return
		}
		upstream, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer upstream.Close()
		w.WriteHeader(http.StatusOK)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		if n := buf.Reader.Buffered(); n > 0 {
			b, _ := buf.Reader.Peek(n)
			upstream.Write(b)
		}
		done := make(chan struct{}, 2)
		go func() { io.Copy(upstream, conn); done <- struct{}{} }()
		go func() { io.Copy(conn, upstream); done <- struct{}{} }()
		<-done
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func proxyServes(host string, names []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, n := range names {
		if suffix, ok := strings.CutPrefix(n, "*."); ok {
			if label, rest, found := strings.Cut(host, "."); found && label != "" && rest == suffix {
				return true
			}
		} else if host == n {
			return true
		}
	}
	return false
}
