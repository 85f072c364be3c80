package main

import (
	"runtime/debug"
	"testing"
)

// A build without -ldflags reports what its build info says: go install's
// module version (tag or pseudo-version), a checkout's VCS stamp.
func TestFromBuildInfo(t *testing.T) {
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}
	for _, c := range []struct {
		name        string
		info        debug.BuildInfo
		version, id string
	}{
		{"go install @v1.2.3", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "1.2.3", "unknown"},
		{"go install of a commit", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261203083000-abcdef123456"}}, "0.0.0-20261203083000-abcdef123456", "abcdef123456"},
		{"after a tag", debug.BuildInfo{Main: debug.Module{Version: "v1.2.4-0.20261203083000-abcdef123456"}}, "1.2.4-0.20261203083000-abcdef123456", "abcdef123456"},
		{"checkout with changes", debug.BuildInfo{Main: debug.Module{Version: "v1.2.4-0.20261203083000-abcdef123456+dirty"}, Settings: []debug.BuildSetting{rev}}, "1.2.4-0.20261203083000-abcdef123456+dirty", "0123456789ab"},
		{"prerelease tag", debug.BuildInfo{Main: debug.Module{Version: "v1.3.0-rc.1"}}, "1.3.0-rc.1", "unknown"},
		{"no VCS stamp", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev", "unknown"},
		{"devel with revision", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{rev}}, "dev", "0123456789ab"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, id := fromBuildInfo(&c.info, "unknown")
			if v != c.version || id != c.id {
				t.Errorf("got %q (%q), want %q (%q)", v, id, c.version, c.id)
			}
		})
	}
}
