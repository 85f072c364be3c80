package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonroot is the uid and gid the image runs as (distroless's "nonroot").
const nonroot = 65532

// image writes the multi-arch image as an OCI layout (dist/oci) and, per
// arch, a tarball that docker load and podman load take, tagged
// docker-credential-gcp:VERSION.
func (r *release) image() error {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	base, err := r.baseLayer()
	if err != nil {
		return err
	}
	for _, arch := range arches {
		img, err := r.archImage(arch, base)
		if err != nil {
			return fmt.Errorf("image for linux/%s: %w", arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
		tag, err := name.NewTag(product + ":" + r.tag())
		if err != nil {
			return err
		}
		path := filepath.Join(r.dist, fmt.Sprintf("%s_%s_linux_%s.image.tar", product, r.version, arch))
		if err := tarball.WriteToFile(path, tag, img); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		fmt.Println("wrote", path)
	}
	idx = mutate.Annotations(idx, r.labels()).(v1.ImageIndex)

	dir := filepath.Join(r.dist, "oci")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": r.tag()})); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := dataModes(dir); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s (index %s)\n", dir, digest)
	return os.WriteFile(filepath.Join(r.dist, product+"_"+r.version+"_image.digest"), []byte(digest.String()+"\n"), 0o644)
}

// dataModes makes every file under dir 0644 and every directory 0755: the
// layout is data anyone may read, none of it executable, whatever modes
// go-containerregistry wrote it with (0755 for index.json, 0600 for blobs
// renamed from temp files).
func dataModes(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
}

// tag is the version as an image tag (which has no '+').
func (r *release) tag() string {
	return strings.ReplaceAll(r.version, "+", "-")
}

// labels are the OCI annotations on the index and each manifest, and the
// labels in each image config: the same version as the packages.
func (r *release) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       product,
		"org.opencontainers.image.description": summary,
		"org.opencontainers.image.version":     r.version,
		"org.opencontainers.image.revision":    r.revision,
		"org.opencontainers.image.source":      homepage,
		"org.opencontainers.image.url":         homepage,
		"org.opencontainers.image.licenses":    license,
		"org.opencontainers.image.created":     r.created.Format(time.RFC3339),
	}
}

// archImage is the image for one arch: the shared base layer and the binary.
func (r *release) archImage(arch string, base v1.Layer) (v1.Image, error) {
	bin, err := os.ReadFile(r.binary(arch))
	if err != nil {
		return nil, fmt.Errorf("%w (run make packages or make image, which build it)", err)
	}
	binLayer, err := r.layer([]tarEntry{
		{name: "usr/", mode: 0o755},
		{name: "usr/bin/", mode: 0o755},
		{name: strings.TrimPrefix(binPath, "/"), mode: 0o755, data: bin},
	})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: r.created}, CreatedBy: "CA roots, /home/nonroot, /tmp"}, MediaType: types.OCILayer},
		mutate.Addendum{Layer: binLayer, History: v1.History{Created: v1.Time{Time: r.created}, CreatedBy: binPath}, MediaType: types.OCILayer},
	)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: r.created}
	cfg.Config.Entrypoint = []string{binPath}
	cfg.Config.Cmd = nil
	cfg.Config.User = fmt.Sprintf("%d:%d", nonroot, nonroot)
	cfg.Config.WorkingDir = "/home/nonroot"
	cfg.Config.Env = []string{"PATH=/usr/bin", "HOME=/home/nonroot"}
	cfg.Config.Labels = r.labels()
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, r.labels()).(v1.Image), nil
}

// baseLayer holds what the binary needs around it in an otherwise empty
// image: CA roots to reach Google, a home and /tmp for its token cache.
func (r *release) baseLayer() (v1.Layer, error) {
	return r.layer([]tarEntry{
		{name: "etc/", mode: 0o755},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: caBundle()},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonroot},
		{name: "tmp/", mode: 0o1777},
	})
}

// tarEntry is one file or (name ending in /) directory of a layer.
type tarEntry struct {
	name string
	mode int64
	uid  int
	data []byte
}

// layer is an OCI layer of entries, every timestamp the commit's time.
func (r *release) layer(entries []tarEntry) (v1.Layer, error) {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: r.created, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		}
		if err := w.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := w.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	data := b.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
