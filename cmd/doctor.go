package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/dockerconfig"
	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

const doctorUsage = `Usage: docker-credential-gcp doctor [--registry HOST]

Explains what 'get' would do for HOST (default gcr.io): which credential
source won and why each earlier one was skipped, the identity it stands for
(service-account e-mail or principal), the token's expiry and whether it came
from the cache, the state of the token cache, which registries docker routes
to this helper and what shadows them in the docker config, whether the
helper is on PATH, and where the trace goes, with its last lines. It never prints a token, key or refresh token, so its
output is safe to paste into an issue. Exits 1 when no token can be had.

Examples:
  docker-credential-gcp doctor
  docker-credential-gcp doctor --registry europe-docker.pkg.dev

Flags:
`

// Markers of the doctor report, plain ASCII so any terminal and log shows them.
const (
	doctorOK   = "ok  "
	doctorSkip = "skip"
	doctorFail = "FAIL"
	doctorWarn = "warn"
	doctorUsed = "used"
	doctorInfo = "    "
)

// helperName is the helper's name in credHelpers, i.e. the binary
// docker-credential-gcp.
const helperName = "gcp"

// Doctor is the `doctor` command: a readable report of credentials, token,
// cache, docker config and PATH. It returns an error, with the reason and
// the next step, when no token can be obtained for the registry.
func Doctor(args []string, stdio IO) error {
	fs := newFlags("doctor", doctorUsage, stdio)
	registry := registryFlag(fs, "registry `HOST` to check")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if err := oneRegistry("doctor", *registry); err != nil {
		return err
	}

	r := &doctorReport{w: stdio.Out}
	failure := r.credentials(*registry)
	helperPath, pathErr := helperOnPath()
	r.dockerConfig(*registry, pathErr == nil)
	r.path(helperPath, pathErr)
	r.trace()
	return failure
}

// doctorReport writes the report, one section at a time.
type doctorReport struct {
	w io.Writer
}

func (r *doctorReport) section(title string) {
	fmt.Fprintf(r.w, "\n%s\n", title)
}

func (r *doctorReport) line(marker, format string, args ...any) {
	fmt.Fprintf(r.w, "  %s  %s\n", marker, fmt.Sprintf(format, args...))
}

// credentials reports sources, identity, cache and token for registry and
// returns the error that stops `get` from answering, if any.
func (r *doctorReport) credentials(registry string) error {
	// The host, never the argument as typed: its user info may hold a password.
	shown := "(not a registry host)"
	if host, err := helper.ParseHost(registry); err == nil {
		shown = host
	}
	fmt.Fprintf(r.w, "Registry: %s\n", shown)
	h, err := helper.New()
	if err != nil {
		r.line(doctorFail, "%v", err)
		return err
	}
	for _, warning := range h.Warnings {
		r.line(doctorWarn, "%s", warning)
	}
	host, err := allowedRegistry(h, registry)
	if err != nil {
		r.line(doctorFail, "%v", err)
		return err
	}

	r.binding(h, host)
	r.keyless()

	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	r.section("Credential sources (first found wins):")
	cred, skipped, err := h.Resolve(ctx, host)
	for _, s := range skipped {
		r.line(doctorSkip, "%s: %s", s.Source, s.Reason)
	}
	if err != nil {
		err = doctorFailure(err)
		r.line(doctorFail, "%v", err)
		for _, name := range sourcesAfter(h, host, len(skipped)) {
			r.line(doctorSkip, "%s: not checked, the failing source above stops the search", name)
		}
		r.section("Token cache:")
		r.cacheDir(h)
		return err
	}
	r.line(doctorUsed, "%s", cred.Source)
	for _, name := range sourcesAfter(h, host, len(skipped)) {
		r.line(doctorSkip, "%s: not checked, %s comes first", name, cred.Source)
	}

	r.section("Identity:")
	principal := cred.Principal
	switch {
	case principal != "":
	case cred.Kind == "authorized_user":
		principal = "unknown (the credential file does not record its account; its client_id is the OAuth client's, shared by its users)"
	default:
		principal = "unknown (this source does not say)"
	}
	r.line(doctorInfo, "principal: %s", principal)
	r.line(doctorInfo, "kind: %s", cred.Kind)
	switch {
	case cred.SelfSigned:
		r.line(doctorInfo, "tokens: self-signed JWTs, signed here with the key; Google's token endpoint is not used (%s, configure-docker --self-signed-jwt)", helper.EnvSelfSignedJWT)
	case h.SelfSignedJWT && strings.HasPrefix(cred.Kind, "impersonated:"):
		r.line(doctorInfo, "tokens: not self-signed although %s or configure-docker --self-signed-jwt asks for it: impersonation applies, so the source's token comes from Google and IAM mints the impersonated one", helper.EnvSelfSignedJWT)
	case h.SelfSignedJWT:
		r.line(doctorInfo, "tokens: not self-signed although %s or configure-docker --self-signed-jwt asks for it: only a service-account key signs its own, and this is a %s credential", helper.EnvSelfSignedJWT, cred.Kind)
	}
	if strings.HasPrefix(cred.Kind, "impersonated:") {
		r.line(doctorInfo, "impersonating: %s", cred.Principal)
	}

	r.section("Token cache:")
	r.cacheDir(h)
	var cachedUntil time.Time
	switch {
	case h.Cache == nil:
	case !cred.Cacheable:
		r.line(doctorInfo, "not used: the token is handed over ready-made")
	default:
		r.line(doctorInfo, "policy: a cached token is reused while it has at least min(%v, max(3/4 of its life, min(5 min, 0.9 of its life))) left (%s)", h.Cache.MinLifetime(), helper.EnvMinLifetime)
		switch c, ok := h.Cache.Lookup(cred.Identity); {
		case ok && c.Reusable:
			cachedUntil = c.Expiry
			r.line(doctorOK, "hit, valid until %s (%s left); reused until %s, then minted anew", clock(c.Expiry), minutesLeft(c.Expiry), clock(c.ReuseUntil))
		case ok:
			r.line(doctorInfo, "cached token has %s left, under the %v the policy wants: a token will be minted now", minutesLeft(c.Expiry), c.Expiry.Sub(c.ReuseUntil).Round(time.Second))
		default:
			r.line(doctorInfo, "miss: a token will be minted now")
		}
	}

	r.section("Token:")
	tok, _, err := h.Token(ctx, host)
	if err != nil {
		err = doctorFailure(err)
		r.line(doctorFail, "%v", err)
		return fmt.Errorf("no token for %s: %w", host, err)
	}
	from := "minted now"
	switch {
	case !cred.Cacheable:
		from = "ready-made, from " + cred.Source
	case !cachedUntil.IsZero() && tok.Expiry.Equal(cachedUntil):
		from = "from the cache"
	}
	if tok.Expiry.IsZero() {
		r.line(doctorOK, "obtained (%s); expiry not known", from)
		return nil
	}
	r.line(doctorOK, "obtained (%s), valid until %s (%s left)", from, clock(tok.Expiry), minutesLeft(tok.Expiry))
	life := time.Until(tok.Expiry)
	if h.Cache != nil {
		if c, ok := h.Cache.Lookup(cred.Identity); ok && c.Expiry.Equal(tok.Expiry) {
			life = c.Expiry.Sub(c.ObtainedAt)
		}
	}
	if cred.Cacheable && token.ShortLived(life) {
		r.line(doctorWarn, "%s", helper.ShortLivedWarning(cred.Source, life.Round(time.Second)))
	}
	return nil
}

// sourcesAfter names the sources Resolve never looked at: those after the
// one that decided (found, or existed and failed), which comes right after
// the skipped ones.
func sourcesAfter(h *helper.Helper, host string, skipped int) []string {
	sources := h.Sources(host)
	var names []string
	for _, s := range sources[min(skipped+1, len(sources)):] {
		names = append(names, s.Name())
	}
	return names
}

// doctorFailure adds the next step to an error that stops `get`: where to
// put credentials when there are none; nothing when the credential was
// never judged (the network, a proxy or a failing server: the error says
// what to check); else to fix the source it names.
func doctorFailure(err error) error {
	if explained := explainTokenError(err); explained != err {
		return explained
	}
	if token.Unavailable(err) {
		return err
	}
	return fmt.Errorf("%w; fix that credential source (a source that exists but fails is never skipped)", err)
}

// cacheDir reports where the token cache lives, whether it is on and
// whether it is writable.
func (r *doctorReport) cacheDir(h *helper.Helper) {
	dir, err := token.DefaultCacheDir()
	switch {
	case h.Cache == nil:
		r.line(doctorInfo, "disabled (%s)", helper.EnvNoCache)
		return
	case err != nil:
		r.line(doctorWarn, "no cache dir: %v; every call mints a token (a long-running command keeps its token in memory)", err)
		return
	}
	if err := h.Cache.Unusable(); err != nil {
		r.line(doctorWarn, "not used, so every call mints a token: %v (another user could forge its tokens or plant its locks); make it yours and private (chown it to yourself, chmod 700) or set XDG_CACHE_HOME (HOME on macOS) to a directory of your own", err)
		return
	}
	switch state, ok := dirState(dir); {
	case ok:
		r.line(doctorOK, "dir: %s (%s)", dir, state)
	default:
		r.line(doctorWarn, "dir: %s (%s); tokens are minted on every call", dir, state)
	}
}

// dirState says whether dir is writable, or will be created when needed.
func dirState(dir string) (string, bool) {
	fi, err := os.Stat(dir)
	var pathErr *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not created yet; made on the first token", true
	case errors.Is(err, syscall.ENOTDIR):
		return "a regular file stands where a directory on its path should be", false
	case errors.As(err, &pathErr):
		// The caller prints dir already; the error would repeat it.
		return pathErr.Err.Error(), false
	case err != nil:
		return err.Error(), false
	case !fi.IsDir():
		return "not a directory", false
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return "not writable", false
	}
	f.Close()
	os.Remove(f.Name())
	return "writable", true
}

// dockerConfig reports which registries docker routes to this helper and
// what else in the docker config decides their credentials.
func (r *doctorReport) dockerConfig(registry string, onPath bool) {
	path := dockerconfig.Path()
	r.section("Docker config: " + path)
	f, err := dockerconfig.Load(path)
	var invalid *dockerconfig.InvalidError
	if errors.As(err, &invalid) {
		// The section title names the file already.
		r.line(doctorFail, "%s; docker ignores the file too: fix it or move it away", invalid.Detail)
		return
	}
	if err != nil {
		r.line(doctorFail, "%v", err)
		return
	}
	if !f.Exists() {
		r.line(doctorWarn, "does not exist: run docker-credential-gcp configure-docker")
		return
	}

	hosts := slices.Clone(helper.DefaultRegistries)
	if host, err := helper.ParseHost(registry); err == nil && !slices.Contains(hosts, host) {
		hosts = append(hosts, host)
	}
	// docker looks credHelpers up by the registry's bare host name, exactly
	// as written; a key such as "https://gcr.io" routes nothing.
	credHelpers := f.CredHelpers()
	auths := f.Auths()
	var routed, other, missing, misspelt, shadowing, stale []string
	for _, host := range hosts {
		v, ok := credHelpers[host]
		switch {
		case v == helperName:
			routed = append(routed, host)
		case ok:
			other = append(other, fmt.Sprintf("%s -> docker-credential-%s", host, v))
		default:
			missing = append(missing, host)
			for key := range credHelpers {
				if parsed, err := helper.ParseHost(key); err == nil && parsed == host {
					misspelt = append(misspelt, fmt.Sprintf("credHelpers key %q routes nothing: docker looks up %q exactly (run docker-credential-gcp configure-docker)", shownKey(key), host))
				}
			}
		}
		keys := auths[host]
		switch {
		case len(keys) == 0:
		case ok:
			stale = append(stale, fmt.Sprintf("%s (remove it: %s)", host, staleLoginAdvice(f, host, keys, onPath)))
		default:
			shadowing = append(shadowing, fmt.Sprintf("%s (run configure-docker, then %s)", host, staleLoginAdvice(f, host, keys, onPath)))
		}
	}
	if len(routed) > 0 {
		r.line(doctorOK, "credHelpers route to %q: %s", helperName, strings.Join(routed, ", "))
	}
	if len(other) > 0 {
		r.line(doctorWarn, "credHelpers route elsewhere: %s", strings.Join(other, ", "))
	}
	if len(missing) > 0 {
		r.line(doctorWarn, "not routed to this helper: %s (run docker-credential-gcp configure-docker)", strings.Join(missing, ", "))
	}
	slices.Sort(misspelt)
	for _, m := range misspelt {
		r.line(doctorWarn, "%s", m)
	}
	for _, s := range shadowing {
		r.line(doctorWarn, "static login in \"auths\" used instead of this helper for %s", s)
	}
	for _, s := range stale {
		r.line(doctorWarn, "stale static login in \"auths\" (credHelpers wins) for %s", s)
	}
	if store := f.CredsStore(); store != "" {
		r.line(doctorInfo, "credsStore: %q (docker-credential-%s serves hosts without a credHelpers entry)", store, store)
	} else {
		r.line(doctorInfo, "credsStore: none")
	}
}

// path reports whether docker can find the helper binary: p, or err from
// helperOnPath.
func (r *doctorReport) path(p string, err error) {
	r.section("Helper on PATH:")
	if err != nil {
		r.line(doctorWarn, "docker-credential-%s is not on PATH, so docker cannot call it: install it (make install) or add its directory to PATH", helperName)
		return
	}
	r.line(doctorOK, "%s", p)
}

// clock formats t for the report, in UTC so pasted reports compare.
func clock(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// minutesLeft is the validity left until t, in whole minutes.
func minutesLeft(t time.Time) string {
	return fmt.Sprintf("%d min", int(time.Until(t).Minutes()))
}
