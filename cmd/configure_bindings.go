package cmd

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/docker-credential-gcp/docker-credential-gcp/config"
	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
)

// newBinding is the binding configure-docker --bind-* records for each
// --registries host, checked before anything is written.
type newBinding struct {
	config.Binding
	principal string // of the credential file, for the user's note
}

// bindingFlags checks --bind-credentials and --bind-impersonate: they
// need hosts named by --registries, cannot go with --remove, and name a
// usable credential file and a service-account e-mail. It returns nil when
// neither flag is given.
func bindingFlags(fileSet, targetSet bool, file, target string, registriesSet, allRegions, remove bool) (*newBinding, error) {
	if !fileSet && !targetSet {
		return nil, nil
	}
	switch {
	case remove:
		return nil, errors.New("--remove cannot be combined with --bind-credentials or --bind-impersonate; --remove --registries HOST --forget-bindings drops the binding of HOST")
	case !registriesSet || allRegions:
		return nil, errors.New("--bind-credentials and --bind-impersonate bind only the hosts named by --registries: add --registries HOST,... (not --all-regions)")
	case fileSet && strings.TrimSpace(file) == "":
		return nil, errors.New("--bind-credentials needs a credential file path")
	case targetSet && strings.TrimSpace(target) == "":
		return nil, errors.New("--bind-impersonate needs a service-account e-mail")
	}
	var b newBinding
	if fileSet {
		path, principal, err := checkCredentialFile("--bind-credentials", file)
		if err != nil {
			return nil, err
		}
		b.CredentialFile, b.principal = path, principal
	}
	if targetSet {
		if err := helper.CheckServiceAccount(target); err != nil {
			return nil, fmt.Errorf("--bind-impersonate: %w", err)
		}
		b.Impersonate = strings.TrimSpace(target)
	}
	return &b, nil
}

// describe says what the binding does, for the user's note.
func (b *newBinding) describe() string {
	var parts []string
	if b.CredentialFile != "" {
		who := ""
		if b.principal != "" {
			who = " (" + b.principal + ")"
		}
		parts = append(parts, "credential file "+b.CredentialFile+who)
	} else {
		parts = append(parts, "whatever source wins")
	}
	if b.Impersonate != "" {
		parts = append(parts, "impersonating "+b.Impersonate)
	}
	return strings.Join(parts, ", ")
}

// changeBindings applies ch to the recorded bindings: hosts whose
// bindings are forgotten lose them, new ones replace a host's old one. It
// adds notes for the user.
func changeBindings(bindings []config.Binding, ch settingsChange, notes []string) ([]config.Binding, []string) {
	bindings = slices.DeleteFunc(bindings, func(b config.Binding) bool {
		if slices.Contains(ch.forgetBindings, b.Host) {
			notes = append(notes, "forgot the binding of "+b.Host)
			return true
		}
		return false
	})
	for _, n := range ch.bind {
		if i := slices.IndexFunc(bindings, func(b config.Binding) bool { return b.Host == n.Host }); i >= 0 {
			bindings[i] = n
		} else {
			bindings = append(bindings, n)
		}
	}
	if len(bindings) == 0 {
		bindings = nil
	}
	return bindings, notes
}
