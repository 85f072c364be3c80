# docker-credential-gcp — see README.md.
BINARY  := docker-credential-gcp
# 1.2.3 on a v1.2.3 tag, else the commit's Go pseudo-version (see version.sh).
VERSION ?= $(shell ./version.sh)
REVISION ?= $(or $(shell git rev-parse HEAD 2>/dev/null),unknown)
COMMIT  ?= $(shell echo $(REVISION) | cut -c1-12)
# Release artifacts carry the commit's time, not the build's (reproducible).
SOURCE_DATE_EPOCH ?= $(shell ./version.sh -e)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOBUILD := CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$(LDFLAGS)"
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
# The .deb/.rpm packages and the image are built for these (linux) arches.
LINUX_ARCHES := amd64 arm64
# The release tool is a module of its own (internal/release/go.mod), so its
# libraries (nfpm and what it pulls) stay out of the main module's go.mod.
RELEASE = SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) go -C internal/release run . -root "$(CURDIR)" -dist dist -version $(VERSION) -revision $(REVISION)
FUZZTIME ?= 30s

.PHONY: build test test-kubelet modules install clean dist linux-binaries packages image sums bench fuzz lint

build:
	$(GOBUILD) -o $(BINARY) .

# Every test: unit, fuzz seed corpora, end-to-end with the built binary and real clients.
# BuildKit's end-to-end test is a module of its own, which ./... does not
# enter; its timeout covers building buildctl, buildkitd and buildx cold.
test: lint modules
	go test -count=1 -timeout 15m ./...
	go -C e2e/buildkit test -count=1 -timeout 30m ./...
	$(MAKE) test-kubelet

# The kubelet test module (e2e/kubelet, a go.mod of its own, so Kubernetes
# stays out of the main go.mod): the built binary under the real kubelet
# code of the current release (its go.mod), and the README's kubelet configs
# checked by each Kubernetes version they name (go.1.N.mod beside it, with
# go test -modfile). A cold build of the Kubernetes packages takes minutes.
KUBELET_MODFILES := $(notdir $(wildcard e2e/kubelet/go.1.*.mod))
test-kubelet:
	go -C e2e/kubelet vet ./...
	cd e2e/kubelet && "$$(go -C ../.. tool -n staticcheck)" ./...
	go -C e2e/kubelet test -count=1 -timeout 20m ./...
	@for f in $(KUBELET_MODFILES); do \
		echo "go -C e2e/kubelet test -modfile=$$f -count=1 ./readme/"; \
		go -C e2e/kubelet test -modfile=$$f -count=1 ./readme/ || exit 1; \
	done

# What the tests read offline (GOPROXY=off: tests never reach the network)
# and go test itself does not download: the go.mod of every module in the
# graph (the Go-floor test), the modules the binary builds from (which
# e2e/buildkit builds offline, as it does BuildKit and buildx), the
# release tool's modules (make packages and make image in the release
# test) and BuildKit's and buildx's.
modules:
	go list -m all >/dev/null
	go mod download
	go -C internal/release mod download
	go -C e2e/buildkit mod download

# vet also for windows and darwin, so code (tests included) that only one OS
# compiles is caught here rather than on a user's machine.
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	go vet ./...
	GOOS=windows go vet ./...
	GOOS=darwin go vet ./...
	go tool staticcheck ./...
	go -C internal/release vet ./...
	cd internal/release && "$$(go -C ../.. tool -n staticcheck)" ./...
	go -C e2e/buildkit vet ./...
	cd e2e/buildkit && "$$(go -C ../.. tool -n staticcheck)" ./...

install:
	./install.sh

clean:
	rm -rf $(BINARY) dist

# Adds to dist/: the packages and the image, if built, stay beside the
# binaries (make clean empties it).
dist:
	@mkdir -p dist
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "building dist/$(BINARY)-$$os-$$arch$$ext"; \
		GOOS=$$os GOARCH=$$arch $(GOBUILD) -o dist/$(BINARY)-$$os-$$arch$$ext . || exit 1; \
	done
	$(MAKE) sums

# The linux binaries the packages and the image hold, next to make dist's.
linux-binaries:
	@mkdir -p dist
	@for arch in $(LINUX_ARCHES); do \
		echo "building dist/$(BINARY)-linux-$$arch"; \
		GOOS=linux GOARCH=$$arch $(GOBUILD) -o dist/$(BINARY)-linux-$$arch . || exit 1; \
	done

# .deb and .rpm packages for each linux arch into dist/ (nfpm; see internal/release).
packages: linux-binaries
	$(RELEASE) packages
	$(MAKE) sums

# A multi-arch OCI image (go-containerregistry, no docker daemon): dist/oci
# (an OCI layout) and a docker/podman-loadable tarball per arch.
image: linux-binaries
	$(RELEASE) image
	$(MAKE) sums

# SHA256SUMS over every file in dist/.
sums:
	cd dist && find . -maxdepth 1 -type f ! -name SHA256SUMS ! -name '.*' -printf '%P\n' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS

# Benchmarks: in-process hot paths and the reuse policy's mints per hour,
# then whole-process timings of warm gets (key file; metadata server
# answering after 50 ms, which a warm get must not ask; traced to a file) vs version (SPEC §7:
# ratio ≤1.3, warm get ≤5 ms) and cold gets (token endpoint; self-signed JWT);
# last, start-up: version vs a static hello-world Go binary and vs the same
# hello-world linking the libraries the binary is built on (x/oauth2/google,
# net/http, ...: the floor our code cannot go below), 200 turns, medians and
# their ratios (goal ≤1.4 vs hello-world).
bench:
	go test -run '^$$' -bench . -benchmem ./token/ ./helper/ ./trace/
	go test -run '^$$' -bench 'ProcessTimings' -benchtime 60x ./e2e/
	go test -run '^$$' -bench 'Startup' -benchtime 200x ./e2e/

# Fuzz each target for $(FUZZTIME) (make fuzz FUZZTIME=5m); `make test` runs their seed corpora.
fuzz:
	go test -run '^$$' -fuzz '^FuzzParseHostPolicy$$' -fuzztime $(FUZZTIME) ./helper
	go test -run '^$$' -fuzz '^FuzzParseBindings$$' -fuzztime $(FUZZTIME) ./helper
	go test -run '^$$' -fuzz '^FuzzStoreInput$$' -fuzztime $(FUZZTIME) ./helper
	go test -run '^$$' -fuzz '^FuzzStoredFile$$' -fuzztime $(FUZZTIME) ./helper
	go test -run '^$$' -fuzz '^FuzzCacheFile$$' -fuzztime $(FUZZTIME) ./token
	go test -run '^$$' -fuzz '^FuzzConfigRoundTrip$$' -fuzztime $(FUZZTIME) ./dockerconfig
