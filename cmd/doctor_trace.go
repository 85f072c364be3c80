package cmd

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/docker-credential-gcp/docker-credential-gcp/config"
	"github.com/docker-credential-gcp/docker-credential-gcp/trace"
)

// doctorTraceLines is how many of the trace's last lines doctor shows.
const doctorTraceLines = 5

// trace reports where each call's trace line goes, and the last lines
// written there.
func (r *doctorReport) trace() {
	r.section("Trace:")
	// A settings file that cannot be read was reported above; without it
	// only the environment can ask for a trace.
	cfg, _ := config.Load()
	dest := trace.Destination(cfg.Log)
	from := "recorded by configure-docker --log"
	if strings.TrimSpace(os.Getenv(trace.EnvLog)) != "" {
		from = "from " + trace.EnvLog
	}
	switch dest {
	case "":
		r.line(doctorInfo, "off; set %s=FILE (or stderr), or run configure-docker --log FILE, to record one JSON line per call", trace.EnvLog)
		return
	case trace.Stderr:
		r.line(doctorInfo, "each call writes its line to stderr (%s)", from)
		return
	}
	r.line(doctorInfo, "each call appends its line to %s (%s)", dest, from)
	lines, err := trace.Tail(dest, doctorTraceLines)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.line(doctorInfo, "no call traced there yet")
	case err != nil:
		r.line(doctorWarn, "cannot be read: %v; calls carry on untraced, with one warning on stderr", err)
	case len(lines) == 0:
		r.line(doctorInfo, "no call traced there yet")
	default:
		r.line(doctorInfo, "last %d lines:", len(lines))
		for _, l := range lines {
			r.line(doctorInfo, "%s", l)
		}
	}
}
