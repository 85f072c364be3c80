package fake

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const metadataPrefix = "/computeMetadata/v1/"

// Metadata fakes the GCE/GKE metadata server for GCE_METADATA_HOST: it
// answers only requests carrying Metadata-Flavor: Google (others get 403)
// and marks every answer with that header, as the real server does.
type Metadata struct {
	srv   *httptest.Server
	done  chan struct{}
	email string

	mu       sync.Mutex
	count    int
	tokens   int
	issued   map[string]time.Time // token -> expiry
	lifetime time.Duration
	latency  time.Duration
	status   int
}

// NewMetadata starts a fake metadata server on 127.0.0.1 whose default
// service account is email; "" means an instance without a service
// account (token and e-mail requests answer 404). t.Cleanup closes it.
func NewMetadata(t testing.TB, email string) *Metadata {
	t.Helper()
	m := &Metadata{
		done:     make(chan struct{}),
		email:    email,
		issued:   map[string]time.Time{},
		lifetime: defaultLifetime,
	}
	m.srv = httptest.NewServer(http.HandlerFunc(m.handle))
	t.Cleanup(func() {
		close(m.done)
		m.srv.Close()
	})
	return m
}

// Host is "127.0.0.1:port", the value for GCE_METADATA_HOST.
func (m *Metadata) Host() string { return strings.TrimPrefix(m.srv.URL, "http://") }

// Count reports all requests received, rejected ones included.
func (m *Metadata) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.count
}

// TokenCount reports requests for a service account's token, rejected
// ones included.
func (m *Metadata) TokenCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens
}

// Issued reports whether this fake issued accessToken and it is unexpired.
func (m *Metadata) Issued(accessToken string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.issued[accessToken]
	return ok && time.Now().Before(exp)
}

// SetLifetime sets expires_in of tokens issued from now on (default one
// hour), rounded up to whole seconds.
func (m *Metadata) SetLifetime(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lifetime = d
}

// SetLatency delays every answer by d.
func (m *Metadata) SetLatency(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.latency = d
}

// FailWith makes every request answer status; 0 restores normal answers.
func (m *Metadata) FailWith(status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = status
}

func (m *Metadata) handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Metadata-Flavor", "Google")
	w.Header().Set("Server", "Metadata Server for VM")
	acct, item, isAccount := m.serviceAccountPath(r.URL.Path)
	m.mu.Lock()
	m.count++
	if isAccount && item == "token" {
		m.tokens++
	}
	latency, status := m.latency, m.status
	m.mu.Unlock()
	wait(r, m.done, latency)

	switch {
	case status != 0:
		http.Error(w, http.StatusText(status), status)
		return
	case r.URL.Path == "/" && r.Method == http.MethodGet:
		// The root answers without the header, which is how clients
		// probe for a metadata server by IP.
		text(w, "computeMetadata/\n")
		return
	case r.Header.Get("Metadata-Flavor") != "Google":
		http.Error(w, "Missing required header \"Metadata-Flavor\": \"Google\"", http.StatusForbidden)
		return
	case r.Method != http.MethodGet:
		http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
		return
	}

	switch p := r.URL.Path; {
	case p == metadataPrefix || p == "/computeMetadata/" || p == "/computeMetadata/v1":
		text(w, "instance/\nproject/\n")
	case p == metadataPrefix+"project/project-id":
		text(w, projectOf(m.email))
	case p == metadataPrefix+"project/numeric-project-id":
		text(w, "123456789012")
	case p == metadataPrefix+"instance/service-accounts/" || p == metadataPrefix+"instance/service-accounts":
		if m.email == "" {
			text(w, "")
			return
		}
		text(w, "default/\n"+m.email+"/\n")
	case isAccount:
		m.serveAccount(w, r, acct, item)
	default:
		http.NotFound(w, r)
	}
}

// serviceAccountPath splits .../instance/service-accounts/{acct}/{item}.
func (m *Metadata) serviceAccountPath(p string) (acct, item string, ok bool) {
	rest, ok := strings.CutPrefix(p, metadataPrefix+"instance/service-accounts/")
	if !ok {
		return "", "", false
	}
	acct, item, _ = strings.Cut(rest, "/")
	return acct, item, acct != ""
}

func (m *Metadata) serveAccount(w http.ResponseWriter, r *http.Request, acct, item string) {
	if m.email == "" || (acct != "default" && acct != m.email) {
		http.NotFound(w, r)
		return
	}
	switch item {
	case "":
		if r.URL.Query().Get("recursive") == "true" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"aliases": []string{"default"},
				"email":   m.email,
				"scopes":  []string{CloudPlatformScope},
			})
			return
		}
		text(w, "aliases\nemail\nidentity\nscopes\ntoken\n")
	case "email":
		text(w, m.email)
	case "aliases":
		text(w, "default\n")
	case "scopes":
		text(w, CloudPlatformScope+"\n")
	case "token":
		m.mu.Lock()
		life := wholeSeconds(m.lifetime)
		var tok string
		for tok == "" || !m.issued[tok].IsZero() {
			tok = newAccessToken()
		}
		m.issued[tok] = time.Now().Add(life)
		m.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": tok,
			"expires_in":   int64(life / time.Second),
			"token_type":   "Bearer",
		})
	default:
		http.NotFound(w, r)
	}
}

func text(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "application/text")
	_, _ = fmt.Fprint(w, s)
}

// RefusedHost returns "127.0.0.1:port" where nothing listens, so a
// connection is refused at once (an off-cloud machine's metadata host).
// The port was free a moment ago; another process could take it, which
// tests accept.
func RefusedHost(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake: listening: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// BlackholeHost returns "127.0.0.1:port" of a listener that accepts TCP
// connections and never answers, like a metadata IP whose requests go
// nowhere; t.Cleanup closes it. The connect itself succeeds, so this
// exercises response-header timeouts and context deadlines rather than
// dial timeouts: loopback never drops SYNs without packet filtering
// (root), except on Linux via a listen backlog of 0 with a full accept
// queue, which needs OS-specific code this package does not carry.
func BlackholeHost(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake: listening: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	closed := false
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				_ = c.Close()
			} else {
				conns = append(conns, c)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}
