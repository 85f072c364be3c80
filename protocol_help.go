package main

import "github.com/docker/docker-credential-helpers/credentials"

// protocolUsage is the --help of each credential-helper protocol action
// and of version: docker never passes them arguments, so --help is a person
// asking, and must not wait on stdin.
var protocolUsage = map[string]string{
	credentials.ActionGet: `Usage: echo SERVER_URL | docker-credential-gcp get

The credential-helper protocol's get, as docker calls it: reads a registry's
server URL (gcr.io, https://europe-docker.pkg.dev, ...) on stdin and prints
{"ServerURL":...,"Username":"oauth2accesstoken","Secret":<access token>}.
A host that is not a Google registry (or one you added) gets "credentials not
found in native keychain", so docker carries on anonymously. The output holds
a token: do not paste it anywhere. 'docker-credential-gcp doctor' explains
which credential get would use.
`,
	credentials.ActionStore: `Usage: echo '{"ServerURL":...,"Username":...,"Secret":...}' | docker-credential-gcp store

The credential-helper protocol's store, as 'docker login' calls it: keeps a
credential for one Google registry in a 0600 file in
$XDG_CONFIG_HOME/docker-credential-gcp/. Username _json_key (Secret: a key
JSON), _json_key_base64 (the same, base64) or oauth2accesstoken (Secret: an
access token, used for at most 60 minutes). A key is checked before it is
stored.
`,
	credentials.ActionErase: `Usage: echo SERVER_URL | docker-credential-gcp erase

The credential-helper protocol's erase, as 'docker logout' calls it: forgets
the credential stored for the registry read on stdin, and the cached tokens
that came from it.
`,
	credentials.ActionList: `Usage: docker-credential-gcp list

The credential-helper protocol's list: prints {"<registry>":"<username>",...}
for the credentials stored with 'docker login'. No secret is printed.
`,
	"version": `Usage: docker-credential-gcp version   (or --version)

Prints docker-credential-gcp's version, the commit it was built from and the
Go version.
`,
}

// asksForHelp reports whether args ask an action for its help.
func asksForHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")
}
