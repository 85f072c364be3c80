package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drone/drone-go/plugin/registry"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// droneKeyEnv is an isolated user whose drone-registry mints for email
// from a service-account key at the fake Google endpoint.
func droneKeyEnv(t *testing.T, email string) (*Env, *fake.Google) {
	t.Helper()
	g := fake.NewGoogle(t)
	e := NewEnv(t)
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", g.WriteServiceAccountKey(t, t.TempDir(), email))
	e.Set("DRONE_SECRET", srvSecret)
	return e, g
}

// droneSignedPost sends body to endpoint signed as drone-go's client signs
// (Date and the Digest of digestBody among the signed headers) and returns
// the status and response body.
func droneSignedPost(t *testing.T, endpoint, digestBody, body string) (int, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(fake.DroneRequest(t, endpoint, srvSecret, digestBody, body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(data)
}

// A captured request's signature covers its Digest header, so its body
// cannot be swapped for another one.
func TestDroneRegistryChecksBodyDigest(t *testing.T) {
	t.Parallel()
	e, g := droneKeyEnv(t, "drone-digest@proj.iam.gserviceaccount.com")
	p, endpoint := srvDrone(t, e, "--bind", "127.0.0.1:0", "--registries", "gcr.io")

	const signed = `{"repo":{"slug":"octocat/hello-world"},"build":{"number":7}}`
	if code, body := droneSignedPost(t, endpoint, signed, `{"repo":{"slug":"mallory/forged"},"build":{"number":1}}`); code != http.StatusBadRequest {
		t.Errorf("swapped body: status %d (%s), want 400", code, body)
	}
	if n := g.Count("any"); n != 0 {
		t.Errorf("swapped body: %d token requests, want 0", n)
	}
	if code, body := droneSignedPost(t, endpoint, signed, signed); code != http.StatusOK || !strings.Contains(body, `"gcr.io"`) {
		t.Errorf("matching body: status %d (%s), want 200 with gcr.io", code, body)
	}
	if code, _ := p.stop(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	if log := p.log(); strings.Contains(log, "mallory/forged") || !strings.Contains(log, "does not match the signed Digest") {
		t.Errorf("the swapped body was served or its rejection not logged:\n%s", log)
	}
}

// In a container without HOME (no cache dir) the server keeps its token in
// memory: one mint for every request and host. With the cache turned off
// (DOCKER_CREDENTIAL_GCP_NO_CACHE=1) each request mints once for all its
// hosts, never once per host.
func TestDroneRegistryWithoutCacheDir(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		env       map[string]string
		wantMints int
	}{
		"no HOME":  {map[string]string{"HOME": "", "XDG_CACHE_HOME": "", "XDG_CONFIG_HOME": ""}, 1},
		"NO_CACHE": {map[string]string{"DOCKER_CREDENTIAL_GCP_NO_CACHE": "1"}, 3},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e, g := droneKeyEnv(t, "drone-nocache@proj.iam.gserviceaccount.com")
			for k, v := range tc.env {
				e.Set(k, v)
			}
			_, endpoint := srvDrone(t, e, "--bind", "127.0.0.1:0")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			const requests = 3
			client := registry.Client(endpoint, srvSecret, false)
			for i := range requests {
				regs, err := client.List(ctx, srvDroneRequest(i))
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				if len(regs) != len(cmdsDefaultHosts) {
					t.Fatalf("%d registries, want %d", len(regs), len(cmdsDefaultHosts))
				}
			}
			if n := g.Count("jwt"); n != tc.wantMints {
				t.Errorf("%d mints for %d requests over %d hosts, want %d", n, requests, len(cmdsDefaultHosts), tc.wantMints)
			}
		})
	}
}
