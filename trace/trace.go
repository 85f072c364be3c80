// Package trace records what each call of the helper did, one JSON line
// per call, so that a push that failed in the middle of a build can be
// explained afterwards: which identity served it, whether the token came
// from the cache, how long it had left. Every command calls it at its edge
// (Start, then End); the token package only fills a token.Report. A trace
// never holds a secret, and a trace that cannot be written never fails or
// slows the call it records.
package trace

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"
	"golang.org/x/oauth2"

	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// EnvLog names where the trace goes: a file path, or Stderr. It wins over
// the path configure-docker --log recorded; Off turns a recorded trace off.
const EnvLog = "DOCKER_CREDENTIAL_GCP_LOG"

// Destinations that are not file paths.
const (
	// Stderr writes each line to the command's standard error.
	Stderr = "stderr"
	// Off, in EnvLog, turns off a trace configure-docker recorded.
	Off = "off"
)

// Outcome is how a call ended.
type Outcome string

// The outcomes a line may record.
const (
	// Served: the call did its work (a token handed out, a credential stored).
	Served Outcome = "served"
	// NotOurs: the host is not a registry this helper serves; no source
	// was looked at and nothing was sent anywhere.
	NotOurs Outcome = "not ours"
	// NotFound: the host is ours, but no credential exists for it.
	NotFound Outcome = "not found"
	// Failed: the call failed; the line's error says why.
	Failed Outcome = "error"
)

// Call is one traced call of a command: what it learnt as it went, written
// as one line by End. A Call is used by one goroutine.
type Call struct {
	command  string
	start    time.Time
	recorded string
	report   token.Report

	host      string
	outcome   Outcome
	source    string
	principal string
	binding   string
	expiry    time.Time
	secrets   []string
	attrs     []slog.Attr
}

// Start begins the trace of one call of command. It does no I/O: whether
// and where the line goes is decided by End.
func Start(command string) *Call {
	return &Call{command: command, start: time.Now()}
}

// Context returns ctx carrying the call's token.Report, which the token
// package fills with what the cache did and how many requests were sent.
func (c *Call) Context(ctx context.Context) context.Context {
	return token.WithReport(ctx, &c.report)
}

// Recorded sets the destination configure-docker --log recorded in the
// settings, used unless EnvLog is set.
func (c *Call) Recorded(dest string) { c.recorded = dest }

// Host sets the registry host the call was for, normalized; several
// hosts (dockerconfig, drone-registry) are joined with commas.
func (c *Call) Host(hosts ...string) { c.host = strings.Join(hosts, ",") }

// Outcome sets how the call ended, when End cannot tell from its error
// (NotOurs, or NotFound for a call that succeeded without a credential).
func (c *Call) Outcome(o Outcome) { c.outcome = o }

// Credential records the credential that served the call and the host's
// binding it came through ("" when none).
func (c *Call) Credential(cred *token.Credential, binding string) {
	if cred == nil {
		return
	}
	c.source, c.principal, c.binding = cred.Source, token.ShownPrincipal(cred.Principal), binding
}

// Token records the expiry of the token handed out; the token itself is
// only remembered so that no error line can quote it.
func (c *Call) Token(tok *oauth2.Token) {
	if tok == nil {
		return
	}
	c.Secret(tok.AccessToken)
	if c.expiry.IsZero() || !tok.Expiry.IsZero() && tok.Expiry.Before(c.expiry) {
		c.expiry = tok.Expiry
	}
}

// Secret remembers secrets the call handled (a stored key, a pod's
// token), so the error line is redacted of them in every encoding.
func (c *Call) Secret(secrets ...string) { c.secrets = append(c.secrets, secrets...) }

// Attr adds a field of the caller's own, e.g. drone-registry's repo and
// build number. Its value must not be secret.
func (c *Call) Attr(key string, value any) { c.attrs = append(c.attrs, slog.Any(key, value)) }

// End writes the call's line, with err (nil if it succeeded), where
// Destination says; warn (the command's stderr) gets the line when the
// destination is Stderr, and at most one warning per process when the
// trace file cannot be written.
func (c *Call) End(err error, warn io.Writer) {
	dest := Destination(c.recorded)
	if dest == "" {
		return
	}
	line := c.line(err, time.Now())
	if dest == Stderr {
		_, _ = warn.Write(line)
		return
	}
	if werr := appendLine(dest, line); werr != nil {
		warnOnce(warn, dest, werr)
	}
}

// Destination is where a call's line goes: EnvLog when set (Off: nowhere),
// else recorded, the settings' path; "" means nowhere.
func Destination(recorded string) string {
	if env := strings.TrimSpace(os.Getenv(EnvLog)); env != "" {
		if strings.EqualFold(env, Off) {
			return ""
		}
		return env
	}
	return recorded
}

// line renders the call as one JSON line, written with log/slog.
func (c *Call) line(err error, now time.Time) []byte {
	outcome := c.outcome
	if outcome == "" {
		outcome = outcomeOf(err)
	}
	cache := string(c.report.Cache())
	if cache == "" {
		cache = "uncached"
	}
	attrs := []slog.Attr{
		slog.Int("pid", os.Getpid()),
		slog.String("command", c.command),
		slog.String("host", c.redact(c.host)),
		slog.String("outcome", string(outcome)),
		slog.String("source", c.redact(c.source)),
		slog.String("principal", c.redact(c.principal)),
		slog.String("binding", c.redact(c.binding)),
		slog.String("cache", cache),
	}
	if c.expiry.IsZero() {
		attrs = append(attrs, slog.Any("expiry", nil), slog.Any("remaining_s", nil))
	} else {
		attrs = append(attrs, slog.Time("expiry", c.expiry.UTC()), slog.Int64("remaining_s", int64(c.expiry.Sub(now)/time.Second)))
	}
	attrs = append(attrs,
		slog.Int("requests", c.report.Requests()),
		slog.Int64("duration_ms", now.Sub(c.start).Milliseconds()),
		slog.String("error", c.errorLine(err)),
	)
	attrs = append(attrs, c.attrs...)
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropLevelAndMessage})
	r := slog.NewRecord(now.UTC(), slog.LevelInfo, "", 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(context.Background(), r)
	return buf.Bytes()
}

// dropLevelAndMessage leaves slog's time and drops its level and message,
// which would be the same on every line.
func dropLevelAndMessage(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
		return slog.Attr{}
	}
	return a
}

// outcomeOf tells the outcome from a call's error.
func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return Served
	case errors.Is(err, token.ErrNoCredentials) || credentials.IsErrCredentialsNotFound(err):
		return NotFound
	}
	return Failed
}

// errorLine is err on one line, redacted; "" for no error.
func (c *Call) errorLine(err error) string {
	if err == nil {
		return ""
	}
	return c.redact(strings.Join(strings.Fields(err.Error()), " "))
}

// redact removes from s the secrets the call handled and anything shaped
// like a token or JWT.
func (c *Call) redact(s string) string {
	if s == "" {
		return s
	}
	return token.Redact(s, c.secrets...)
}
