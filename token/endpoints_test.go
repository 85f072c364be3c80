package token

import (
	"encoding/json"
	"strings"
	"testing"
)

// externalAccount is an external_account credential JSON with fields
// replaced or added.
func externalAccount(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	f := map[string]any{
		"type":               "external_account",
		"audience":           "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/gh",
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"token_url":          "https://sts.googleapis.com/v1/token",
		"credential_source":  map[string]any{"file": "/var/run/token"},
	}
	for k, v := range fields {
		f[k] = v
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const impersonationPath = "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"

func TestCredentialEndpointsAccepted(t *testing.T) {
	for name, fields := range map[string]map[string]any{
		"Google's defaults": {},
		"impersonation":     {"service_account_impersonation_url": "https://iamcredentials.googleapis.com" + impersonationPath},
		"Private Service Connect": {
			"token_url":                         "https://sts-xyz.p.googleapis.com/v1/token",
			"service_account_impersonation_url": "https://iamcredentials-xyz.p.googleapis.com" + impersonationPath,
		},
		"mTLS":            {"token_url": "https://sts.mtls.googleapis.com/v1/token"},
		"trailing dot":    {"token_url": "https://STS.googleapis.com./v1/token"},
		"universe domain": {"universe_domain": "cloud.example.eu", "token_url": "https://sts.cloud.example.eu/v1/token"},
		"loopback fake":   {"token_url": "http://127.0.0.1:8080/v1/token", "service_account_impersonation_url": "http://[::1]:9/x" + impersonationPath},
		"localhost":       {"token_url": "http://localhost:8080/v1/token"},
		"url-sourced":     {"credential_source": map[string]any{"url": "https://token.actions.githubusercontent.com/?audience=x"}},
		"url on loopback": {"credential_source": map[string]any{"url": "http://127.0.0.1:5000/token"}},
		"Azure metadata":  {"credential_source": map[string]any{"url": "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"}},
		"AWS":             {"credential_source": map[string]any{"environment_id": "aws1", "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone", "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials", "imdsv2_session_token_url": "http://[fd00:ec2::254]/latest/api/token", "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"}},
	} {
		if _, err := ValidateJSON(externalAccount(t, fields)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCredentialEndpointsRefused(t *testing.T) {
	tests := map[string]struct {
		fields map[string]any
		want   string
	}{
		"attacker's token_url": {
			map[string]any{"token_url": "https://attacker.example/v1/token"},
			`token_url names "attacker.example", which is not a Google host`,
		},
		"look-alike": {
			map[string]any{"token_url": "https://sts.googleapis.com.attacker.example/v1/token"},
			"not a Google host",
		},
		"suffix without a dot": {
			map[string]any{"token_url": "https://evilgoogleapis.com/v1/token"},
			"not a Google host",
		},
		"user info": {
			map[string]any{"token_url": "https://sts.googleapis.com@attacker.example/v1/token"},
			`names "attacker.example"`,
		},
		"plain http": {
			map[string]any{"token_url": "http://sts.googleapis.com/v1/token"},
			"token_url must use https unless it is a loopback address",
		},
		"impersonation elsewhere": {
			map[string]any{"service_account_impersonation_url": "https://attacker.example" + impersonationPath},
			"service_account_impersonation_url names \"attacker.example\"",
		},
		"not a URL": {
			map[string]any{"token_url": "sts.googleapis.com/v1/token"},
			"token_url is not an http(s) URL",
		},
		"other scheme": {
			map[string]any{"token_url": "file:///etc/passwd"},
			"token_url is not an http(s) URL",
		},
		"one-label universe": {
			map[string]any{"universe_domain": "example", "token_url": "https://sts.example/v1/token"},
			"not a Google host",
		},
		"another universe's host": {
			map[string]any{"universe_domain": "cloud.example.eu", "token_url": "https://sts.attacker.example/v1/token"},
			"not a Google host",
		},
		"subject token over http": {
			map[string]any{"credential_source": map[string]any{"url": "http://ci.example/token"}},
			"credential_source.url must use https unless",
		},
		"AWS region over http": {
			map[string]any{"credential_source": map[string]any{"environment_id": "aws1", "region_url": "http://attacker.example/zone"}},
			"credential_source.region_url must use https",
		},
		"secret-looking host": {
			map[string]any{"token_url": "https://ya29.a0AfB_secret%21@x/"},
			"not a Google host",
		},
	}
	for name, tc := range tests {
		data := externalAccount(t, tc.fields)
		_, err := ValidateJSON(data)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q lacks %q", name, err, tc.want)
		}
		if strings.Contains(err.Error(), "://") || strings.Contains(err.Error(), "ya29") {
			t.Errorf("%s: error %q quotes a URL", name, err)
		}
	}
	// The same rule for external_account_authorized_user and for an
	// impersonated_service_account and its source.
	for name, data := range map[string]string{
		"external_account_authorized_user": `{"type":"external_account_authorized_user","audience":"//iam.googleapis.com/x","refresh_token":"r","client_id":"c","client_secret":"s","token_url":"https://attacker.example/v1/oauthtoken"}`,
		"impersonated_service_account":     `{"type":"impersonated_service_account","service_account_impersonation_url":"https://attacker.example` + impersonationPath + `","source_credentials":{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}}`,
		"impersonated from external":       `{"type":"impersonated_service_account","service_account_impersonation_url":"https://iamcredentials.googleapis.com` + impersonationPath + `","source_credentials":` + string(externalAccount(t, map[string]any{"token_url": "https://attacker.example/t"})) + `}`,
	} {
		if _, err := ValidateJSON([]byte(data)); err == nil || !strings.Contains(err.Error(), `"attacker.example", which is not a Google host`) {
			t.Errorf("%s: %v, want refused naming attacker.example", name, err)
		}
	}
}
