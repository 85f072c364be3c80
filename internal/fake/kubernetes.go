package fake

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// ServiceAccountToken returns a token shaped like the one the kubelet
// passes for a pod (KEP-4412): a JWT from issuer for
// system:serviceaccount:namespace:name, with the service account's UID,
// for audience, expiring at exp. Its signature is random: the fake STS
// recognises the tokens registered with TrustSubjectToken, as real STS
// checks the signature against the issuer's JWKS.
func ServiceAccountToken(issuer, namespace, name, uid, audience string, exp time.Time) string {
	header := mustJSON(map[string]string{"alg": "RS256", "kid": randomHex(8), "typ": "JWT"})
	claims := mustJSON(map[string]any{
		"iss": issuer,
		"sub": "system:serviceaccount:" + namespace + ":" + name,
		"aud": []string{audience},
		"exp": exp.Unix(),
		"iat": time.Now().Unix(),
		"nbf": time.Now().Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      namespace,
			"serviceaccount": map[string]string{"name": name, "uid": uid},
			"pod":            map[string]string{"name": name + "-" + randomHex(4), "uid": randomHex(16)},
		},
	})
	enc := base64.RawURLEncoding.EncodeToString
	return enc(header) + "." + enc(claims) + "." + enc([]byte(randomHex(64)))
}

// TrustSubjectToken makes STS accept subjectToken, a JWT, for audience (a
// workload identity pool provider), and only the tokens so registered: any
// other subject token for that audience is refused as Google refuses a
// token its provider cannot verify. Tokens issued for it belong to the
// federated principal of the token's sub claim,
// principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/subject/SUB.
func (g *Google) TrustSubjectToken(audience, subjectToken string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.audiences[audience] = true
	if g.subjects[audience] == nil {
		g.subjects[audience] = map[string]string{}
	}
	g.subjects[audience][subjectToken] = subjectPrincipal(audience, subjectToken)
}

// subjectPrincipal is the federated principal for the sub claim of a JWT
// exchanged for audience.
func subjectPrincipal(audience, jwt string) string {
	var claims struct {
		Sub string `json:"sub"`
	}
	if parts := strings.Split(jwt, "."); len(parts) == 3 {
		if data, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(data, &claims)
		}
	}
	pool, _, _ := strings.Cut(strings.TrimPrefix(audience, "//iam.googleapis.com/"), "/providers/")
	return "principal://iam.googleapis.com/" + pool + "/subject/" + claims.Sub
}

// jwtExpiry is the exp claim of a JWT; zero when it has none or is no JWT.
func jwtExpiry(jwt string) time.Time {
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if parts := strings.Split(jwt, "."); len(parts) == 3 {
		if data, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(data, &claims)
		}
	}
	if claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}

// jwtExpired reports whether a JWT's exp claim has passed.
func jwtExpired(jwt string) bool {
	exp := jwtExpiry(jwt)
	return !exp.IsZero() && !time.Now().Before(exp)
}
