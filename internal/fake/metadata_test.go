package fake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
	"golang.org/x/oauth2/google"
)

// TestMetadataThroughClientLibraries is not parallel: it sets
// GCE_METADATA_HOST, as the helper's own tests will.
func TestMetadataThroughClientLibraries(t *testing.T) {
	m := NewMetadata(t, saEmail)
	t.Setenv("GCE_METADATA_HOST", m.Host())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	c := metadata.NewClient(&http.Client{Timeout: 2 * time.Second})
	if email, err := c.EmailWithContext(ctx, ""); err != nil || email != saEmail {
		t.Errorf("Email = %q, %v; want %q", email, err, saEmail)
	}
	// GetWithContext, as ProjectIDWithContext caches in a package variable.
	if p, err := c.GetWithContext(ctx, "project/project-id"); err != nil || p != "my-proj" {
		t.Errorf("ProjectID = %q, %v; want my-proj", p, err)
	}
	tok, err := google.ComputeTokenSource("", CloudPlatformScope).Token()
	if err != nil {
		t.Fatalf("ComputeTokenSource: %v", err)
	}
	if !m.Issued(tok.AccessToken) || time.Until(tok.Expiry) < 50*time.Minute {
		t.Errorf("token %q (expiry %v) not recognised", tok.AccessToken, tok.Expiry)
	}
	if m.TokenCount() != 1 || m.Count() != 3 {
		t.Errorf("TokenCount = %d, Count = %d; want 1, 3", m.TokenCount(), m.Count())
	}
	if m.Issued("ya29.fake-never-issued") {
		t.Error("Issued recognises a token it never issued")
	}
}

// get fetches path from the fake, with the Metadata-Flavor header if flavor.
func get(t *testing.T, m *Metadata, path string, flavor bool) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+m.Host()+path, nil)
	if flavor {
		req.Header.Set("Metadata-Flavor", "Google")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestMetadataEndpoints(t *testing.T) {
	t.Parallel()
	m := NewMetadata(t, saEmail)
	sa := metadataPrefix + "instance/service-accounts/"
	tests := []struct {
		path   string
		flavor bool
		status int
		body   string
	}{
		{sa + "default/token", false, 403, ""},
		{metadataPrefix + "project/project-id", false, 403, ""},
		{"/", false, 200, "computeMetadata/\n"},
		{metadataPrefix, true, 200, "instance/\nproject/\n"},
		{metadataPrefix + "project/project-id", true, 200, "my-proj"},
		{sa, true, 200, "default/\n" + saEmail + "/\n"},
		{sa + "default/", true, 200, "aliases\nemail\nidentity\nscopes\ntoken\n"},
		{sa + "default/email", true, 200, saEmail},
		{sa + saEmail + "/email", true, 200, saEmail},
		{sa + "other@p.iam.gserviceaccount.com/email", true, 404, ""},
		{sa + saEmail + "/token?scopes=" + CloudPlatformScope, true, 200, ""},
		{metadataPrefix + "instance/nothing", true, 404, ""},
	}
	for _, tt := range tests {
		status, body, h := get(t, m, tt.path, tt.flavor)
		if status != tt.status || (tt.body != "" && body != tt.body) {
			t.Errorf("GET %s (flavor %v): got %d %q, want %d %q", tt.path, tt.flavor, status, body, tt.status, tt.body)
		}
		if h.Get("Metadata-Flavor") != "Google" {
			t.Errorf("GET %s: answer lacks Metadata-Flavor: Google", tt.path)
		}
	}

	_, body, _ := get(t, m, sa+"default/?recursive=true", true)
	var info struct{ Email string }
	if err := json.Unmarshal([]byte(body), &info); err != nil || info.Email != saEmail {
		t.Errorf("recursive listing %q: %v", body, err)
	}
	if got, want := m.Count(), len(tests)+1; got != want {
		t.Errorf("Count = %d, want %d", got, want)
	}
	if got := m.TokenCount(); got != 2 {
		t.Errorf("TokenCount = %d, want 2 (rejected requests count)", got)
	}
}

func TestMetadataFaults(t *testing.T) {
	t.Parallel()
	m := NewMetadata(t, saEmail)
	path := metadataPrefix + "instance/service-accounts/default/token"

	m.FailWith(http.StatusServiceUnavailable)
	if status, _, _ := get(t, m, path, true); status != http.StatusServiceUnavailable {
		t.Errorf("FailWith(503): got %d", status)
	}
	m.FailWith(0)
	m.SetLifetime(2 * time.Minute)
	m.SetLatency(50 * time.Millisecond)
	start := time.Now()
	status, body, _ := get(t, m, path, true)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answer took %v, want at least the latency", d)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(body), &tok); status != 200 || err != nil || tok.ExpiresIn != 120 || tok.TokenType != "Bearer" || !m.Issued(tok.AccessToken) {
		t.Errorf("token answer %d %q: %v", status, body, err)
	}

	none := NewMetadata(t, "")
	if status, _, _ := get(t, none, path, true); status != http.StatusNotFound {
		t.Errorf("instance without service account: token got %d, want 404", status)
	}
}

func TestUnreachableHosts(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		c, err := net.DialTimeout("tcp", RefusedHost(t), time.Second)
		if err == nil {
			c.Close()
			t.Fatal("dial succeeded")
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("refusal took %v", d)
		}
	})
	t.Run("blackhole", func(t *testing.T) {
		t.Parallel()
		host := BlackholeHost(t)
		c := &http.Client{Timeout: 200 * time.Millisecond}
		start := time.Now()
		resp, err := c.Get("http://" + host + metadataPrefix)
		if err == nil {
			resp.Body.Close()
			t.Fatal("blackhole answered")
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("error %v is not a timeout", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("timeout took %v", d)
		}
	})
}
