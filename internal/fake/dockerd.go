package fake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1random "github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DockerdAPIVersion is the Engine API version the fake daemon announces;
// the docker CLI negotiates down to it.
const DockerdAPIVersion = "1.47"

// Dockerd is a fake Docker Engine API on a unix socket. It lets tests run
// the real docker CLI (DOCKER_HOST=unix://<Socket()>) and see the
// credentials the CLI got from its credential helper, which the CLI sends
// to the daemon in the X-Registry-Auth header of pull and push requests.
type Dockerd struct {
	socket    string
	upstreams map[string]string

	mu       sync.Mutex
	requests []DockerdRequest
}

// DockerdRequest is one API call the fake daemon received.
type DockerdRequest struct {
	Method string
	// Path is the URL path without the /v1.NN version prefix, e.g. "/images/create".
	Path  string
	Query string
	// RegistryAuth is the raw X-Registry-Auth header ("" if absent).
	RegistryAuth string
	// Auth is RegistryAuth decoded (zero if absent or undecodable).
	Auth AuthConfig
}

// AuthConfig is the JSON the docker CLI encodes into X-Registry-Auth.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// DockerdOption configures NewDockerd.
type DockerdOption func(*Dockerd)

// WithUpstream makes the daemon really pull from and push to the plain-HTTP
// registry at addr (host:port) for images named on host, using the
// credentials from X-Registry-Auth as a real daemon does; a refused login
// fails the CLI command. Without it, pulls and pushes only pretend.
func WithUpstream(host, addr string) DockerdOption {
	return func(d *Dockerd) { d.upstreams[host] = addr }
}

// NewDockerd starts a fake daemon on a unix socket in a temporary directory,
// stopped when t ends.
func NewDockerd(t testing.TB, opts ...DockerdOption) *Dockerd {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 { // unix socket paths are limited to ~108 bytes
		var err error
		if dir, err = os.MkdirTemp("", "dockerd"); err != nil {
			t.Fatalf("temp dir: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	d := &Dockerd{socket: filepath.Join(dir, "docker.sock"), upstreams: map[string]string{}}
	for _, o := range opts {
		o(d)
	}
	l, err := net.Listen("unix", d.socket)
	if err != nil {
		t.Fatalf("listening on %s: %v", d.socket, err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: d, ErrorLog: log.New(io.Discard, "", 0)}}
	srv.Start()
	t.Cleanup(srv.Close)
	return d
}

// Socket returns the unix socket path; use DOCKER_HOST=unix://<Socket()>.
func (d *Dockerd) Socket() string { return d.socket }

// Requests returns every API call received so far, in order.
func (d *Dockerd) Requests() []DockerdRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DockerdRequest(nil), d.requests...)
}

// AuthFor returns the decoded X-Registry-Auth of the latest request whose
// path contains pathSubstring and that carried the header.
func (d *Dockerd) AuthFor(pathSubstring string) (AuthConfig, bool) {
	reqs := d.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if strings.Contains(reqs[i].Path, pathSubstring) && reqs[i].RegistryAuth != "" {
			return reqs[i].Auth, true
		}
	}
	return AuthConfig{}, false
}

// DecodeRegistryAuth decodes an X-Registry-Auth header: base64url JSON,
// with or without padding (standard base64 is accepted too).
func DecodeRegistryAuth(header string) (AuthConfig, error) {
	var ac AuthConfig
	header = strings.TrimSpace(header)
	if header == "" {
		return ac, errors.New("empty X-Registry-Auth")
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(header); err == nil {
			break
		}
	}
	if err != nil {
		return ac, err
	}
	err = json.Unmarshal(raw, &ac)
	return ac, err
}

var apiVersionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)

// ServeHTTP answers the Engine API calls docker pull and docker push make.
func (d *Dockerd) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path := req.URL.Path
	if loc := apiVersionPrefix.FindStringIndex(path); loc != nil {
		path = path[loc[1]-1:]
	}
	rec := DockerdRequest{Method: req.Method, Path: path, Query: req.URL.RawQuery, RegistryAuth: req.Header.Get("X-Registry-Auth")}
	if rec.RegistryAuth != "" {
		rec.Auth, _ = DecodeRegistryAuth(rec.RegistryAuth)
	}
	d.mu.Lock()
	d.requests = append(d.requests, rec)
	d.mu.Unlock()

	w.Header().Set("Api-Version", DockerdAPIVersion)
	w.Header().Set("Docker-Experimental", "false")
	w.Header().Set("Ostype", "linux")
	w.Header().Set("Server", "Docker/27.5.1 (linux)")
	switch {
	case path == "/_ping":
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if req.Method != http.MethodHead {
			io.WriteString(w, "OK")
		}
	case path == "/version":
		writeDaemonJSON(w, http.StatusOK, map[string]any{
			"Version": "27.5.1", "ApiVersion": DockerdAPIVersion, "MinAPIVersion": "1.24",
			"Os": "linux", "Arch": "amd64", "KernelVersion": "6.0.0", "GoVersion": "go1.22",
			"GitCommit": "fake", "Components": []any{},
		})
	case path == "/info":
		writeDaemonJSON(w, http.StatusOK, map[string]any{
			"ID": "fake", "Name": "fake-dockerd", "ServerVersion": "27.5.1",
			"OSType": "linux", "Architecture": "x86_64", "IndexServerAddress": "https://index.docker.io/v1/",
		})
	case path == "/images/create" && req.Method == http.MethodPost:
		q := req.URL.Query()
		d.pull(req.Context(), w, q.Get("fromImage"), q.Get("tag"), rec.Auth)
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/push") && req.Method == http.MethodPost:
		image := strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/push")
		d.push(req.Context(), w, image, req.URL.Query().Get("tag"), rec.Auth)
	case strings.HasPrefix(path, "/images/") && strings.HasSuffix(path, "/json") && req.Method == http.MethodGet:
		image := strings.TrimSuffix(strings.TrimPrefix(path, "/images/"), "/json")
		writeDaemonJSON(w, http.StatusOK, map[string]any{
			"Id": placeholderDigest, "RepoTags": []string{image}, "RepoDigests": []string{},
			"Os": "linux", "Architecture": "amd64", "Size": 1024,
			"Config": map[string]any{}, "RootFS": map[string]any{"Type": "layers"},
		})
	default:
		writeDaemonJSON(w, http.StatusNotFound, map[string]string{"message": "fake dockerd: " + req.Method + " " + path + " not implemented"})
	}
}

// upstreamTimeout bounds each pull or push against an upstream registry.
const upstreamTimeout = 10 * time.Second

const placeholderDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

// pull answers POST /images/create with a progress stream, pulling the
// manifest from the upstream registry first when one is configured.
func (d *Dockerd) pull(ctx context.Context, w http.ResponseWriter, image, tag string, ac AuthConfig) {
	if tag == "" {
		tag = "latest"
	}
	stream := newProgressStream(w)
	digest := placeholderDigest
	if ref, ok := d.upstreamRef(image, tag); ok {
		ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
		defer cancel()
		desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(authn.FromConfig(daemonAuthn(ac))))
		if err != nil {
			stream.fail(err)
			return
		}
		digest = desc.Digest.String()
	}
	stream.status(tag + ": Pulling from " + daemonRepoPath(image))
	stream.status("Digest: " + digest)
	stream.status("Status: Downloaded newer image for " + image + ":" + tag)
}

// push answers POST /images/{name}/push with a progress stream, pushing a
// random image to the upstream registry first when one is configured.
func (d *Dockerd) push(ctx context.Context, w http.ResponseWriter, image, tag string, ac AuthConfig) {
	if tag == "" {
		tag = "latest"
	}
	stream := newProgressStream(w)
	stream.status("The push refers to repository [" + image + "]")
	digest := placeholderDigest
	if ref, ok := d.upstreamRef(image, tag); ok {
		ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
		defer cancel()
		img, err := v1random.Image(1024, 1)
		if err == nil {
			err = remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(authn.FromConfig(daemonAuthn(ac))))
		}
		if err != nil {
			stream.fail(err)
			return
		}
		dg, _ := img.Digest()
		digest = dg.String()
	}
	stream.status(tag + ": digest: " + digest + " size: 528")
	stream.write(map[string]any{"progressDetail": map[string]any{}, "aux": map[string]any{"Tag": tag, "Digest": digest, "Size": 528}})
}

// upstreamRef maps image (e.g. "gcr.io/p/i") to the configured upstream
// registry, if its host has one.
func (d *Dockerd) upstreamRef(image, tag string) (name.Reference, bool) {
	host, repo, ok := strings.Cut(image, "/")
	if !ok {
		return nil, false
	}
	addr, ok := d.upstreams[host]
	if !ok {
		return nil, false
	}
	ref, err := name.NewTag(addr+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		return nil, false
	}
	return ref, true
}

func daemonRepoPath(image string) string {
	if host, repo, ok := strings.Cut(image, "/"); ok && strings.ContainsAny(host, ".:") {
		return repo
	}
	return image
}

func daemonAuthn(ac AuthConfig) authn.AuthConfig {
	return authn.AuthConfig{
		Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	}
}

func writeDaemonJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// progressStream writes the newline-delimited JSON messages the daemon
// streams for pulls and pushes.
type progressStream struct {
	w   http.ResponseWriter
	enc *json.Encoder
}

func newProgressStream(w http.ResponseWriter) *progressStream {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return &progressStream{w: w, enc: json.NewEncoder(w)}
}

func (s *progressStream) write(v any) {
	s.enc.Encode(v)
	http.NewResponseController(s.w).Flush()
}

func (s *progressStream) status(msg string) { s.write(map[string]string{"status": msg}) }

// fail ends the stream with an error message, which makes the CLI exit 1.
func (s *progressStream) fail(err error) {
	s.write(map[string]any{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
}
