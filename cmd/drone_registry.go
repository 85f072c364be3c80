package cmd

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drone/drone-go/drone"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
	"github.com/docker-credential-gcp/docker-credential-gcp/trace"
)

const (
	droneDefaultBind = ":3000"
	// droneMinSecret is the shortest DRONE_SECRET we accept: shorter
	// shared secrets make the request signature guessable.
	droneMinSecret = 16
	// droneMaxSecretFile bounds what --secret-file reads: a secret is a
	// line of hex.
	droneMaxSecretFile = 64 << 10
	// droneMaxSkew bounds how far a signed request's Date may be from now:
	// a signature never expires, so without it a captured request could
	// be replayed for fresh tokens forever.
	droneMaxSkew = 5 * time.Minute
	// droneMaxBody caps a request body; Drone's requests are a few KiB.
	droneMaxBody = 1 << 20
	// droneTokenTimeout bounds one request's token fetches.
	droneTokenTimeout = 30 * time.Second
	// droneShutdownTimeout is how long in-flight requests get on SIGTERM.
	droneShutdownTimeout = 10 * time.Second
	// droneUnusedConnGrace is how long shutdown waits before closing
	// connections that never carried a request. HTTP clients dial spare
	// connections under load; http.Server.Shutdown would wait 5 s for
	// each of them, delaying a SIGTERM (docker stop, systemctl stop).
	droneUnusedConnGrace = 300 * time.Millisecond
)

const droneRegistryUsage = `Usage: docker-credential-gcp drone-registry [--bind ADDR] [--secret-file FILE]
           [--registries HOST,...]

Serves a Drone registry extension: every pipeline's image pulls from Google
registries get a fresh short-lived token, from the same credentials and
cache as the credential helper. Point the Drone runner at it with
  DRONE_REGISTRY_PLUGIN_ENDPOINT=http://HOST:3000
  DRONE_REGISTRY_PLUGIN_TOKEN=<the same secret as DRONE_SECRET>
(the Kubernetes runner calls the second one DRONE_REGISTRY_PLUGIN_SECRET).

Environment:
  DRONE_SECRET   shared secret that signs the runner's requests (required, >= 16 bytes)
  DRONE_BIND     address to listen on (default ":3000")

Examples:
  DRONE_SECRET=$(cat /etc/drone-gcp/secret) docker-credential-gcp drone-registry
  docker-credential-gcp drone-registry --secret-file /etc/drone-gcp/secret --bind 127.0.0.1:3000

Flags:
`

// DroneRegistry serves a Drone registry extension until SIGTERM or SIGINT,
// so Drone runners pull from gcr.io and *.pkg.dev with short-lived tokens
// instead of a never-expiring _json_key secret.
func DroneRegistry(args []string, stdio IO) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return droneRegistry(ctx, args, stdio)
}

// droneRegistry is DroneRegistry with the shutdown signal as a context, so
// tests can stop it.
func droneRegistry(ctx context.Context, args []string, stdio IO) error {
	flags := newFlags("drone-registry", droneRegistryUsage, stdio)
	bind := flags.String("bind", "", "`ADDR` to listen on (overrides DRONE_BIND; default \":3000\")")
	secretFile := flags.String("secret-file", "", "read the shared secret from `FILE` instead of DRONE_SECRET")
	hosts := registriesFlag(flags, helper.DefaultRegistries, "comma-separated registry `HOSTS` to hand tokens for")
	if help, err := parseFlags(flags, args); help || err != nil {
		return err
	}

	secret, err := droneSecret(*secretFile)
	if err != nil {
		return err
	}
	addr := *bind
	if addr == "" {
		addr = os.Getenv("DRONE_BIND")
	}
	if addr == "" {
		addr = droneDefaultBind
	}

	h, err := NewHelper("drone-registry", stdio.Err)
	if err != nil {
		return err
	}
	served, err := allowedRegistries(h, *hosts)
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelInfo}))
	logCredentials(ctx, h, served[0], log)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return serveDroneRegistry(ctx, ln, &dronePlugin{secret: secret, helper: h, hosts: served, log: log, warn: stdio.Err}, log)
}

// droneSecret reads the shared secret from file (trimmed) or DRONE_SECRET
// and refuses one too short to protect the tokens it guards.
func droneSecret(file string) (string, error) {
	secret, from := os.Getenv("DRONE_SECRET"), "DRONE_SECRET"
	if file != "" {
		// Bounded and non-blocking: a FIFO or /dev/zero given by mistake
		// is refused at once, not waited on past SIGTERM or read forever.
		data, err := atomicfile.ReadFile(file, droneMaxSecretFile)
		if err != nil {
			return "", fmt.Errorf("reading the secret file: %w", err)
		}
		secret, from = strings.TrimSpace(string(data)), file
	}
	switch {
	case secret == "" && file != "":
		return "", fmt.Errorf("the secret file %s is empty", file)
	case secret == "":
		return "", errors.New("DRONE_SECRET is not set (or pass --secret-file); it must equal the runner's DRONE_REGISTRY_PLUGIN_TOKEN, e.g. from `openssl rand -hex 16`")
	case len(secret) < droneMinSecret:
		return "", fmt.Errorf("the secret from %s is %d bytes, shorter than %d; generate one with `openssl rand -hex 16`", from, len(secret), droneMinSecret)
	}
	return secret, nil
}

// logCredentials says at startup which credentials requests will use, or
// why there are none yet, without minting.
func logCredentials(ctx context.Context, h *helper.Helper, host string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, droneTokenTimeout)
	defer cancel()
	cred, _, err := h.Resolve(ctx, host)
	if err != nil {
		log.Warn("no usable Google credentials yet; requests fail until there are", "err", err)
		return
	}
	log.Info("credentials", "source", cred.Source, "principal", cred.Principal)
}

// serveDroneRegistry answers signed registry requests on ln until ctx is
// done, then drains in-flight requests and returns nil.
func serveDroneRegistry(ctx context.Context, ln net.Listener, plugin *dronePlugin, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	})
	mux.Handle("/", plugin)
	unused := &unusedConns{conns: map[net.Conn]bool{}}
	srv := &http.Server{
		ConnState:         unused.track,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      droneTokenTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	log.Info("listening", "addr", ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), droneShutdownTimeout)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(shutdownCtx) }()
	var err error
	select {
	case err = <-shutdown:
	case <-time.After(droneUnusedConnGrace):
		// The listener is closed by now; what is still "new" was dialled
		// ahead and never used, so no request is lost by closing it.
		unused.closeAll()
		err = <-shutdown
	}
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}

// unusedConns tracks the server's connections that have not yet carried a
// request (http.StateNew), so shutdown need not wait for them.
type unusedConns struct {
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func (u *unusedConns) track(c net.Conn, state http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if state == http.StateNew {
		u.conns[c] = true
	} else {
		delete(u.conns, c)
	}
}

func (u *unusedConns) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for c := range u.conns {
		c.Close()
		delete(u.conns, c)
	}
}

// droneRequest is what Drone posts: the repository and build that pull.
type droneRequest struct {
	Repo  drone.Repo  `json:"repo"`
	Build drone.Build `json:"build"`
}

// ServeHTTP answers a registry request from Drone. Drone signs each one
// (an HTTP signature, draft-cavage, HMAC-SHA256 keyed by the shared
// secret, as drone-go's client makes it) over its Date and Digest headers
// among others. A request is served only when the signature holds and
// covers both, the Date is within droneMaxSkew of now and the Digest is
// the body's: a captured request can neither be replayed later nor carry
// another body. The answer is encrypted, as drone-go's own handler does,
// when the request asks for it (Accept-Encoding: aesgcm).
func (p *dronePlugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := p.verify(w, r)
	if err != nil {
		p.log.Warn("rejected request", "remote", r.RemoteAddr, "err", err)
		p.traceRejected(r.RemoteAddr, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	regs, err := p.List(r.Context(), req)
	if err != nil {
		// Drone logs the error and pulls without credentials, so public
		// images still work. The status is drone-go's handler's.
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	out, err := json.Marshal(regs)
	encrypt := r.Header.Get("Accept-Encoding") == "aesgcm"
	if err == nil && encrypt {
		out, err = droneEncrypt(out, p.secret)
	}
	if err != nil {
		p.log.Error("registry request failed", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if encrypt {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Encoding", "aesgcm")
	}
	w.Write(out)
}

// verify checks r's signature, Date and Digest, in that order, and
// returns its request, or why it is refused.
func (p *dronePlugin) verify(w http.ResponseWriter, r *http.Request) (*droneRequest, error) {
	if err := checkDroneSignature(r, p.secret); err != nil {
		return nil, err
	}
	if err := checkDroneDate(r.Header.Get("Date"), time.Now()); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, droneMaxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if err := checkDigest(r.Header.Get("Digest"), body); err != nil {
		return nil, err
	}
	var req droneRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("the body is not a registry request: %w", err)
	}
	return &req, nil
}

// droneSignedHeaders are the headers a signature must cover: the Date
// bounds its replay, the Digest binds the body.
var droneSignedHeaders = []string{"date", "digest"}

// checkDroneSignature checks the request's HTTP signature, from its
// Signature header (or Authorization: Signature ...), against secret:
// keyId="...",algorithm="hmac-sha256",headers="date digest ...",signature="BASE64",
// where the signature is the HMAC-SHA256 of the lines "name: value" of the
// listed headers ("(request-target)" is the method and path).
func checkDroneSignature(r *http.Request, secret string) error {
	header := r.Header.Get("Signature")
	if header == "" {
		header, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Signature ")
	}
	if header == "" {
		return errors.New("the request is not signed (no Signature header): is DRONE_REGISTRY_PLUGIN_TOKEN set on the runner?")
	}
	params, err := parseDroneSignature(header)
	if err != nil {
		return err
	}
	if params["algorithm"] != "hmac-sha256" {
		return errors.New("the signature's algorithm is not hmac-sha256")
	}
	names := strings.Fields(strings.ToLower(params["headers"]))
	for _, name := range droneSignedHeaders {
		if !slices.Contains(names, name) {
			return fmt.Errorf("the signature does not cover the %s header", name)
		}
	}
	lines := make([]string, 0, len(names))
	for _, name := range names {
		value := r.Header.Get(name)
		if name == "(request-target)" {
			value = strings.ToLower(r.Method) + " " + r.URL.RequestURI()
		}
		if value == "" {
			return errors.New("a header the signature covers is missing")
		}
		lines = append(lines, name+": "+value)
	}
	got, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil {
		return errors.New("the signature is not base64")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strings.Join(lines, "\n")))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("invalid signature: is DRONE_REGISTRY_PLUGIN_TOKEN the same as DRONE_SECRET?")
	}
	return nil
}

// parseDroneSignature splits a signature's key="value" parameters, each
// named once: keyId, algorithm, headers and signature.
func parseDroneSignature(header string) (map[string]string, error) {
	malformed := errors.New(`malformed Signature header (want keyId="...",algorithm="...",headers="...",signature="...")`)
	params := map[string]string{}
	for rest := header; rest != ""; {
		key, after, ok := strings.Cut(rest, `="`)
		if !ok {
			return nil, malformed
		}
		var value string
		if value, rest, ok = strings.Cut(after, `"`); !ok {
			return nil, malformed
		}
		key = strings.TrimSpace(key)
		if _, seen := params[key]; seen || !slices.Contains([]string{"keyId", "algorithm", "headers", "signature"}, key) {
			return nil, malformed
		}
		params[key] = value
		if rest, ok = strings.CutPrefix(rest, ","); !ok && rest != "" {
			return nil, malformed
		}
	}
	return params, nil
}

// droneEncrypt seals an answer as drone-go's handler does for a request
// with Accept-Encoding: aesgcm: AES-256-GCM keyed by the secret's first 32
// bytes, the random nonce before the ciphertext.
func droneEncrypt(plaintext []byte, secret string) ([]byte, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("an encrypted answer (Accept-Encoding: aesgcm) needs a secret of at least 32 bytes, this one has %d", len(secret))
	}
	block, err := aes.NewCipher([]byte(secret[:32]))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	return gcm.Seal(nonce, nonce, plaintext, nil), nil
}

// checkDroneDate says why a signed request's Date header is unacceptable,
// or nil when it is within droneMaxSkew of now. A missing or unparsable Date
// is refused too: the signature covers whatever string is there, so a
// request with no datable Date could be replayed forever.
func checkDroneDate(header string, now time.Time) error {
	if header == "" {
		return errors.New("the request has no Date header (a signed request must carry its date)")
	}
	date, err := http.ParseTime(header)
	if err != nil {
		// The signing library's own default, when the caller set no Date.
		date, err = time.Parse(time.RFC1123, header)
	}
	if err != nil {
		return errors.New("the Date header is not an HTTP date (want e.g. " + now.UTC().Format(http.TimeFormat) + ")")
	}
	if skew := now.Sub(date).Abs(); skew > droneMaxSkew {
		return errors.New("Date header is " + skew.Round(time.Second).String() + " off the server clock (replayed request or clock skew)")
	}
	return nil
}

// checkDigest checks body against a Digest header as drone-go writes it,
// "SHA-256=<base64 of the body's SHA-256>".
func checkDigest(header string, body []byte) error {
	alg, value, ok := strings.Cut(header, "=")
	if !ok || !strings.EqualFold(alg, "SHA-256") {
		return errors.New("unsupported Digest header (want SHA-256=...)")
	}
	sum := sha256.Sum256(body)
	if subtle.ConstantTimeCompare([]byte(value), []byte(base64.StdEncoding.EncodeToString(sum[:]))) != 1 {
		return errors.New("the body does not match the signed Digest header (altered or replayed request)")
	}
	return nil
}

// dronePlugin answers a registry request with a token for every served host.
type dronePlugin struct {
	secret string
	helper *helper.Helper
	hosts  []string
	log    *slog.Logger
	warn   io.Writer // gets the trace's lines for stderr and its warning
}

// List returns oauth2accesstoken logins for the served hosts. An error makes
// Drone pull without credentials, so public images still work.
func (p *dronePlugin) List(ctx context.Context, req *droneRequest) (_ []*drone.Registry, err error) {
	call := trace.Start("drone-registry")
	call.Recorded(p.helper.TraceLog)
	call.Host(p.hosts...)
	call.Attr("repo", req.Repo.Slug)
	call.Attr("build", req.Build.Number)
	defer func() { call.End(err, p.warn) }()
	ctx, cancel := context.WithTimeout(call.Context(ctx), droneTokenTimeout)
	defer cancel()
	logArgs := []any{"repo", req.Repo.Slug, "build", req.Build.Number, "hosts", strings.Join(p.hosts, ",")}
	tokens, err := tokensForHosts(ctx, p.helper, p.hosts)
	traceTokens(call, p.helper, tokens)
	if err != nil {
		p.log.Error("registry request failed", append(logArgs, "err", err)...)
		return nil, err
	}
	out := make([]*drone.Registry, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, &drone.Registry{Address: t.host, Username: helper.UsernameAccessToken, Password: t.token.AccessToken})
	}
	p.log.Info("registry request", append(logArgs, "principal", tokens[0].cred.Principal)...)
	return out, nil
}

// traceRejected writes the trace line of a request refused before it
// reached List: a bad signature, a stale Date, a body not matching its
// signed Digest. No token was looked up for it.
func (p *dronePlugin) traceRejected(remote, why string) {
	call := trace.Start("drone-registry")
	call.Recorded(p.helper.TraceLog)
	call.Host(p.hosts...)
	call.Attr("remote", remote)
	call.End(errors.New("rejected request: "+why), p.warn)
}
