package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// relCommitTime is when the release test's commit was made: every file in
// the packages and the image must carry it (SOURCE_DATE_EPOCH).
var relCommitTime = time.Date(2026, 12, 3, 8, 30, 0, 0, time.UTC)

// relBuilt is a checkout tagged v1.2.3 after `make packages image`.
type relBuilt struct {
	dir, revision string
}

func (b relBuilt) dist(name string) string { return filepath.Join(b.dir, "dist", name) }

// relBuild makes packages and the image in a fresh clone of repo.
func relBuild(t *testing.T, repo string) relBuilt {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "clone")
	verGit(t, "", "", "clone", "-q", repo, dir)
	start := time.Now()
	instMake(t, dir, "packages", "image")
	t.Logf("make packages image in %s: %v", dir, time.Since(start).Round(time.Millisecond))
	return relBuilt{dir: dir, revision: verGit(t, dir, "", "rev-parse", "HEAD")}
}

// relFiles is every file under dir (relative name → bytes).
func relFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[rel] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// make packages and make image on a v1.2.3 tag: the .deb installs and runs,
// the .rpm and the image say 1.2.3 and hold the built binary, and building
// the same commit again in another directory gives the same bytes.
func TestReleaseArtifacts(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("SKIP: make is not installed")
	}
	repo := verRepo(t, relCommitTime.Format(time.RFC3339))
	verGit(t, repo, "", "tag", "v1.2.3")
	a := relBuild(t, repo)

	t.Run("deb", func(t *testing.T) { relCheckDeb(t, a) })
	t.Run("rpm", func(t *testing.T) { relCheckRPM(t, a) })
	t.Run("image", func(t *testing.T) { relCheckImage(t, a) })
	t.Run("podman", func(t *testing.T) { relCheckPodman(t, a) })
	t.Run("reproducible", func(t *testing.T) {
		b := relBuild(t, repo)
		fa, fb := relFiles(t, filepath.Join(a.dir, "dist")), relFiles(t, filepath.Join(b.dir, "dist"))
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range fa {
				if !yield(n) {
					return
				}
			}
		})
		for _, n := range names {
			if !bytes.Equal(fa[n], fb[n]) {
				t.Errorf("dist/%s differs between two builds of the same commit", n)
			}
		}
		if len(fa) != len(fb) {
			t.Errorf("the two builds wrote %d and %d files", len(fa), len(fb))
		}
		t.Logf("%d files identical, image %s", len(fa), bytes.TrimSpace(fa["docker-credential-gcp_1.2.3_image.digest"]))
	})
	// Last: it adds to a's dist/.
	t.Run("dist keeps packages and image", func(t *testing.T) { relCheckDistKeeps(t, a) })
}

// relCheckDistKeeps runs make dist (for one platform, to be quick) after
// make packages image: the packages and the image stay beside the new
// binary, as the README says, and SHA256SUMS covers them all.
func relCheckDistKeeps(t *testing.T, b relBuilt) {
	before := relFiles(t, filepath.Join(b.dir, "dist"))
	instMake(t, b.dir, "dist", "PLATFORMS=linux/amd64")
	after := relFiles(t, filepath.Join(b.dir, "dist"))
	for name := range before {
		if _, ok := after[name]; !ok {
			t.Errorf("make dist deleted dist/%s", name)
		}
	}
	sums := string(after["SHA256SUMS"])
	for _, name := range []string{"docker-credential-gcp_1.2.3_amd64.deb", "docker-credential-gcp-1.2.3-1.x86_64.rpm", "docker-credential-gcp_1.2.3_linux_amd64.image.tar", "docker-credential-gcp-linux-amd64"} {
		if !strings.Contains(sums, "  "+name+"\n") {
			t.Errorf("SHA256SUMS after make dist lacks %s:\n%s", name, sums)
		}
	}
}

// relCheckDeb installs the .deb into a throwaway root (the host's dpkg
// state is untouched), runs the installed binary and removes the package.
func relCheckDeb(t *testing.T, b relBuilt) {
	deb := b.dist("docker-credential-gcp_1.2.3_amd64.deb")
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("SKIP: dpkg is not installed; the .deb was built but not installed")
	}
	field := func(name string) string {
		out, err := exec.Command("dpkg-deb", "-f", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	for name, want := range map[string]string{
		"Package": "docker-credential-gcp", "Version": "1.2.3", "Architecture": "amd64",
		"Homepage": "https://github.com/docker-credential-gcp/docker-credential-gcp", "Section": "utils",
	} {
		if got := field(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(field("Description"), "Docker credential helper for Google registries") || !strings.Contains(field("Maintainer"), "<") {
		t.Errorf("Description %q, Maintainer %q", field("Description"), field("Maintainer"))
	}
	ctrl, err := exec.Command("dpkg-deb", "--ctrl-tarfile", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	if names := relTarNames(t, ctrl); !slices.Equal(names, []string{"./control", "./md5sums"}) {
		t.Errorf("control archive holds %q; no maintainer scripts (configure-docker stays the user's choice)", names)
	}

	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg := func(args ...string) {
		t.Helper()
		c := exec.Command("dpkg", append([]string{"--root=" + root, "--log=/dev/null", "--force-not-root"}, args...)...)
		c.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("dpkg %v: %v\n%s", args, err, out)
		}
	}
	dpkg("-i", deb)
	bin := filepath.Join(root, "usr/bin/docker-credential-gcp")
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("installed docker-credential-gcp version: %v", err)
	}
	if want := "docker-credential-gcp 1.2.3 (" + b.revision[:12] + ", go"; !strings.HasPrefix(string(out), want) {
		t.Errorf("installed binary says %q, want %q…", out, want)
	}
	relSameFile(t, bin, b.dist("docker-credential-gcp-linux-amd64"))
	relSameFile(t, filepath.Join(root, "usr/share/doc/docker-credential-gcp/copyright"), filepath.Join(b.dir, "LICENSE"))
	relSameFile(t, filepath.Join(root, "usr/share/doc/docker-credential-gcp/README.md"), filepath.Join(b.dir, "README.md"))
	dpkg("-r", "docker-credential-gcp")
	if _, err := os.Stat(bin); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dpkg -r left %s: %v", bin, err)
	}
}

// relCheckRPM reads both .rpm files back with rpm: fields, files, no scripts.
func relCheckRPM(t *testing.T, b relBuilt) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("SKIP: rpm is not installed (.ci/run installs it); the .rpm files were built but not read back")
	}
	for arch, rpmArch := range map[string]string{"amd64": "x86_64", "arm64": "aarch64"} {
		path := b.dist("docker-credential-gcp-1.2.3-1." + rpmArch + ".rpm")
		q := func(args ...string) string {
			out, err := exec.Command("rpm", append([]string{"-qp"}, append(args, path)...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("rpm -qp %v %s: %v\n%s", args, path, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		want := "docker-credential-gcp 1.2.3 1 " + rpmArch + " Apache-2.0 https://github.com/docker-credential-gcp/docker-credential-gcp"
		if got := q("--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE} %{URL}"); got != want {
			t.Errorf("%s: %q, want %q", arch, got, want)
		}
		// The package owns its doc and licence directories (rpm -e removes
		// them), not the shared /usr/bin or /usr/share/doc.
		files := strings.Split(q("--qf", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILENAMES}\n]"), "\n")
		wantFiles := []string{
			"-rwxr-xr-x root /usr/bin/docker-credential-gcp",
			"drwxr-xr-x root /usr/share/doc/docker-credential-gcp",
			"-rw-r--r-- root /usr/share/doc/docker-credential-gcp/CHANGELOG.md",
			"-rw-r--r-- root /usr/share/doc/docker-credential-gcp/README.md",
			"drwxr-xr-x root /usr/share/licenses/docker-credential-gcp",
			"-rw-r--r-- root /usr/share/licenses/docker-credential-gcp/LICENSE",
		}
		slices.Sort(files)
		slices.Sort(wantFiles)
		if !slices.Equal(files, wantFiles) {
			t.Errorf("%s files:\n%s\nwant\n%s", arch, strings.Join(files, "\n"), strings.Join(wantFiles, "\n"))
		}
		if s := q("--scripts"); s != "" {
			t.Errorf("%s has scripts: %s", arch, s)
		}
		if s := q("--qf", "%{BUILDTIME}"); s != strconv.FormatInt(relCommitTime.Unix(), 10) {
			t.Errorf("%s build time %s, want the commit's %d", arch, s, relCommitTime.Unix())
		}
	}
}

// relCheckImage loads the OCI layout and the per-arch tarballs with
// go-containerregistry and checks what a registry and a runtime would see.
func relCheckImage(t *testing.T, b relBuilt) {
	// The layout is data: every file 0644, every directory 0755.
	err := filepath.WalkDir(b.dist("oci"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if want := fs.FileMode(0o644); err == nil && !d.IsDir() && fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		} else if want := fs.ModeDir | 0o755; err == nil && d.IsDir() && fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	root, err := layout.ImageIndexFromPath(b.dist("oci"))
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil || len(rm.Manifests) != 1 {
		t.Fatalf("index.json: %v, %+v", err, rm)
	}
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := idx.Digest()
	if written, _ := os.ReadFile(b.dist("docker-credential-gcp_1.2.3_image.digest")); strings.TrimSpace(string(written)) != digest.String() {
		t.Errorf("digest file says %q, the layout's index is %s", written, digest)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.version":  "1.2.3",
		"org.opencontainers.image.revision": b.revision,
		"org.opencontainers.image.source":   "https://github.com/docker-credential-gcp/docker-credential-gcp",
		"org.opencontainers.image.created":  relCommitTime.Format(time.RFC3339),
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	relHasLabels(t, "index annotations", im.Annotations, wantLabels)
	var platforms []string
	for _, m := range im.Manifests {
		arch := m.Platform.Architecture
		platforms = append(platforms, m.Platform.OS+"/"+arch)
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OS != "linux" || cfg.Architecture != arch || cfg.Config.User != "65532:65532" ||
			!slices.Equal(cfg.Config.Entrypoint, []string{"/usr/bin/docker-credential-gcp"}) || !cfg.Created.Time.Equal(relCommitTime) {
			t.Errorf("%s config: os %s arch %s user %q entrypoint %q created %v", arch, cfg.OS, cfg.Architecture, cfg.Config.User, cfg.Config.Entrypoint, cfg.Created)
		}
		relHasLabels(t, arch+" labels", cfg.Config.Labels, wantLabels)
		manifest, _ := img.Manifest()
		relHasLabels(t, arch+" manifest annotations", manifest.Annotations, wantLabels)

		files := relImageFiles(t, img)
		bin, err := os.ReadFile(b.dist("docker-credential-gcp-linux-" + arch))
		if err != nil {
			t.Fatal(err)
		}
		f := files["usr/bin/docker-credential-gcp"]
		if f.data == nil || !bytes.Equal(f.data, bin) || f.mode&0o111 == 0 {
			t.Errorf("%s: /usr/bin/docker-credential-gcp is not the built binary (%d bytes, mode %o)", arch, len(f.data), f.mode)
		}
		if h := files["home/nonroot"]; h.uid != 65532 {
			t.Errorf("%s: /home/nonroot is owned by %d, not the image's user", arch, h.uid)
		}
		relCheckRoots(t, files["etc/ssl/certs/ca-certificates.crt"].data)

		// The per-arch tarball docker load and podman load take is the same image.
		tb, err := tarball.ImageFromPath(b.dist("docker-credential-gcp_1.2.3_linux_"+arch+".image.tar"), nil)
		if err != nil {
			t.Fatal(err)
		}
		// (docker load keeps the config and layers; the image ID is the config's digest)
		tc, _ := tb.ConfigName()
		ic, _ := img.ConfigName()
		tl, _ := tb.Layers()
		il, _ := img.Layers()
		if tc != ic || len(tl) != len(il) {
			t.Errorf("%s tarball holds config %s (%d layers), the index's image %s (%d layers)", arch, tc, len(tl), ic, len(il))
		}
		for i := range min(len(tl), len(il)) {
			td, _ := tl[i].DiffID()
			id, _ := il[i].DiffID()
			if td != id {
				t.Errorf("%s tarball layer %d is %s, the index's %s", arch, i, td, id)
			}
		}
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %q", platforms)
	}
	t.Logf("image index %s", digest)
}

// relCheckRoots: the CA bundle parses and holds the roots Google's
// endpoints chain to (Google Trust Services).
func relCheckRoots(t *testing.T, data []byte) {
	t.Helper()
	var n int
	var gts bool
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("CA bundle: %v", err)
		}
		n++
		gts = gts || c.Subject.CommonName == "GTS Root R1"
	}
	if n < 100 || !gts {
		t.Errorf("CA bundle has %d roots (GTS Root R1: %v)", n, gts)
	}
}

// relImageFile is one file of an image's flattened filesystem.
type relImageFile struct {
	data []byte
	mode int64
	uid  int
}

func relImageFiles(t *testing.T, img v1.Image) map[string]relImageFile {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]relImageFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		} else if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			data = nil
		}
		files[strings.TrimSuffix(h.Name, "/")] = relImageFile{data: data, mode: h.Mode, uid: h.Uid}
	}
}

func relHasLabels(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s=%q, want %q", what, k, got[k], v)
		}
	}
}

// relTarNames lists the entries of an uncompressed tar stream.
func relTarNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		} else if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func relSameFile(t *testing.T, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// relCheckPodman loads the tarball into a throwaway podman store and runs
// the image's version command, where this machine lets podman run containers.
func relCheckPodman(t *testing.T, b relBuilt) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("SKIP: podman is not installed; the image tarball was checked with go-containerregistry only")
	}
	// Not t.TempDir: after a failed run podman's cleanup process may still
	// be writing into the store when the test ends, which fails TempDir's
	// removal. The store is removed with retries once podman has let go.
	store, err := os.MkdirTemp("", "dcg-podman-")
	if err != nil {
		t.Fatal(err)
	}
	podman := func(args ...string) (string, error) {
		c := exec.Command("podman", append([]string{"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs"}, args...)...)
		c.Env = append(os.Environ(), "HOME="+store, "XDG_RUNTIME_DIR="+store, "XDG_CONFIG_HOME="+store)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		_, _ = podman("rm", "--all", "--force")
		removeWithRetries(t, store)
	})
	if out, err := podman("load", "-i", b.dist("docker-credential-gcp_1.2.3_linux_amd64.image.tar")); err != nil || !strings.Contains(out, "docker-credential-gcp:1.2.3") {
		t.Fatalf("podman load: %v\n%s", err, out)
	}
	out, err := podman("run", "--rm", "--network", "none", "docker-credential-gcp:1.2.3", "version")
	if err != nil && strings.Contains(out, "OCI") {
		t.Skipf("SKIP: podman loaded the image but cannot run containers on this machine: %s", strings.TrimSpace(out))
	}
	if want := "docker-credential-gcp 1.2.3 (" + b.revision[:12] + ", go"; err != nil || !strings.HasPrefix(out, want) {
		t.Errorf("podman run IMAGE version: %v: %q, want %q…", err, out, want)
	}
}

// removeWithRetries removes dir, retrying for a few seconds while
// something (podman's cleanup) still writes into it; what is left after
// that is logged, not a failure of the test.
func removeWithRetries(t *testing.T, dir string) {
	var err error
	for range 50 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("could not remove podman's throwaway store %s: %v", dir, err)
}

// nfpm and go-containerregistry build the release artifacts only: neither
// may end up in the helper binary (SPEC §7's size bar, the hot path).
func TestReleaseLibrariesStayOutOfTheBinary(t *testing.T) {
	t.Parallel()
	c := exec.Command("go", "list", "-deps", ".")
	c.Dir = instRepo(t)
	out, err := c.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, lib := range []string{"github.com/goreleaser/", "github.com/google/go-containerregistry", "golang.org/x/crypto/x509roots", "/internal/release"} {
			if strings.Contains(dep, lib) {
				t.Errorf("the binary imports %s", dep)
			}
		}
	}
}
