package cmd

import (
	"slices"
	"strings"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
)

// binding reports whether a per-registry binding applies to host, where it
// was made, and which other hosts are bound (and so never seen by host).
func (r *doctorReport) binding(h *helper.Helper, host string) {
	r.section("Registry binding:")
	var others []string
	for bound := range h.Bindings {
		if bound != host {
			others = append(others, bound)
		}
	}
	slices.Sort(others)
	if b, ok := h.Bindings[host]; ok {
		r.line(doctorUsed, "%s is bound to %s (from %s)", host, b, b.Origin)
		r.line(doctorInfo, "it applies after a credential stored for %s with docker login, before every other source, and replaces DOCKER_CREDENTIAL_GCP_IMPERSONATE", host)
	} else {
		r.line(doctorInfo, "none for %s: it uses the default source chain", host)
	}
	if len(others) > 0 {
		r.line(doctorInfo, "bindings of other hosts, which %s never uses: %s", host, strings.Join(others, ", "))
	}
}
