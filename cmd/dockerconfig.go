package cmd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/trace"
)

const dockerConfigUsage = `Usage: docker-credential-gcp dockerconfig [--registries HOST,...] [--output FILE [--refresh]]

Prints a complete docker config.json whose "auths" hold a fresh Google access
token (user oauth2accesstoken) for each registry host, for systems that only
take a static config and never call a credential helper: Drone
image_pull_secrets or DRONE_DOCKER_CONFIG, Kubernetes dockerconfigjson pull
secrets, and the like. The token lives about one hour: refresh the secret
before then (e.g. from a CronJob every 30-45 minutes), or let --output FILE
--refresh keep a file valid.

Examples:
  docker-credential-gcp dockerconfig > config.json
  docker-credential-gcp dockerconfig --registries europe-docker.pkg.dev,eu.gcr.io
  kubectl create secret docker-registry gcp-pull \
    --from-file=.dockerconfigjson=<(docker-credential-gcp dockerconfig) \
    --dry-run=client -o yaml | kubectl apply -f -
  docker-credential-gcp dockerconfig --output /etc/drone/config.json --refresh

Flags:
`

// dockerConfigJSON is the part of docker's config.json a static login needs.
type dockerConfigJSON struct {
	Auths map[string]dockerConfigAuth `json:"auths"`
}

// dockerConfigAuth is one static login: base64 of "user:password".
type dockerConfigAuth struct {
	Auth string `json:"auth"`
}

// DockerConfig is the `dockerconfig` command: it prints (or with --output
// writes, and with --refresh keeps rewriting) a docker config.json holding
// short-lived tokens for Google's registries.
func DockerConfig(args []string, stdio IO) error {
	fs := newFlags("dockerconfig", dockerConfigUsage, stdio)
	registries := registriesFlag(fs, nil, "registry `HOSTS`, comma-separated (default: the common Google registry hosts)")
	output := fs.String("output", "", "write the config to `FILE` (atomically, mode 0600) instead of printing it")
	refresh := fs.Bool("refresh", false, "with --output, keep running and rewrite FILE before its token expires")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *refresh && *output == "" {
		return errors.New("--refresh needs --output FILE")
	}
	if fs.Changed("output") {
		if err := checkOutputFile(*output); err != nil {
			return err
		}
	}

	h, err := NewHelper("dockerconfig", stdio.Err)
	if err != nil {
		return err
	}
	if len(*registries) == 0 {
		*registries = helper.DefaultRegistries
	}
	hosts, err := allowedRegistries(h, *registries)
	if err != nil {
		return err
	}
	// Each render is a call of its own in the trace: --refresh renders
	// again and again.
	render := func(ctx context.Context) (data []byte, expiry time.Time, err error) {
		call := trace.Start("dockerconfig")
		call.Recorded(h.TraceLog)
		call.Host(hosts...)
		defer func() { call.End(err, stdio.Err) }()
		ctx, cancel := context.WithTimeout(call.Context(ctx), commandTimeout)
		defer cancel()
		return renderDockerConfig(ctx, h, hosts, call)
	}

	if *output == "" {
		data, _, err := render(context.Background())
		if err != nil {
			return err
		}
		_, err = stdio.Out.Write(data)
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(stdio.Err, format+"\n", args...) }
	return WriteDockerConfigLoop(ctx, *output, render, RefreshOptions{Refresh: *refresh}, logf)
}

// checkOutputFile refuses an --output that cannot become a file, before
// any token is minted: an empty path or a directory.
func checkOutputFile(path string) error {
	if strings.TrimSpace(path) == "" {
		return errors.New("--output needs a file path; it was given an empty one")
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("--output %s is a directory; give the path of the file to write, e.g. %s", path, filepath.Join(path, "config.json"))
	}
	return nil
}

// renderDockerConfig gets a token for each host (see tokensForHosts) and
// returns the config.json text and the earliest expiry among the tokens
// (zero when none said), telling call where they came from.
func renderDockerConfig(ctx context.Context, h *helper.Helper, hosts []string, call *trace.Call) ([]byte, time.Time, error) {
	tokens, err := tokensForHosts(ctx, h, hosts)
	if err != nil {
		return nil, time.Time{}, err
	}
	traceTokens(call, h, tokens)
	cfg := dockerConfigJSON{Auths: make(map[string]dockerConfigAuth, len(tokens))}
	var expiry time.Time
	for _, t := range tokens {
		auth := base64.StdEncoding.EncodeToString([]byte(helper.UsernameAccessToken + ":" + t.token.AccessToken))
		cfg.Auths[t.host] = dockerConfigAuth{Auth: auth}
		if !t.token.Expiry.IsZero() && (expiry.IsZero() || t.token.Expiry.Before(expiry)) {
			expiry = t.token.Expiry
		}
	}
	data, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return nil, time.Time{}, err
	}
	return append(data, '\n'), expiry, nil
}
