// Package cmd holds the commands for people (configure-docker, token,
// dockerconfig, doctor, ...) and the servers for systems that never call a
// credential helper. main only dispatches to them.
package cmd

import "io"

// IO is a command's standard streams, so tests can run commands in-process.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}
