// Package cmd holds the commands for people (configure-docker, token,
// dockerconfig, doctor, ...) and the servers for systems that never call a
// credential helper. main only dispatches to them.
package cmd

import (
	"errors"
	"fmt"
	"io"
	"os/exec"

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
