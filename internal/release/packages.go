package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// packages writes a .deb and an .rpm for each arch into dist/: the binary
// in /usr/bin, README and licence under the doc paths, no scripts (running
// configure-docker stays the user's choice).
func (r *release) packages() error {
	for _, arch := range arches {
		for _, f := range []struct {
			format string
			p      nfpm.Packager
		}{{"deb", deb.Default}, {"rpm", rpm.DefaultRPM}} {
			format, p := f.format, f.p
			info := r.packageInfo(arch, format)
			if err := nfpm.PrepareForPackager(nfpm.WithDefaults(info), format); err != nil {
				return fmt.Errorf("%s %s: %w", format, arch, err)
			}
			path := filepath.Join(r.dist, p.ConventionalFileName(info))
			if err := writePackage(path, p, info); err != nil {
				return err
			}
			fmt.Println("wrote", path)
		}
	}
	return nil
}

// packageInfo is the package's metadata and file list. The version goes in
// as is: nfpm maps a pseudo-version's suffix to each format's prerelease
// spelling (1.2.4~0.2026…, sorting before 1.2.4 as it should).
func (r *release) packageInfo(arch, format string) *nfpm.Info {
	owned := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: r.created}
	}
	// Debian keeps the licence as the package's copyright file; rpm marks
	// docs and the licence as such and keeps the licence apart. rpm also
	// owns only the directories a package lists (dpkg tracks a .deb's
	// itself): listing its two lets rpm -e remove them, not the shared
	// parents.
	doc, licence, licencePath := "", "", docDir+"/copyright"
	var ownDirs []string
	if format == "rpm" {
		licenceDir := "/usr/share/licenses/" + product
		doc, licence, licencePath = files.TypeRPMDoc, files.TypeRPMLicense, licenceDir+"/LICENSE"
		ownDirs = []string{docDir, licenceDir}
	}
	contents := files.Contents{
		{Source: r.binary(arch), Destination: binPath, FileInfo: owned(0o755)},
		{Source: "README.md", Destination: docDir + "/README.md", Type: doc, FileInfo: owned(0o644)},
		{Source: "CHANGELOG.md", Destination: docDir + "/CHANGELOG.md", Type: doc, FileInfo: owned(0o644)},
		{Source: "LICENSE", Destination: licencePath, Type: licence, FileInfo: owned(0o644)},
	}
	for _, dir := range ownDirs {
		contents = append(contents, &files.Content{Destination: dir, Type: files.TypeDir, FileInfo: owned(0o755)})
	}
	return &nfpm.Info{
		Name:        product,
		Arch:        arch,
		Platform:    "linux",
		Version:     r.version,
		Section:     "utils",
		Priority:    "optional",
		Maintainer:  maintainer,
		Vendor:      product,
		Description: description,
		Homepage:    homepage,
		License:     license,
		MTime:       r.created,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Umask:    0o022,
			RPM: nfpm.RPM{
				Summary:   summary,
				Group:     "Applications/System",
				BuildHost: "reproducible",
				Packager:  maintainer,
			},
		},
	}
}

// writePackage writes the package to a temp file beside path, then renames
// it, so a failed run leaves no half package behind.
func writePackage(path string, p nfpm.Packager, info *nfpm.Info) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".package-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := p.Package(info, f); err != nil {
		f.Close()
		return fmt.Errorf("packaging %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
