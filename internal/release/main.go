// Command release turns the linux binaries `make` cross-built into dist/
// into release artifacts: .deb and .rpm packages (nfpm) and a multi-arch OCI
// image (go-containerregistry), byte for byte the same on every run from the
// same commit. It is a module of its own, so neither library ends up in the
// docker-credential-gcp binary or in its go.mod. Run by `make packages` and
// `make image`:
//
//	go -C internal/release run . -root CHECKOUT -dist dist -version 1.2.3 -revision HASH packages|image
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	var r release
	root := flag.String("root", ".", "the checkout: its README.md, CHANGELOG.md and LICENSE go into the packages; -dist is relative to it")
	flag.StringVar(&r.dist, "dist", "dist", "directory holding docker-credential-gcp-linux-ARCH and receiving the artifacts")
	flag.StringVar(&r.version, "version", "", "version without a leading v, e.g. 1.2.3 (./version.sh)")
	flag.StringVar(&r.revision, "revision", "", "the git commit the binaries were built from")
	flag.Parse()
	if r.version == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: go -C internal/release run . -root CHECKOUT -dist DIR -version VERSION -revision COMMIT packages|image")
		os.Exit(2)
	}
	err := os.Chdir(*root)
	if err == nil {
		r.created, err = sourceDateEpoch()
	}
	if err == nil {
		switch flag.Arg(0) {
		case "packages":
			err = r.packages()
		case "image":
			err = r.image()
		default:
			err = fmt.Errorf("unknown artifact %q: want packages or image", flag.Arg(0))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// sourceDateEpoch is the time every file, package and image carries:
// $SOURCE_DATE_EPOCH (make sets the commit's time), so rebuilding the same
// commit gives the same bytes.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not seconds since 1970; run through make, which sets the commit's time", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}
