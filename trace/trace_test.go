package trace

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// fields are the keys every line carries.
var fields = []string{"time", "pid", "command", "host", "outcome", "source", "principal", "binding",
	"cache", "expiry", "remaining_s", "requests", "duration_ms", "error"}

// readLines parses every line of the trace file at path.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSuffix(string(data), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLineHasEveryField(t *testing.T) {
	t.Setenv(EnvLog, "")
	path := filepath.Join(t.TempDir(), "logs", "trace.jsonl")
	c := Start("get")
	c.Recorded(path)
	c.Host("gcr.io")
	c.Credential(&token.Credential{Source: "GOOGLE_APPLICATION_CREDENTIALS (/k.json)", Principal: "sa@p.iam.gserviceaccount.com"}, "credential file /k.json")
	expiry := time.Now().Add(50 * time.Minute)
	c.Token(&oauth2.Token{AccessToken: "ya29.secret-token-value", Expiry: expiry})
	c.Attr("repo", "octo/app")
	var warn bytes.Buffer
	c.End(nil, &warn)
	if warn.Len() > 0 {
		t.Errorf("warning: %s", warn.String())
	}
	lines := readLines(t, path)
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	l := lines[0]
	for _, f := range fields {
		if _, ok := l[f]; !ok {
			t.Errorf("no %q in %v", f, l)
		}
	}
	want := map[string]any{"command": "get", "host": "gcr.io", "outcome": "served", "cache": "uncached",
		"principal": "sa@p.iam.gserviceaccount.com", "binding": "credential file /k.json", "error": "", "repo": "octo/app",
		"requests": 0.0, "pid": float64(os.Getpid())}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("%s = %v, want %v", k, l[k], v)
		}
	}
	if left := l["remaining_s"].(float64); left < 49*60 || left > 50*60 {
		t.Errorf("remaining_s = %v, want about 3000", left)
	}
	if got, _ := time.Parse(time.RFC3339, l["expiry"].(string)); !got.Equal(expiry.Truncate(time.Second)) && got.Sub(expiry).Abs() > time.Second {
		t.Errorf("expiry = %v, want %v", l["expiry"], expiry)
	}
	for _, dir := range []string{filepath.Dir(path)} {
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != dirPerm {
			t.Errorf("%s has mode %v, want %v", dir, fi.Mode().Perm(), dirPerm)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != filePerm {
		t.Errorf("trace file has mode %v, want %v", fi.Mode().Perm(), filePerm)
	}
}

func TestOutcomeFromError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Outcome
	}{
		{nil, Served},
		{fmt.Errorf("resolving: %w", token.ErrNoCredentials), NotFound},
		{errors.New("token endpoint: HTTP 401"), Failed},
	} {
		if got := outcomeOf(tc.err); got != tc.want {
			t.Errorf("outcomeOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestDestination(t *testing.T) {
	for _, tc := range []struct{ env, recorded, want string }{
		{"", "", ""},
		{"", "/r.jsonl", "/r.jsonl"},
		{"/e.jsonl", "/r.jsonl", "/e.jsonl"},
		{"stderr", "/r.jsonl", "stderr"},
		{"OFF", "/r.jsonl", ""},
	} {
		t.Setenv(EnvLog, tc.env)
		if got := Destination(tc.recorded); got != tc.want {
			t.Errorf("env %q, recorded %q: %q, want %q", tc.env, tc.recorded, got, tc.want)
		}
	}
}

// No secret the call handled, nor anything shaped like a token, reaches
// the line, in any encoding an error may quote it in.
func TestLineNeverHoldsASecret(t *testing.T) {
	const (
		tok     = "ya29.a0AfB_byC-served-access-token-0123456789"
		refresh = "1//0gRefreshTokenForTheTrace-abcdefghijklmnop"
		stored  = `{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"}`
		jwt     = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwb2QifQ.c2lnbmF0dXJlLW9mLXRoZS1qd3Q"
	)
	secrets := []string{tok, refresh, stored, jwt}
	var leaky []string
	for _, s := range secrets {
		leaky = append(leaky, s, url.QueryEscape(s), url.PathEscape(s), strings.ToLower(url.QueryEscape(s)))
	}
	t.Setenv(EnvLog, filepath.Join(t.TempDir(), "trace.jsonl"))
	c := Start("store")
	c.Host("gcr.io")
	c.Secret(stored)
	c.Token(&oauth2.Token{AccessToken: tok})
	c.End(errors.New("endpoint said: "+strings.Join(leaky, " | ")), &bytes.Buffer{})
	data, err := os.ReadFile(os.Getenv(EnvLog))
	if err != nil {
		t.Fatal(err)
	}
	out := string(data)
	for _, s := range secrets {
		for _, form := range []string{s, url.QueryEscape(s), base64.StdEncoding.EncodeToString([]byte(s))} {
			for i := 0; i+12 <= len(form); i++ {
				if strings.Contains(out, form[i:i+12]) {
					t.Fatalf("the line shows %q of a secret:\n%s", form[i:i+12], out)
				}
			}
		}
	}
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("the error was not kept, redacted:\n%s", out)
	}
}

// Concurrent writers each leave one whole line.
func TestConcurrentLinesStayWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	t.Setenv(EnvLog, path)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := Start("get")
			c.Host(strings.Repeat("h", 2000) + fmt.Sprint(i))
			c.End(nil, &bytes.Buffer{})
		}()
	}
	wg.Wait()
	if n := len(readLines(t, path)); n != 32 {
		t.Errorf("%d lines, want 32", n)
	}
}

// A line that would take the file past the cap first moves it to FILE.1.
func TestRotationAtTheCap(t *testing.T) {
	maxSize = 4 << 10
	t.Cleanup(func() { maxSize = MaxSize })
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	t.Setenv(EnvLog, path)
	write := func() {
		c := Start("get")
		c.End(nil, &bytes.Buffer{})
	}
	write()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	perFile := int(maxSize / fi.Size())
	for range perFile - 1 {
		write()
	}
	if _, err := os.Stat(path + ".1"); err == nil {
		t.Fatalf("rotated before the cap: %d lines of %d bytes fit in %d", perFile, fi.Size(), maxSize)
	}
	full, _ := os.ReadFile(path)
	write()
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatalf("no %s.1 past the cap: %v", path, err)
	}
	if !bytes.Equal(old, full) {
		t.Error("FILE.1 is not the file as it was before the line that passed the cap")
	}
	if n := len(readLines(t, path)); n != 1 {
		t.Errorf("after rotation FILE holds %d lines, want 1", n)
	}
	for range perFile + 1 {
		write()
	}
	for _, p := range []string{path, path + ".1"} {
		if fi, err := os.Stat(p); err != nil || fi.Size() > maxSize {
			t.Errorf("%s: %v, size past the cap %d", p, err, maxSize)
		}
	}
}
