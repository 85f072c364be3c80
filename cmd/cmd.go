// Package cmd holds the commands for people (configure-docker, token,
// dockerconfig, doctor, ...) and the servers for systems that never call a
// credential helper. main only dispatches to them.
package cmd

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/spf13/pflag"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
)

// IO is a command's standard streams, so tests can run commands in-process.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// newFlags makes a command's flag set: GNU-style flags, parse errors on
// stderr, and --help (the command's usage text, then its flags) on stdout.
func newFlags(name, usage string, stdio IO) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() { fmt.Fprint(stdio.Out, usage+fs.FlagUsages()) }
	return fs
}

// parseFlags parses a command's flags; commands take no positional
// arguments. help is true when --help was shown and the command is done.
func parseFlags(fs *pflag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return true, nil
		}
		return false, err
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return false, nil
}

// registryFlag defines --registry HOST for a command that serves one
// registry (token, doctor). It is also spelt --registries, as the commands
// that take a list spell theirs, so neither spelling is an unknown flag.
func registryFlag(fs *pflag.FlagSet, usage string) *string {
	alsoSpelt(fs, "registries", "registry")
	return fs.String("registry", defaultTokenRegistry, usage+"; also spelt --registries")
}

// registriesFlag defines --registries HOST,... for a command that takes a
// list (configure-docker, dockerconfig, drone-registry), also spelt
// --registry.
func registriesFlag(fs *pflag.FlagSet, def []string, usage string) *[]string {
	alsoSpelt(fs, "registry", "registries")
	return fs.StringSlice("registries", def, usage+"; also spelt --registry")
}

// alsoSpelt makes --alias mean --name.
func alsoSpelt(fs *pflag.FlagSet, alias, name string) {
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, n string) pflag.NormalizedName {
		if n == alias {
			return pflag.NormalizedName(name)
		}
		return pflag.NormalizedName(n)
	})
}

// oneRegistry refuses a list given to a command that serves one registry.
// It never quotes the value: a host's user info may hold a password.
func oneRegistry(command, value string) error {
	if strings.Contains(value, ",") {
		return fmt.Errorf("--registry takes one HOST: %s serves one registry at a time (run it once per registry)", command)
	}
	return nil
}

// NewHelper is helper.New for command name, printing on w each thing New
// ignored and why (e.g. settings in a config dir not private to the user),
// one line each: every command and the protocol actions start with it.
func NewHelper(name string, w io.Writer) (*helper.Helper, error) {
	h, err := helper.New()
	if err != nil {
		return nil, err
	}
	h.WriteWarnings(w, name)
	h.Warn = func(msg string) { fmt.Fprintf(w, "docker-credential-gcp %s: warning: %s\n", name, msg) }
	return h, nil
}

// helperOnPath is where docker would find docker-credential-gcp on PATH;
// configure-docker warns and doctor reports when it is not there.
func helperOnPath() (string, error) {
	return exec.LookPath("docker-credential-" + helperName)
}
