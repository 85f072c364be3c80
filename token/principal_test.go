package token

import "testing"

func TestShownPrincipal(t *testing.T) {
	shown := []string{
		"",
		"puller@test-project.iam.gserviceaccount.com",
		"dev.person+ci@example.co.uk",
		"principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/subject/system:serviceaccount:ns:sa",
		"principalSet://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/attribute.repository/o/r",
		"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/gh",
	}
	for _, s := range shown {
		if got := ShownPrincipal(s); got != s {
			t.Errorf("ShownPrincipal(%q) = %q, want it unchanged", s, got)
		}
	}
	hidden := []string{
		"-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
		"MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7",
		"sa@proj.iam.gserviceaccount.com MIIEvgIBADANBgkqhkiG9w0BAQEFAASC",
		"sa@proj.iam.gserviceaccount.com\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC",
		"a@b@c.com",
		"sa@localhost",
		"@proj.example.com",
		"sa@-bad.example.com",
		"s\u00e4@example.com",
		"principal://",
		"principal://iam.googleapis.com/x y",
		"https://evil.example/principal://x",
		"//iam.googleapis.com/" + string(make([]byte, 600)),
	}
	for _, s := range hidden {
		if got := ShownPrincipal(s); got != UnrecognizedPrincipal {
			t.Errorf("ShownPrincipal(%q) = %q, want %q", s, got, UnrecognizedPrincipal)
		}
	}
}
