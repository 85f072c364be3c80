package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// startupMaxAllocs bounds the allocations each of our packages makes at
// start-up: a few errors, maps and clients, not compiled regexps or
// tables (which wait for first use, sync.OnceValue).
const startupMaxAllocs = 32

// Every command, get included, pays for what our packages do at
// start-up, before main runs: GODEBUG=inittrace=1 shows it per package.
func TestStartupDefersWork(t *testing.T) {
	t.Parallel()
	e := NewEnv(t)
	e.Set("GODEBUG", "inittrace=1")
	r := e.Run("", "version")
	if r.Code != 0 {
		t.Fatalf("version: exit %d, stderr %q", r.Code, r.Stderr)
	}
	// init PACKAGE @0.5 ms, 0.02 ms clock, 736 bytes, 19 allocs
	line := regexp.MustCompile(`(?m)^init (\S+) @.* ([0-9]+) bytes, ([0-9]+) allocs$`)
	var seen int
	for _, m := range line.FindAllStringSubmatch(r.Stderr, -1) {
		pkg := m[1]
		if pkg != "main" && !strings.HasPrefix(pkg, "github.com/docker-credential-gcp/docker-credential-gcp/") {
			continue
		}
		seen++
		if allocs, _ := strconv.Atoi(m[3]); allocs > startupMaxAllocs {
			t.Errorf("package %s allocates %d times (%s bytes) at start-up, more than %d: build what it needs on first use (sync.OnceValue)", pkg, allocs, m[2], startupMaxAllocs)
		}
	}
	if seen == 0 {
		t.Fatalf("GODEBUG=inittrace=1 showed none of our packages:\n%s", r.Stderr)
	}
}
