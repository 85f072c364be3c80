package main

import (
	"path/filepath"
	"time"
)

// What every package and the image say about the project.
const (
	product     = "docker-credential-gcp"
	summary     = "Docker credential helper for Google registries (gcr.io, *.pkg.dev) with short-lived tokens"
	description = summary + "\n" +
		"Mints and caches OAuth2 access tokens from a service-account key, Application\n" +
		"Default Credentials or the metadata server for docker, crane, skopeo, podman,\n" +
		"BuildKit, the Drone runner and the kubelet. Run 'docker-credential-gcp\n" +
		"configure-docker' to route Google's registries in ~/.docker/config.json to it."
	homepage   = "https://github.com/docker-credential-gcp/docker-credential-gcp"
	license    = "Apache-2.0"
	maintainer = "docker-credential-gcp maintainers <docker-credential-gcp@users.noreply.github.com>"
	docDir     = "/usr/share/doc/" + product
	binPath    = "/usr/bin/" + product
)

// arches are the linux architectures packaged, in Go's (and OCI's) naming.
var arches = []string{"amd64", "arm64"}

// release is one run: where the binaries are, what they are.
type release struct {
	dist, version, revision string
	created                 time.Time
}

// binary is the cross-built binary for arch in dist/.
func (r *release) binary(arch string) string {
	return filepath.Join(r.dist, product+"-linux-"+arch)
}
