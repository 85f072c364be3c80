package helper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

func TestNewMinLifetime(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want time.Duration
	}{
		{"", token.DefaultMinLifetime},
		{"30m", 30 * time.Minute},
		{" 1h5m ", 65 * time.Minute},
	} {
		isolate(t)
		t.Setenv(EnvMinLifetime, tt.env)
		h, err := New()
		if err != nil {
			t.Fatalf("%s=%q: %v", EnvMinLifetime, tt.env, err)
		}
		if got := h.Cache.MinLifetime(); got != tt.want {
			t.Errorf("%s=%q: M = %v, want %v", EnvMinLifetime, tt.env, got, tt.want)
		}
	}
	for _, bad := range []string{"45", "forever", "-1m", "0"} {
		isolate(t)
		t.Setenv(EnvMinLifetime, bad)
		_, err := New()
		if err == nil || !strings.Contains(err.Error(), EnvMinLifetime) || !strings.Contains(err.Error(), "Go duration such as 45m") {
			t.Errorf("%s=%q: error %v, want one naming the variable and the expected form", EnvMinLifetime, bad, err)
		}
	}
}

func TestNewSelfSignedJWT(t *testing.T) {
	for _, tt := range []struct {
		env      string
		recorded bool
		want     bool
	}{
		{"", false, false},
		{"", true, true},
		{"1", false, true},
		{"true", false, true},
		{"0", true, false},
		{"off", true, false},
	} {
		d := isolate(t)
		if tt.recorded {
			dir := filepath.Join(d.config, "docker-credential-gcp")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"self_signed_jwt":true}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		t.Setenv(EnvSelfSignedJWT, tt.env)
		h, err := New()
		if err != nil || h.SelfSignedJWT != tt.want {
			t.Errorf("%s=%q, recorded %v: SelfSignedJWT %v, %v; want %v", EnvSelfSignedJWT, tt.env, tt.recorded, h != nil && h.SelfSignedJWT, err, tt.want)
		}
	}
	isolate(t)
	t.Setenv(EnvSelfSignedJWT, "maybe")
	if _, err := New(); err == nil || !strings.Contains(err.Error(), EnvSelfSignedJWT) {
		t.Errorf("an unclear value gave %v, want an error naming the variable", err)
	}
}
