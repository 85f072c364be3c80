// Package config owns docker-credential-gcp's own settings file,
// config.json in the user config dir, written by `configure-docker` and read
// by every `get`. Secrets never live here: only paths and host names.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/jsonpos"
)

// maxSize bounds what Load reads: a real settings file is a few hundred bytes.
const maxSize = 1 << 20

// Config is what `configure-docker` records for later `get`s.
type Config struct {
	// KeyFile is the absolute path of a service-account key to mint from
	// when no higher-priority source exists.
	KeyFile string `json:"key_file,omitempty"`
	// Registries are extra hosts, beyond Google's own, that get a token.
	Registries []string `json:"registries,omitempty"`
	// Bindings tie a credential to chosen registry hosts
	// (configure-docker --bind-credentials / --bind-impersonate).
	Bindings []Binding `json:"bindings,omitempty"`
	// SelfSignedJWT makes service-account keys sign their own JWT access
	// tokens instead of asking Google's token endpoint.
	SelfSignedJWT bool `json:"self_signed_jwt,omitempty"`
	// Log is where every call appends one JSON line of trace: an absolute
	// file path or "stderr" (configure-docker --log); "" traces nothing
	// unless DOCKER_CREDENTIAL_GCP_LOG says otherwise.
	Log string `json:"log,omitempty"`
}

// Binding is the identity one registry host uses instead of the default
// source chain: a credential file, an impersonation target, or both.
type Binding struct {
	// Host is the registry host, normalized as helper.ParseHost returns it.
	Host string `json:"host"`
	// CredentialFile is the absolute path of a credential JSON; "" means
	// the default source chain.
	CredentialFile string `json:"credential_file,omitempty"`
	// Impersonate is a service-account e-mail the credential impersonates.
	Impersonate string `json:"impersonate,omitempty"`
}

// Dir is the directory holding our settings and stored credentials:
// os.UserConfigDir()/docker-credential-gcp (honours XDG_CONFIG_HOME).
func Dir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the user config dir: %w", err)
	}
	return filepath.Join(base, "docker-credential-gcp"), nil
}

// EnsureDir creates Dir with mode 0700 if missing and returns it. It
// refuses a Dir that is not private to the user (see CheckDir).
func EnsureDir() (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating config dir: %w", err)
	}
	if err := atomicfile.CheckDir(dir); err != nil {
		return "", fmt.Errorf("refusing to write settings: %w; %s", err, MakePrivateAdvice)
	}
	return dir, nil
}

// MakePrivateAdvice says how to make Dir, the config dir, usable again.
const MakePrivateAdvice = "make it yours and private (chown it to yourself, chmod 700) or set XDG_CONFIG_HOME (HOME on macOS) to a directory of your own"

// CheckDir returns an error matching atomicfile.ErrUntrusted when Dir
// exists but is not private to the user: another user's, or writable by
// group or others, who could then plant settings (adding a registry host
// that would receive tokens) or stored credentials. Only Dir itself is
// checked, and each file in it as it is read, not its parents (see
// atomicfile.CheckDir). A Dir that is missing or cannot be located is fine.
func CheckDir() error {
	dir, err := Dir()
	if err != nil {
		return nil
	}
	return atomicfile.CheckDir(dir)
}

// Path is the settings file's path.
func Path() (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "config.json"), nil
}

// Load reads the settings file; a missing file (or no config dir at all,
// as with HOME unset) is an empty Config, a corrupt one an error naming it,
// one not private to the user an error matching atomicfile.ErrUntrusted.
// Callers check the dir itself with CheckDir.
func Load() (Config, error) {
	var c Config
	path, err := Path()
	if err != nil {
		return c, nil
	}
	data, err := atomicfile.ReadPrivateFile(path, maxSize)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		// ENOTDIR: HOME (or XDG_CONFIG_HOME) is a regular file, so no
		// settings can exist below it; that is no settings, as with HOME unset.
		return c, nil
	}
	if errors.Is(err, atomicfile.ErrUntrusted) {
		return c, fmt.Errorf("settings: %w; make it yours and private (chown it to yourself, chmod 600) or delete it", err)
	}
	if err != nil {
		return c, fmt.Errorf("reading settings: %w (fix or delete the file)", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("parsing %s: %s (fix or delete the file)", path, jsonpos.Describe(err, data))
	}
	return c, nil
}

// Save writes c atomically, mode 0600, creating the config dir 0700.
func Save(c Config) error {
	dir, err := EnsureDir()
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o600)
}
