package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
)

// fastRefresh shortens every refresh timing so a test sees several rounds.
var fastRefresh = RefreshOptions{
	Refresh:    true,
	Every:      40 * time.Millisecond,
	Jitter:     -1,
	RetryAfter: 10 * time.Millisecond,
	Margin:     time.Millisecond,
}

// loopRun is a WriteDockerConfigLoop running in the background.
type loopRun struct {
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	logs   []string
}

func (r *loopRun) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *loopRun) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logs, "\n")
}

func startLoop(t *testing.T, path string, render func(context.Context) ([]byte, time.Time, error), opts RefreshOptions) *loopRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &loopRun{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- WriteDockerConfigLoop(ctx, path, render, opts, r.logf) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("the refresh loop did not stop")
		}
	})
	return r
}

// stop cancels the loop and returns what it returned.
func (r *loopRun) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh loop did not stop")
		return nil
	}
}

// waitFor polls until cond holds or fails the test after a while.
func loopWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func loopReadFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func loopCheckMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %o, want %o", path, got, want)
	}
}

// countingRender renders "config-N" on its Nth call, failing while fail is set.
type countingRender struct {
	calls atomic.Int64
	fail  atomic.Bool
}

func (c *countingRender) render(context.Context) ([]byte, time.Time, error) {
	n := c.calls.Add(1)
	if c.fail.Load() {
		return nil, time.Time{}, errors.New("token endpoint unreachable")
	}
	return fmt.Appendf(nil, "config-%d", n), time.Now().Add(time.Hour), nil
}

func TestWriteDockerConfigLoopOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "config.json")
	var c countingRender
	err := WriteDockerConfigLoop(context.Background(), path, c.render, RefreshOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := loopReadFile(t, path); got != "config-1" {
		t.Errorf("file = %q, want config-1", got)
	}
	loopCheckMode(t, path, 0o600)
	loopCheckMode(t, filepath.Dir(path), 0o700)
	if n := c.calls.Load(); n != 1 {
		t.Errorf("rendered %d times without --refresh, want 1", n)
	}
}

func TestWriteDockerConfigLoopOnceReplacesLooseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var c countingRender
	if err := WriteDockerConfigLoop(context.Background(), path, c.render, RefreshOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	loopCheckMode(t, path, 0o600)
}

func TestWriteDockerConfigLoopFirstFailureIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	var c countingRender
	c.fail.Store(true)
	err := WriteDockerConfigLoop(context.Background(), path, c.render, fastRefresh, nil)
	if err == nil || !strings.Contains(err.Error(), "token endpoint unreachable") {
		t.Errorf("error = %v, want the render error", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was left behind: %v", err)
	}
}

func TestWriteDockerConfigLoopRefreshes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	var c countingRender
	r := startLoop(t, path, c.render, fastRefresh)

	loopWaitFor(t, "the third rewrite", func() bool {
		data, _ := os.ReadFile(path)
		n, _ := strconv.Atoi(strings.TrimPrefix(string(data), "config-"))
		return n >= 3
	})
	loopCheckMode(t, path, 0o600)

	// A failing render keeps the last good file and is retried.
	c.fail.Store(true)
	failedAt := c.calls.Load()
	loopWaitFor(t, "three retries", func() bool { return c.calls.Load() >= failedAt+3 })
	kept := loopReadFile(t, path)
	if !strings.HasPrefix(kept, "config-") {
		t.Fatalf("file = %q after failures, want the last good config", kept)
	}
	time.Sleep(30 * time.Millisecond)
	if got := loopReadFile(t, path); got != kept {
		t.Errorf("file changed from %q to %q while rendering failed", kept, got)
	}
	loopCheckMode(t, path, 0o600)
	if !strings.Contains(r.log(), "keeping the previous file") {
		t.Errorf("failures not logged:\n%s", r.log())
	}

	// Once rendering works again, the file is rewritten.
	c.fail.Store(false)
	loopWaitFor(t, "a rewrite after recovery", func() bool { return loopReadFile(t, path) != kept })
	loopCheckMode(t, path, 0o600)

	if err := r.stop(t); err != nil {
		t.Errorf("the loop returned %v when cancelled, want nil", err)
	}
}

func TestNextRefresh(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := RefreshOptions{Jitter: -1}.withDefaults()
	tests := []struct {
		name   string
		expiry time.Time
		want   time.Duration
	}{
		{"fresh one-hour token", now.Add(time.Hour), 45 * time.Minute},
		{"token with 20 min left", now.Add(20 * time.Minute), 15 * time.Minute},
		{"token about to expire", now.Add(5 * time.Minute), 30 * time.Second},
		{"unknown expiry", time.Time{}, 45 * time.Minute},
	}
	for _, tt := range tests {
		if got := nextRefresh(opts, tt.expiry, now); got != tt.want {
			t.Errorf("%s: nextRefresh = %s, want %s", tt.name, got, tt.want)
		}
	}
	jittered := RefreshOptions{}.withDefaults()
	for range 100 {
		got := nextRefresh(jittered, now.Add(time.Hour), now)
		if got > 45*time.Minute || got <= 43*time.Minute {
			t.Fatalf("jittered wait %s outside (43m, 45m]", got)
		}
	}
}

// TestWriteDockerConfigLoopWithGoogle refreshes a config holding real
// tokens from the fake Google endpoint issuing eight-second tokens: a
// rewrite carries a new token once the cache stops reusing the last (after
// a quarter of its life), and a failing endpoint keeps the last file.
func TestWriteDockerConfigLoopWithGoogle(t *testing.T) {
	g, _ := serveEnv(t)
	g.SetLifetime(8 * time.Second)
	h, err := helper.New()
	if err != nil {
		t.Fatal(err)
	}
	render := func(ctx context.Context) ([]byte, time.Time, error) {
		tok, _, err := h.Token(ctx, "gcr.io")
		if err != nil {
			return nil, time.Time{}, err
		}
		data, err := json.Marshal(map[string]any{"auths": map[string]any{"gcr.io": map[string]string{"username": "oauth2accesstoken", "password": tok.AccessToken}}})
		return data, tok.Expiry, err
	}
	password := func(path string) string {
		var cfg struct {
			Auths map[string]struct{ Password string }
		}
		if err := json.Unmarshal([]byte(loopReadFile(t, path)), &cfg); err != nil {
			t.Fatalf("the written config does not parse: %v", err)
		}
		return cfg.Auths["gcr.io"].Password
	}

	path := filepath.Join(t.TempDir(), "drone", "config.json")
	r := startLoop(t, path, render, RefreshOptions{Refresh: true, Every: 100 * time.Millisecond, Jitter: -1, RetryAfter: 50 * time.Millisecond, Margin: time.Second})
	loopWaitFor(t, "the first write", func() bool { _, err := os.Stat(path); return err == nil })
	first := password(path)
	if _, ok := g.Issued(first); !ok {
		t.Fatalf("the first config's token was not issued by the fake")
	}
	// After 0.8 s an eight-second token is under 0.9 of its life, which
	// the policy keeps of tokens this short, so a rewrite mints a new one.
	loopWaitFor(t, "a rewrite with a new token", func() bool { return password(path) != first })
	second := password(path)
	if _, ok := g.Issued(second); !ok {
		t.Errorf("the rewritten token was not issued by the fake")
	}
	loopCheckMode(t, path, 0o600)

	// The token endpoint fails: the file keeps the last good token.
	g.FailNext(1<<30, http.StatusBadRequest, nil, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	failedAt := g.Count("jwt")
	loopWaitFor(t, "a failed refresh", func() bool { return g.Count("jwt") >= failedAt+2 })
	kept := password(path)
	if _, ok := g.Issued(kept); !ok {
		t.Errorf("the kept file does not hold a token the fake issued")
	}
	loopCheckMode(t, path, 0o600)
	if !strings.Contains(r.log(), "keeping the previous file") {
		t.Errorf("the failure is not logged:\n%s", r.log())
	}
	if strings.Contains(r.log(), kept) {
		t.Errorf("the log contains a token")
	}

	g.FailNext(0, 0, nil, "")
	loopWaitFor(t, "a rewrite after recovery", func() bool { return password(path) != kept })
	if err := r.stop(t); err != nil {
		t.Errorf("the loop returned %v when cancelled, want nil", err)
	}
}
