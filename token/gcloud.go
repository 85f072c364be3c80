package token

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// gcloudSource is the Application Default Credentials file that
// `gcloud auth application-default login` writes. We read it; we never run gcloud.
type gcloudSource struct {
	scopes []string
}

// gcloudADCPath finds gcloud's well-known file the way gcloud does:
// $CLOUDSDK_CONFIG, else %APPDATA%\gcloud on Windows, else
// ~/.config/gcloud (also on macOS, and regardless of XDG_CONFIG_HOME).
func gcloudADCPath() (string, error) {
	const name = "application_default_credentials.json"
	if dir := strings.TrimSpace(os.Getenv("CLOUDSDK_CONFIG")); dir != "" {
		return filepath.Join(dir, name), nil
	}
	if runtime.GOOS == "windows" {
		dir, err := os.UserConfigDir() // %APPDATA%
		if err != nil {
			return "", err
		}
		return filepath.Join(dir, "gcloud", name), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".config", "gcloud", name), nil
}

func (gcloudSource) Name() string {
	if p, err := gcloudADCPath(); err == nil {
		return "gcloud application default credentials (" + p + ")"
	}
	return "gcloud application default credentials"
}

func (s gcloudSource) Find(ctx context.Context) (*Credential, error) {
	path, err := gcloudADCPath()
	if err != nil {
		return nil, NotFound("cannot locate gcloud's config directory: %v", err)
	}
	data, err := readCredentialFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, NotFound("%s does not exist", path)
	}
	if err != nil {
		return nil, err
	}
	return credentialFromJSON(ctx, s.Name(), data, s.scopes)
}
