package helper

import (
	"errors"
	"fmt"
	"io"

	"github.com/docker-credential-gcp/docker-credential-gcp/config"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
)

// noConfigDir is why there is no store when no config dir can be located.
const noConfigDir = "no config dir (HOME and XDG_CONFIG_HOME unset)"

// settings is what New takes from the config dir.
type settings struct {
	cfg      config.Config
	store    *Store
	noStore  string   // why store is nil
	warnings []string // what was ignored and why, for stderr
}

// loadSettings reads our settings and opens the store, unless the config
// dir is not private to the user (another user could have planted a
// settings file adding their registry, which would then receive our
// tokens): then both are ignored, with a warning saying which dir and what
// to do. A settings file not private to the user is ignored the same way.
func loadSettings() (settings, error) {
	var s settings
	if err := config.CheckDir(); errors.Is(err, atomicfile.ErrUntrusted) {
		s.noStore = "ignored: " + err.Error()
		s.warnings = append(s.warnings, fmt.Sprintf("ignoring the settings and stored credentials: %v; %s", err, config.MakePrivateAdvice))
		return s, nil
	}
	// Any other failure (not a directory) means there are no settings to
	// read, as with HOME unset; Load and the store report it when asked.
	cfg, err := config.Load()
	switch {
	case errors.Is(err, atomicfile.ErrUntrusted):
		s.warnings = append(s.warnings, "ignoring the "+err.Error())
	case err != nil:
		return s, err
	default:
		s.cfg = cfg
	}
	s.noStore = noConfigDir
	if store, err := DefaultStore(); err == nil {
		s.store, s.noStore = store, ""
	}
	return s, nil
}

// storeMissing says why h has no store.
func (h *Helper) storeMissing() string {
	if h.noStore != "" {
		return h.noStore
	}
	return noConfigDir
}

// WriteWarnings prints h.Warnings on w as command name's, one line each.
func (h *Helper) WriteWarnings(w io.Writer, name string) {
	for _, warning := range h.Warnings {
		fmt.Fprintf(w, "docker-credential-gcp %s: warning: %s\n", name, warning)
	}
}
