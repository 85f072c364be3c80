package token

import (
	"strings"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/fake"
)

// A service-account key signs its own JWT: the registry side verifies it
// with the key's public key, and Google's token endpoint hears nothing.
func TestSelfSignedJWT(t *testing.T) {
	g := fake.NewGoogle(t)
	const sa = "jwt@proj.iam.gserviceaccount.com"
	key := g.ServiceAccountKey(t, sa)
	minted := mustFind(t, FromJSON("stored key", key, nil))
	cred := WithSelfSignedJWT(minted)
	if !cred.SelfSigned || !cred.Cacheable || cred.Principal != sa || cred.Kind != "service_account" ||
		!strings.Contains(cred.Source, "self-signed JWT") {
		t.Errorf("credential %+v", cred)
	}
	if cred.Identity == minted.Identity || cred.Identity == "" {
		t.Errorf("identity %q, want one of its own (minted: %q)", cred.Identity, minted.Identity)
	}
	tok := mustToken(t, cred.TokenSource)
	if who, err := g.VerifySelfSignedJWT(tok.AccessToken); err != nil || who != sa {
		t.Errorf("the JWT does not verify: %q, %v", who, err)
	}
	if n := g.Count("any"); n != 0 {
		t.Errorf("%d requests reached Google, want none", n)
	}

	c := NewFileCache(t.TempDir())
	first := mustToken(t, c.TokenSource(WithSelfSignedJWT(mustFind(t, FromJSON("stored key", key, nil)))))
	again := mustToken(t, c.TokenSource(WithSelfSignedJWT(mustFind(t, FromJSON("stored key", key, nil)))))
	if first.AccessToken != again.AccessToken {
		t.Error("a self-signed JWT was not cached")
	}

	user := mustFind(t, FromJSON("adc", g.AuthorizedUserJSON("client", "secret", "refresh"), nil))
	if got := WithSelfSignedJWT(user); got != user {
		t.Errorf("an authorized_user credential was changed: %+v", got)
	}
}
