package token

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedServer answers with statuses in turn (the last one repeats) and
// records each request body.
type scriptedServer struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header
	bodies   []string
}

func (s *scriptedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.bodies)
	s.bodies = append(s.bodies, string(b))
	status := s.statuses[min(n, len(s.statuses)-1)]
	s.mu.Unlock()
	for k, v := range s.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, http.StatusText(status))
}

func (s *scriptedServer) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func quickRetryClient() *http.Client {
	return &http.Client{Transport: &retryTransport{base: http.DefaultTransport, retries: 3, baseDelay: time.Millisecond}}
}

func TestRetryTransport(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int
		header     http.Header
		wantStatus int
		wantCalls  int
	}{
		{"success", []int{200}, nil, 200, 1},
		{"two 503 then success", []int{503, 503, 200}, nil, 200, 3},
		{"429 then success", []int{429, 200}, http.Header{"Retry-After": {"0"}}, 200, 2},
		{"500 forever gives up after 3 retries", []int{500}, nil, 500, 4},
		{"400 never retried", []int{400, 200}, nil, 400, 1},
		{"401 never retried", []int{401, 200}, nil, 401, 1},
		{"403 never retried", []int{403, 200}, nil, 403, 1},
		{"404 never retried", []int{404, 200}, nil, 404, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &scriptedServer{statuses: tt.statuses, header: tt.header}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			// A body without GetBody must still be replayed.
			req, _ := http.NewRequest(http.MethodPost, ts.URL, io.NopCloser(strings.NewReader("grant=x&y=z")))
			if req.GetBody != nil {
				t.Fatal("test needs a request without GetBody")
			}
			resp, err := quickRetryClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if want := http.StatusText(tt.wantStatus); string(body) != want {
				t.Errorf("body = %q, want %q", body, want)
			}
			if got := srv.calls(); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			for i, b := range srv.bodies {
				if b != "grant=x&y=z" {
					t.Errorf("request %d body = %q, want the original replayed", i, b)
				}
			}
		})
	}
}

func TestRetryTransportStopsAtDeadline(t *testing.T) {
	srv := &scriptedServer{statuses: []int{503}, header: http.Header{"Retry-After": {"5"}}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
	start := time.Now()
	resp, err := quickRetryClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || srv.calls() != 1 {
		t.Errorf("status %d after %d calls; want the first 503, no wait past the deadline", resp.StatusCode, srv.calls())
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("took %v; a wait that cannot end before the deadline must not start", d)
	}
}

func TestRetryTransportStopsOnCancel(t *testing.T) {
	srv := &scriptedServer{statuses: []int{503}, header: http.Header{"Retry-After": {"3"}}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
	start := time.Now()
	resp, err := quickRetryClient().Do(req)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || string(body) != http.StatusText(http.StatusServiceUnavailable) {
			t.Errorf("got %d %q, want the last 503 answer", resp.StatusCode, body)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v after cancel at 100ms", d)
	}
	if srv.calls() != 1 {
		t.Errorf("calls = %d, want 1", srv.calls())
	}
}

func TestRetryDelay(t *testing.T) {
	rt := &retryTransport{baseDelay: 200 * time.Millisecond}
	tests := []struct {
		attempt    int
		retryAfter string
		lo, hi     time.Duration
	}{
		{0, "", 100 * time.Millisecond, 200 * time.Millisecond},
		{1, "", 200 * time.Millisecond, 400 * time.Millisecond},
		{2, "", 400 * time.Millisecond, 800 * time.Millisecond},
		{0, "1", time.Second, time.Second},
		{0, "0", 0, 0},
		{0, "3600", maxRetryAfter, maxRetryAfter},
		{0, "99999999999999999999", 100 * time.Millisecond, 200 * time.Millisecond}, // unparsable: backoff
		{0, "-3", 100 * time.Millisecond, 200 * time.Millisecond},
		{0, "soon", 100 * time.Millisecond, 200 * time.Millisecond},
		{0, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), maxRetryAfter, maxRetryAfter},
		{0, "Mon, 02 Jan 2006 15:04:05 GMT", 0, 0},
	}
	for _, tt := range tests {
		for range 20 {
			if d := rt.delay(tt.attempt, tt.retryAfter); d < tt.lo || d > tt.hi {
				t.Errorf("delay(%d, %q) = %v, want in [%v, %v]", tt.attempt, tt.retryAfter, d, tt.lo, tt.hi)
				break
			}
		}
	}
}
