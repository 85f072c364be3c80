// Command docker-credential-gcp is a docker credential helper for Google's
// registries (gcr.io, *.pkg.dev) that hands out short-lived OAuth2 tokens,
// plus a few commands for people and for systems that cannot run a helper.
// main only parses the command name and dispatches; the work lives in
// helper/, token/ and cmd/.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker/docker-credential-helpers/credentials"
	"golang.org/x/term"

	"github.com/docker-credential-gcp/docker-credential-gcp/cmd"
	"github.com/docker-credential-gcp/docker-credential-gcp/trace"
)

// commands maps each command for people to its implementation.
var commands = map[string]func([]string, cmd.IO) error{
	"configure-docker":            cmd.ConfigureDocker,
	"token":                       cmd.Token,
	"print-access-token":          cmd.Token,
	"dockerconfig":                cmd.DockerConfig,
	"doctor":                      cmd.Doctor,
	"drone-registry":              cmd.DroneRegistry,
	"kubelet-credential-provider": cmd.KubeletCredentialProvider,
}

const usage = `Usage: docker-credential-gcp <command> [flags]

A docker credential helper for gcr.io and *.pkg.dev with short-lived tokens.

Credential helper protocol (called by docker, crane, skopeo, ...):
  get | store | erase | list | version

Commands:
  configure-docker             route Google registries in ~/.docker/config.json to this helper
  token                        print an access token (alias: print-access-token)
  dockerconfig                 print a docker config.json holding a fresh short-lived token
  doctor                       explain which credentials are used and why
  drone-registry               serve a Drone registry extension
  kubelet-credential-provider  act as a kubelet image credential provider
  help, --help                 show this help
  --version                    show the version

Run 'docker-credential-gcp <command> --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], cmd.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}

func run(args []string, stdio cmd.IO) int {
	if len(args) == 0 {
		fmt.Fprint(stdio.Err, usage)
		return 1
	}
	name, rest := args[0], args[1:]
	if text, ok := protocolUsage[name]; ok && asksForHelp(rest) {
		fmt.Fprint(stdio.Out, text)
		return 0
	}
	switch name {
	case "help", "--help", "-h":
		fmt.Fprint(stdio.Out, usage)
		return 0
	case "version", "--version", "-v":
		fmt.Fprintln(stdio.Out, versionLine())
		return 0
	case credentials.ActionGet, credentials.ActionStore, credentials.ActionErase, credentials.ActionList:
		return serveProtocol(name, stdio)
	}
	command, ok := commands[name]
	if !ok {
		fmt.Fprintf(stdio.Err, "docker-credential-gcp: unknown command %q\n\n%s", name, usage)
		return 1
	}
	if err := command(rest, stdio); err != nil {
		fmt.Fprintf(stdio.Err, "docker-credential-gcp %s: %s\n", name, oneLine(err))
		return 1
	}
	return 0
}

// serveProtocol answers one credential-helper action; errors go to stdout
// as one line, the protocol's convention, so docker can relay them.
func serveProtocol(action string, stdio cmd.IO) int {
	if action != credentials.ActionList && isTerminal(stdio.In) {
		what := "server URL (e.g. echo gcr.io | docker-credential-gcp " + action + ")"
		if action == credentials.ActionStore {
			what = `credentials JSON {"ServerURL":...,"Username":...,"Secret":...}`
		}
		fmt.Fprintf(stdio.Err, "docker-credential-gcp %s: reading the %s from stdin\n", action, what)
	}
	call := trace.Start(action)
	h, err := cmd.NewHelper(action, stdio.Err)
	if err == nil {
		err = describeInputError(action, credentials.HandleCommand(cmd.TracedHelper(h, call), action, capInput(stdio.In, action), stdio.Out))
	}
	call.End(err, stdio.Err)
	if err != nil {
		fmt.Fprintln(stdio.Out, oneLine(err))
		return 1
	}
	return 0
}

// describeInputError explains the protocol library's bare decoding errors
// (e.g. "unexpected EOF") by saying what stdin should have held. The
// library reads stdin line by line with a bufio.Scanner, which refuses a
// line longer than bufio.MaxScanTokenSize (64 KiB): that is said in words,
// not as the scanner's "token too long".
func describeInputError(action string, err error) error {
	var syntax *json.SyntaxError
	var wrongType *json.UnmarshalTypeError
	switch {
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("%s: stdin has a line longer than %d KiB; it must hold only %s", action, bufio.MaxScanTokenSize>>10, inputWant(action))
	case errors.As(err, &syntax), errors.As(err, &wrongType), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%s: stdin must hold %s: %w", action, inputWant(action), err)
	}
	return err
}

// inputWant says what stdin must hold for action.
func inputWant(action string) string {
	if action == credentials.ActionStore {
		return `a credentials JSON {"ServerURL":...,"Username":...,"Secret":...}`
	}
	return "a server URL"
}

// oneLine keeps an error to the single line the protocol and users expect.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// isTerminal reports whether r is an interactive terminal (not merely a
// character device such as /dev/null).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
