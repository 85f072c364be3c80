package cmd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
)

// RefreshOptions says whether and how often `dockerconfig --output FILE`
// rewrites the file; zero durations take the defaults below.
type RefreshOptions struct {
	// Refresh keeps rewriting the file until the context is cancelled;
	// without it the file is written once.
	Refresh bool
	// Every is the normal interval between rewrites (default 45m).
	Every time.Duration
	// Jitter is the most a rewrite is brought forward at random, so a
	// fleet of refreshers does not mint in lockstep (default 2m;
	// negative for none).
	Jitter time.Duration
	// RetryAfter is the wait after a failed rewrite, and the least wait
	// between any two (default 30s).
	RetryAfter time.Duration
	// Margin is how long before the token expires the file is rewritten
	// at the latest (default 5m).
	Margin time.Duration
}

// Default refresh timings: Google tokens live 60 min and the cache hands
// out ones with at least min(45 min, 3/4 of their life) left; a rewrite
// comes after 45 min or Margin before the token expires, whichever is
// first, so the file is always valid.
const (
	DefaultRefreshEvery      = 45 * time.Minute
	DefaultRefreshJitter     = 2 * time.Minute
	DefaultRefreshRetryAfter = 30 * time.Second
	DefaultRefreshMargin     = 5 * time.Minute
)

func (o RefreshOptions) withDefaults() RefreshOptions {
	if o.Every <= 0 {
		o.Every = DefaultRefreshEvery
	}
	if o.Jitter < 0 {
		o.Jitter = 0
	} else if o.Jitter == 0 {
		o.Jitter = DefaultRefreshJitter
	}
	if o.Jitter >= o.Every {
		o.Jitter = o.Every / 2
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = DefaultRefreshRetryAfter
	}
	if o.Margin <= 0 {
		o.Margin = DefaultRefreshMargin
	}
	return o
}

// WriteDockerConfigLoop writes render's docker config.json to path
// atomically with mode 0600 (creating the parent directory 0700), then, with
// opts.Refresh, rewrites it before the token it holds expires until ctx is
// cancelled. It is the engine of `dockerconfig --output FILE --refresh`,
// for DRONE_DOCKER_CONFIG files and other consumers of a static config.
//
// The first write must succeed, so a broken setup fails at start. Later
// failures keep the previous file, are logged through logf and retried
// after opts.RetryAfter. A cancelled ctx returns nil.
func WriteDockerConfigLoop(ctx context.Context, path string, render func(ctx context.Context) ([]byte, time.Time, error), opts RefreshOptions, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the directory for %s: %w", path, err)
	}
	expiry, err := writeDockerConfig(ctx, path, render)
	if err != nil {
		return err
	}
	if !opts.Refresh {
		return nil
	}
	logf("wrote %s; token expires %s", path, formatExpiry(expiry))

	wait := nextRefresh(opts, expiry, time.Now())
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		exp, err := writeDockerConfig(ctx, path, render)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			logf("refreshing %s failed, keeping the previous file, retrying in %s: %v", path, opts.RetryAfter, err)
			wait = opts.RetryAfter
		default:
			expiry = exp
			logf("wrote %s; token expires %s", path, formatExpiry(expiry))
			wait = nextRefresh(opts, expiry, time.Now())
		}
		timer.Reset(wait)
	}
}

// writeDockerConfig renders and atomically writes one config, returning
// the expiry of the token inside.
func writeDockerConfig(ctx context.Context, path string, render func(ctx context.Context) ([]byte, time.Time, error)) (time.Time, error) {
	data, expiry, err := render(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if len(data) == 0 {
		return time.Time{}, errors.New("rendering the docker config produced nothing")
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return time.Time{}, err
	}
	return expiry, nil
}

// nextRefresh is the wait before the next rewrite: Every brought forward by
// up to Jitter, never past expiry-Margin, never shorter than RetryAfter.
func nextRefresh(opts RefreshOptions, expiry, now time.Time) time.Duration {
	wait := opts.Every
	if opts.Jitter > 0 {
		wait -= rand.N(opts.Jitter)
	}
	if !expiry.IsZero() {
		if latest := expiry.Add(-opts.Margin).Sub(now); latest < wait {
			wait = latest
		}
	}
	return max(wait, opts.RetryAfter)
}

func formatExpiry(t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}
