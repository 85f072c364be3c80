package token

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// accessTokenEnvSource is GOOGLE_OAUTH_ACCESS_TOKEN: a token a CI system
// minted for us, used as-is and never cached.
type accessTokenEnvSource struct{}

func (accessTokenEnvSource) Name() string { return "GOOGLE_OAUTH_ACCESS_TOKEN" }

func (s accessTokenEnvSource) Find(context.Context) (*Credential, error) {
	tok := strings.TrimSpace(os.Getenv("GOOGLE_OAUTH_ACCESS_TOKEN"))
	if tok == "" {
		return nil, NotFound("GOOGLE_OAUTH_ACCESS_TOKEN is not set")
	}
	return readyToken(s.Name(), tok, time.Time{})
}

// adcEnvSource is the credential JSON GOOGLE_APPLICATION_CREDENTIALS names.
type adcEnvSource struct {
	scopes []string
}

func adcEnvPath() string { return strings.TrimSpace(os.Getenv("GOOGLE_APPLICATION_CREDENTIALS")) }

func (adcEnvSource) Name() string {
	if p := adcEnvPath(); p != "" {
		return "GOOGLE_APPLICATION_CREDENTIALS (" + p + ")"
	}
	return "GOOGLE_APPLICATION_CREDENTIALS"
}

func (s adcEnvSource) Find(ctx context.Context) (*Credential, error) {
	path := adcEnvPath()
	if path == "" {
		return nil, NotFound("GOOGLE_APPLICATION_CREDENTIALS is not set")
	}
	data, err := readCredentialFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: point GOOGLE_APPLICATION_CREDENTIALS at a credential JSON file or unset it", path)
	}
	if err != nil {
		return nil, err
	}
	return credentialFromJSON(ctx, s.Name(), data, s.scopes)
}
