package cmd

import (
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// keyless reports the keyless CI source when its provider variable is
// set: the CI detected, where the ID token comes from, its audience,
// whether it is refreshed, the tokens' expected lifetime and what is
// missing. It sends no request and shows no token.
func (r *doctorReport) keyless() {
	k := token.DetectKeyless()
	if k.Provider == "" {
		return
	}
	r.section("Keyless CI (" + token.EnvWorkloadIdentityProvider + "):")
	r.line(doctorInfo, "provider: %s", k.Provider)
	switch {
	case k.Err != nil:
		r.line(doctorFail, "%v", k.Err)
		return
	case k.Origin == nil:
		r.line(doctorSkip, "no CI system detected and no %s or %s: this source is skipped and the chain goes on (as on a laptop or a kubelet node)", token.EnvIDToken, token.EnvIDTokenFile)
		return
	}
	o := k.Origin
	ci := o.CI
	if ci == "" {
		ci = "none detected (the ID token is given directly)"
	}
	r.line(doctorInfo, "CI: %s", ci)
	if o.Refreshable {
		r.line(doctorInfo, "ID token: requested from %s, fresh for every mint", o.From)
	} else {
		r.line(doctorInfo, "ID token: %s, fixed for the job; it expires at %s (%s left)", o.From, clock(o.Expiry), minutesLeft(o.Expiry))
	}
	if o.Audience != "" {
		r.line(doctorInfo, "audience: %s (%s overrides it)", o.Audience, token.EnvIDTokenAudience)
	} else {
		r.line(doctorInfo, "audience: fixed by the CI: the provider must allow %s", o.FixedAudience)
	}
	if target := token.ImpersonationTarget(); target != "" {
		r.line(doctorOK, "expected token lifetime: 1 hour (impersonating %s through IAM)", target)
		return
	}
	life := "as long as the ID token behind each one, often 5 minutes or less"
	if !o.Expiry.IsZero() {
		life = "until the ID token expires, " + minutesLeft(o.Expiry) + " from now"
	}
	marker := doctorWarn
	if !o.Expiry.IsZero() && !token.ShortLived(time.Until(o.Expiry)) {
		marker = doctorInfo
	}
	r.line(marker, "expected token lifetime: %s (direct federation); BuildKit keeps a token 5 minutes, so set DOCKER_CREDENTIAL_GCP_IMPERSONATE=SERVICE_ACCOUNT_EMAIL for 1-hour tokens", life)
}
