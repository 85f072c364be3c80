package token

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// DamagedKeyError is a service-account key whose private_key cannot be
// parsed, most often because a copy and paste turned its line breaks into
// spaces. It never quotes the key.
type DamagedKeyError struct {
	// Where names what holds the key: a file's path, or "the credential JSON".
	Where string
	// Reason says what is wrong with it.
	Reason string
}

// Error says where the damaged key is, what is wrong with it and what to do.
func (e *DamagedKeyError) Error() string {
	return fmt.Sprintf("the private key in %s is damaged (%s); download the key again (Cloud console, or gcloud iam service-accounts keys create)", e.Where, e.Reason)
}

// checkPrivateKeys parses the private key of a service-account credential,
// and of the one an impersonated_service_account starts from, as the token
// endpoint's JWT signer will: PEM, then PKCS#8 or PKCS#1 RSA. Parsing costs
// a little, so it runs when a key is recorded or stored and before a mint
// or a self-signed JWT, never on a cache hit.
func (f *credentialJSON) checkPrivateKeys() error {
	if f.Source != nil {
		if err := f.Source.checkPrivateKeys(); err != nil {
			return err
		}
	}
	if f.Type != typeServiceAccount {
		return nil
	}
	if reason := privateKeyProblem(f.PrivateKey); reason != "" {
		return &DamagedKeyError{Where: "the credential JSON", Reason: reason}
	}
	return nil
}

// privateKeyProblem says why key is not a PEM-encoded RSA private key, or
// returns "".
func privateKeyProblem(key string) string {
	block, rest := pem.Decode([]byte(key))
	if block == nil {
		switch {
		case !strings.Contains(key, "-----BEGIN"):
			return "it is not PEM-encoded: no -----BEGIN PRIVATE KEY----- line"
		case strings.Contains(key, `\n`):
			return `its line breaks are the two characters \n instead of real ones`
		case !strings.Contains(strings.TrimSpace(key), "\n"):
			return "its line breaks are missing, as when it is pasted as one line"
		}
		return "its PEM encoding is broken"
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return "it has extra text after the -----END line"
	}
	parsed, err8 := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err8 != nil {
		var err1 error
		if parsed, err1 = x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
			return "its PEM block does not hold a PKCS#8 or PKCS#1 private key"
		}
	}
	if _, ok := parsed.(*rsa.PrivateKey); !ok {
		return fmt.Sprintf("it is a %T, not an RSA key", parsed)
	}
	return ""
}

// inFile names path as the holder of a damaged key.
func inFile(err error, path string) error {
	var damaged *DamagedKeyError
	if errors.As(err, &damaged) {
		return &DamagedKeyError{Where: path, Reason: damaged.Reason}
	}
	return fmt.Errorf("%s: %w", path, err)
}
