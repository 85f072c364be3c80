package cmd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker-credential-gcp/docker-credential-gcp/config"
	"github.com/docker-credential-gcp/docker-credential-gcp/dockerconfig"
	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/token"
	"github.com/docker-credential-gcp/docker-credential-gcp/trace"
)

const configureDockerUsage = `Usage: docker-credential-gcp configure-docker [--registries HOST,...] [--all-regions]
           [--key-file PATH] [--bind-credentials PATH] [--bind-impersonate SA_EMAIL]
           [--self-signed-jwt[=false]] [--log FILE|stderr|''] [--dry-run]
           [--remove [--forget-key] [--forget-bindings]]

Routes Google's registries to this helper in docker's config.json
($DOCKER_CONFIG/config.json, default ~/.docker/config.json): it adds
"credHelpers" entries with the value "gcp", so docker (and crane, skopeo,
podman, ...) run docker-credential-gcp for them. Every other setting, the key
order and the file's mode are kept; the file is written atomically (through a
symlink, to its target) and created if missing; a file that is not valid JSON
is never overwritten. Running it again changes nothing.

Without --registries the hosts are gcr.io, us/eu/asia/marketplace.gcr.io and
us/europe/asia-docker.pkg.dev. A host that is not Google's (gcr.io, *.gcr.io,
*.pkg.dev) is routed too and recorded in this helper's settings file
(docker-credential-gcp/config.json in the user config dir) so that 'get'
gives it a Google token.

--key-file checks the key and records its absolute path in the settings
file (the key itself is not copied); it is used when no other credential
exists.

--bind-credentials and --bind-impersonate give the hosts named by
--registries (and only those) their own identity: a credential JSON of any
kind (service account, external_account, ...), checked then recorded by path,
and/or a service account to impersonate on top of it (or on top of whatever
source would win otherwise). For those hosts the binding comes right after a
credential stored with docker login and before every other source, and
replaces DOCKER_CREDENTIAL_GCP_IMPERSONATE. Binding a host again replaces its
binding. In CI, DOCKER_CREDENTIAL_GCP_BINDINGS says the same
("HOST=/path/cred.json;HOST=impersonate:SA_EMAIL") and wins over the recorded
binding for the hosts it names.

--self-signed-jwt records that service-account keys sign their own JWT
access tokens, as docker-credential-gcr v2 does, instead of asking Google's
token endpoint: no request leaves the machine but to the registry. It
applies to a key that is not impersonated; with impersonation
(DOCKER_CREDENTIAL_GCP_IMPERSONATE, --bind-impersonate) the key's token still
comes from Google and IAM mints the impersonated one (doctor says which).
--self-signed-jwt=false records the default again. The environment variable
DOCKER_CREDENTIAL_GCP_SELF_SIGNED_JWT=1 or 0 overrides the setting.

--log FILE records that every get, store, erase, list, token,
dockerconfig, kubelet-credential-provider call and drone-registry request
appends one JSON line to FILE (or writes it to stderr): what was asked, which
credential and principal answered, whether the token came from the cache,
how long it had left, never a secret. This traces the calls docker itself
makes, which pass no environment you control; FILE is made absolute, kept
0600 in a 0700 dir and moved to FILE.1 past 5 MiB. --log '' stops it.
DOCKER_CREDENTIAL_GCP_LOG=FILE|stderr|off overrides the setting.

--remove undoes this for the docker config at hand: it takes out the
credHelpers entries that route to this helper (all of them, or only the
hosts named by --registries or --all-regions), and forgets those of the
hosts that are not Google's in the settings file, so no Google token goes
to them any more. It keeps the identity recorded in the settings file, and
says so: the key file recorded by --key-file, the removed hosts' bindings
and the --self-signed-jwt setting, because the settings file serves every
docker config ($DOCKER_CONFIG) and the token, dockerconfig and
drone-registry commands too, and another docker config may still route the
same hosts. Add --forget-key to forget the key file, and --forget-bindings
to forget the bindings of the hosts removed (name them with --registries
when this docker config no longer routes them). Entries for other helpers
are never touched, and a credHelpers left empty is removed. --remove cannot
be combined with --key-file, --self-signed-jwt, --log, --bind-credentials or
--bind-impersonate.

Examples:
  docker-credential-gcp configure-docker
  docker-credential-gcp configure-docker --registries europe-west1-docker.pkg.dev --key-file ~/keys/ci.json
  docker-credential-gcp configure-docker --registries europe-docker.pkg.dev --bind-credentials ~/keys/release.json
  docker-credential-gcp configure-docker --registries us-docker.pkg.dev --bind-impersonate pusher@my-project.iam.gserviceaccount.com
  docker-credential-gcp configure-docker --log ~/.local/state/docker-credential-gcp/trace.jsonl
  docker-credential-gcp configure-docker --all-regions --dry-run
  docker-credential-gcp configure-docker --remove --forget-key
  docker-credential-gcp configure-docker --remove --registries europe-docker.pkg.dev --forget-bindings

Flags:
`

// registryEntry is one host to route, as helper.ParseHost normalizes it:
// both docker's credHelpers key and what our policy and settings use
// (host, or host:port when a port was given for a non-Google host, since
// docker spells the registry that way and another port is another server).
type registryEntry struct {
	host   string
	google bool
}

// ConfigureDocker is the `configure-docker` command: it adds (or with
// --remove takes out) our credHelpers entries in docker's config.json and
// records --key-file and non-Google hosts in our settings.
func ConfigureDocker(args []string, stdio IO) error {
	fs := newFlags("configure-docker", configureDockerUsage, stdio)
	registries := registriesFlag(fs, slices.Clone(helper.DefaultRegistries), "comma-separated registry `HOSTS` to route to this helper")
	allRegions := fs.Bool("all-regions", false, "route every Artifact Registry region (<region>-docker.pkg.dev) and the gcr.io hosts")
	keyFile := fs.String("key-file", "", "service-account key `PATH` to use when no other credential exists (checked, then recorded)")
	selfSigned := fs.Bool("self-signed-jwt", false, "record that service-account keys sign their own JWT access tokens (no token endpoint)")
	logTo := fs.String("log", "", "record that every call appends a JSON trace line to `FILE` (or stderr); '' stops it")
	dryRun := fs.Bool("dry-run", false, "print the resulting docker config.json to stdout; write nothing")
	remove := fs.Bool("remove", false, "take this helper's credHelpers entries out again")
	forgetKey := fs.Bool("forget-key", false, "with --remove, also forget the key file recorded by --key-file")
	forgetBindings := fs.Bool("forget-bindings", false, "with --remove, also forget the removed hosts' bindings recorded by --bind-credentials and --bind-impersonate")
	bindFile := fs.String("bind-credentials", "", "credential JSON `PATH` the --registries hosts (only) mint from (checked, then recorded)")
	bindTarget := fs.String("bind-impersonate", "", "service account `SA_EMAIL` the --registries hosts (only) impersonate")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *remove && fs.Changed("key-file") {
		return errors.New("--remove cannot be combined with --key-file")
	}
	if *remove && fs.Changed("self-signed-jwt") {
		return errors.New("--remove cannot be combined with --self-signed-jwt")
	}
	if *remove && fs.Changed("log") {
		return errors.New("--remove cannot be combined with --log; stop the trace with configure-docker --log ''")
	}
	if *forgetKey && !*remove {
		return errors.New("--forget-key goes with --remove: configure-docker --remove --forget-key")
	}
	if *forgetBindings && !*remove {
		return errors.New("--forget-bindings goes with --remove: configure-docker --remove --registries HOST,... --forget-bindings")
	}
	if fs.Changed("key-file") && strings.TrimSpace(*keyFile) == "" {
		return errors.New("--key-file needs the path of a service-account key file; it was given an empty one")
	}
	binding, err := bindingFlags(fs.Changed("bind-credentials"), fs.Changed("bind-impersonate"), *bindFile, *bindTarget, fs.Changed("registries"), *allRegions, *remove)
	if err != nil {
		return err
	}
	var settings settingsChange
	if fs.Changed("self-signed-jwt") {
		settings.selfSignedJWT = selfSigned
		note := fmt.Sprintf("self_signed_jwt %v", *selfSigned)
		if *selfSigned {
			note += " (for service-account keys that are not impersonated; impersonated hosts still get their tokens from Google)"
		}
		settings.notes = append(settings.notes, note)
	}
	if fs.Changed("log") {
		dest, err := traceDestination(*logTo, *dryRun)
		if err != nil {
			return err
		}
		settings.log = &dest
		note := "trace to " + dest
		if dest == "" {
			note = "no trace"
		}
		settings.notes = append(settings.notes, note)
	}

	var entries []registryEntry
	if *allRegions || fs.Changed("registries") || !*remove {
		var hosts []string
		if *allRegions {
			hosts = helper.AllRegionRegistries()
		}
		if fs.Changed("registries") || !*allRegions {
			hosts = append(hosts, *registries...)
		}
		if entries, err = parseRegistries(hosts); err != nil {
			return err
		}
	}

	var keyPath, principal string
	if *keyFile != "" {
		if keyPath, principal, err = checkKeyFile(*keyFile); err != nil {
			return err
		}
	}

	f, err := dockerconfig.Load(dockerconfig.Path())
	if errors.Is(err, dockerconfig.ErrInvalid) {
		return fmt.Errorf("refusing to modify %w", err)
	}
	if err != nil {
		return err
	}
	c := configureRun{stdio: stdio, file: f, dryRun: *dryRun}
	if *remove {
		return c.remove(entries, *forgetKey, *forgetBindings)
	}
	return c.add(entries, keyPath, principal, binding, settings)
}

// configureRun is one configure-docker invocation after its flags are
// checked and docker's config is loaded.
type configureRun struct {
	stdio  IO
	file   *dockerconfig.File
	dryRun bool
}

// add routes entries to this helper and records keyPath, binding and the
// non-Google hosts, besides settings, in our settings file.
func (c configureRun) add(entries []registryEntry, keyPath, principal string, binding *newBinding, settings settingsChange) error {
	f := c.file
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.host
	}

	var warnings, adding []string
	before := f.CredHelpers()
	for _, e := range entries {
		if prev, ok := before[e.host]; ok && prev != helperName {
			warnings = append(warnings, fmt.Sprintf("%s was routed to docker-credential-%s; it now uses docker-credential-%s", e.host, prev, helperName))
		}
		if f.SetCredHelper(e.host, helperName) {
			adding = append(adding, e.host)
		}
	}

	if keyPath != "" {
		settings.keyFile = &keyPath
		who := ""
		if principal != "" {
			who = " (" + principal + ")"
		}
		settings.notes = append(settings.notes, fmt.Sprintf("key file %s%s", keyPath, who))
	}
	var extras []string
	for _, e := range entries {
		if !e.google {
			extras = append(extras, e.host)
		}
	}
	if len(extras) > 0 {
		settings.addRegistries = extras
		settings.notes = append(settings.notes, fmt.Sprintf("non-Google registries %s, so 'get' gives them a Google token", strings.Join(extras, ", ")))
	}
	if binding != nil {
		for _, e := range entries {
			b := binding.Binding
			b.Host = e.host
			settings.bind = append(settings.bind, b)
		}
		settings.notes = append(settings.notes, fmt.Sprintf("binding for %s: %s", strings.Join(keys, ", "), binding.describe()))
	}
	if err := c.applySettings(settings); err != nil {
		return err
	}
	// Only now: settings that cannot be written stop the run before
	// docker's config is.
	if len(adding) > 0 {
		fmt.Fprintf(c.stdio.Err, "Adding credentials for: %s\n", strings.Join(adding, ", "))
	}

	_, pathErr := helperOnPath()
	auths := f.Auths()
	for _, e := range entries {
		if keys := auths[e.host]; len(keys) > 0 {
			warnings = append(warnings, fmt.Sprintf("%s holds a static login for %s in \"auths\"; docker uses credHelpers first, but remove the stale long-lived login: %s", f.Path(), e.host, staleLoginAdvice(f, e.host, keys, pathErr == nil)))
		}
	}
	var notes []string
	if store := f.CredsStore(); store != "" {
		notes = append(notes, fmt.Sprintf("%s sets credsStore %q; that is fine: credHelpers entries take precedence for these hosts, so no action is needed", f.Path(), store))
	}
	if pathErr != nil {
		warnings = append(warnings, fmt.Sprintf("docker-credential-%s is not on PATH, so docker will fail with \"executable file not found\": install it (make install) or add its directory to PATH", helperName))
	}

	err := c.saveDocker(fmt.Sprintf("%s already routes these hosts to docker-credential-%s", f.Path(), helperName))
	for _, n := range notes {
		fmt.Fprintf(c.stdio.Err, "note: %s\n", n)
	}
	for _, w := range warnings {
		fmt.Fprintf(c.stdio.Err, "warning: %s\n", w)
	}
	return err
}

// remove takes out our entries for entries' hosts, or all of ours when
// entries is nil, and forgets the non-Google ones among those hosts in our
// settings. The recorded identity, which other docker configs and commands
// share, it forgets only when asked: the key file with forgetKey, the
// hosts' bindings with forgetBindings.
func (c configureRun) remove(entries []registryEntry, forgetKey, forgetBindings bool) error {
	f := c.file
	var keys []string
	if entries == nil {
		for k, v := range f.CredHelpers() {
			if v == helperName {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
	} else {
		for _, e := range entries {
			keys = append(keys, e.host)
		}
	}
	var removing []string
	for _, k := range keys {
		if f.RemoveCredHelper(k, helperName) {
			removing = append(removing, shownKey(k))
		}
	}

	settings := settingsChange{forgetKey: forgetKey}
	var hosts []string
	for _, k := range keys {
		if host, err := helper.ParseHost(k); err == nil {
			hosts = append(hosts, host)
		}
	}
	settings.removeRegistries = hosts
	if forgetBindings {
		settings.forgetBindings = hosts
	}
	// What is recorded before the change, for the notes on what is kept;
	// applySettings reports a settings file it cannot read.
	cfg, _ := config.Load()
	if err := c.applySettings(settings); err != nil {
		return err
	}
	if len(removing) > 0 {
		fmt.Fprintf(c.stdio.Err, "Removing credentials for: %s\n", strings.Join(removing, ", "))
	}
	err := c.saveDocker(fmt.Sprintf("%s routes none of these hosts to docker-credential-%s", f.Path(), helperName))
	if !forgetKey && cfg.KeyFile != "" {
		fmt.Fprintf(c.stdio.Err, "note: kept the key file %s recorded by --key-file: other docker configs and the token, dockerconfig and drone-registry commands use it too; forget it with configure-docker --remove --forget-key\n", cfg.KeyFile)
	}
	if !forgetBindings {
		var kept []string
		for _, b := range cfg.Bindings {
			if slices.Contains(hosts, b.Host) {
				kept = append(kept, b.Host)
			}
		}
		if len(kept) > 0 {
			fmt.Fprintf(c.stdio.Err, "note: kept the bindings of %s: another docker config that routes these hosts, and the token, dockerconfig and drone-registry commands, use them too; forget them with configure-docker --remove --registries %s --forget-bindings\n", strings.Join(kept, ", "), strings.Join(kept, ","))
		}
	}
	return err
}

// saveDocker writes (or with --dry-run prints) docker's config, or says
// noChange when there is nothing to do.
func (c configureRun) saveDocker(noChange string) error {
	f := c.file
	switch {
	case !f.Changed() && c.dryRun:
		// Still print the resulting config, as --dry-run promises: the
		// file as it stays.
		if !f.Exists() {
			fmt.Fprintf(c.stdio.Err, "No change: %s (dry run; %s does not exist)\n", noChange, f.Path())
			return nil
		}
		fmt.Fprintf(c.stdio.Err, "No change: %s (dry run; it stays as follows):\n", noChange)
		_, err := c.stdio.Out.Write(f.Unchanged())
		return err
	case !f.Changed():
		fmt.Fprintf(c.stdio.Err, "No change: %s\n", noChange)
		return nil
	case c.dryRun:
		fmt.Fprintf(c.stdio.Err, "Would write %s (dry run, nothing written):\n", f.Path())
		_, err := c.stdio.Out.Write(f.Bytes())
		return err
	}
	if err := f.Save(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdio.Err, "Updated %s\n", f.Path())
	return nil
}

// settingsChange is what configure-docker changes in our own settings.
type settingsChange struct {
	keyFile          *string          // new key file, when given
	selfSignedJWT    *bool            // new --self-signed-jwt, when given
	log              *string          // new --log, when given
	addRegistries    []string         // non-Google hosts to serve
	removeRegistries []string         // hosts to stop serving
	forgetKey        bool             // forget the recorded key file
	forgetBindings   []string         // hosts whose bindings to forget
	bind             []config.Binding // bindings to record, replacing a host's old one
	notes            []string         // what is added, for the user
}

// applySettings loads our settings, applies ch and saves them when they
// change (with --dry-run it only says what it would change).
func (c configureRun) applySettings(ch settingsChange) error {
	if ch.keyFile == nil && ch.selfSignedJWT == nil && ch.log == nil && len(ch.addRegistries) == 0 && len(ch.removeRegistries) == 0 && !ch.forgetKey && len(ch.forgetBindings) == 0 && len(ch.bind) == 0 {
		return nil
	}
	path, err := config.Path()
	if err != nil {
		return err
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	next := cfg
	next.Registries = slices.Clone(cfg.Registries)
	next.Bindings = slices.Clone(cfg.Bindings)
	notes := ch.notes
	if ch.forgetKey && cfg.KeyFile != "" {
		notes = append(notes, "forgot key file "+cfg.KeyFile)
		next.KeyFile = ""
	}
	if ch.keyFile != nil {
		next.KeyFile = *ch.keyFile
	}
	if ch.selfSignedJWT != nil {
		next.SelfSignedJWT = *ch.selfSignedJWT
	}
	if ch.log != nil {
		next.Log = *ch.log
	}
	for _, h := range ch.addRegistries {
		if !slices.Contains(next.Registries, h) {
			next.Registries = append(next.Registries, h)
		}
	}
	var forgotten []string
	next.Registries = slices.DeleteFunc(next.Registries, func(h string) bool {
		if slices.Contains(ch.removeRegistries, h) {
			forgotten = append(forgotten, h)
			return true
		}
		return false
	})
	if len(forgotten) > 0 {
		notes = append(notes, "forgot registries "+strings.Join(forgotten, ", "))
	}
	if len(next.Registries) == 0 {
		next.Registries = nil
	}
	next.Bindings, notes = changeBindings(next.Bindings, ch, notes)
	if next.KeyFile == cfg.KeyFile && next.SelfSignedJWT == cfg.SelfSignedJWT && next.Log == cfg.Log && slices.Equal(next.Registries, cfg.Registries) && slices.Equal(next.Bindings, cfg.Bindings) {
		return nil
	}
	if c.dryRun {
		fmt.Fprintf(c.stdio.Err, "Would record in %s: %s\n", path, strings.Join(notes, "; "))
		return nil
	}
	if err := config.Save(next); err != nil {
		return err
	}
	fmt.Fprintf(c.stdio.Err, "Recorded in %s: %s\n", path, strings.Join(notes, "; "))
	return nil
}

// parseRegistries checks each host with helper.ParseHost and drops
// duplicates and blanks. Errors name the host, never the argument as
// typed: its user info may hold a password.
func parseRegistries(hosts []string) ([]registryEntry, error) {
	var out []registryEntry
	seen := make(map[string]bool)
	for _, arg := range hosts {
		if strings.TrimSpace(arg) == "" {
			continue
		}
		host, err := helper.ParseHost(arg)
		if err != nil {
			return nil, fmt.Errorf("--registries: %w", err)
		}
		e := registryEntry{host: host, google: helper.IsGoogleRegistry(host)}
		if !seen[e.host] {
			seen[e.host] = true
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--registries: no registry given")
	}
	return out, nil
}

// checkKeyFile makes path absolute and checks that it is a regular file of
// at most 1 MiB holding a credential JSON we can use, without minting. It
// returns the path and the key's principal.
func checkKeyFile(path string) (abs, principal string, err error) {
	return checkCredentialFile("--key-file", path)
}

// checkCredentialFile is checkKeyFile for any flag naming a credential file.
func checkCredentialFile(flag, path string) (abs, principal string, err error) {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, herr := os.UserHomeDir(); herr == nil {
			path = filepath.Join(home, rest)
		}
	}
	if abs, err = filepath.Abs(path); err != nil {
		return "", "", fmt.Errorf("%s %s: %w", flag, path, err)
	}
	if principal, err = token.ValidateFile(abs); err != nil {
		return "", "", fmt.Errorf("%s: %w", flag, err)
	}
	return abs, principal, nil
}

// traceDestination checks what --log was given: "" (no trace), stderr, or
// a file, made absolute (docker runs the helper from any dir) and checked
// by creating it, unless this is a dry run, so that a trace that could
// never be written is refused now rather than warned about on every call.
func traceDestination(dest string, dryRun bool) (string, error) {
	dest = strings.TrimSpace(dest)
	if dest == "" || dest == trace.Stderr {
		return dest, nil
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return "", fmt.Errorf("--log %s: %w", dest, err)
	}
	if dryRun {
		return abs, nil
	}
	if err := trace.Check(abs); err != nil {
		return "", fmt.Errorf("--log %s: %w", abs, err)
	}
	return abs, nil
}
