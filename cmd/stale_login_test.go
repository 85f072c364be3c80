package cmd

import (
	"path/filepath"
	"testing"

	"github.com/docker-credential-gcp/docker-credential-gcp/dockerconfig"
)

func TestStaleLoginAdvice(t *testing.T) {
	load := func(data string) *dockerconfig.File {
		path := filepath.Join(t.TempDir(), "config.json")
		writeFile(t, path, data, 0o600)
		f, err := dockerconfig.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	plain := load(`{"auths": {}}`)
	desktop := load(`{"credsStore": "desktop"}`)
	for _, c := range []struct {
		name   string
		f      *dockerconfig.File
		keys   []string
		onPath bool
		want   string
	}{
		{"bare", plain, []string{"gcr.io"}, true, "docker logout gcr.io"},
		{"bare, helper not on PATH", plain, []string{"gcr.io"}, false, "docker logout gcr.io once docker-credential-gcp is on PATH (until then docker logout removes nothing)"},
		{"URL, helper not on PATH", plain, []string{"https://gcr.io"}, false, "docker logout https://gcr.io"},
		{"two spellings", plain, []string{"gcr.io", "https://gcr.io/v2/"}, true, "docker logout gcr.io; docker logout https://gcr.io/v2/"},
		{"odd spelling quoted", plain, []string{"HTTPS://gcr.io/a b"}, true, "docker logout 'HTTPS://gcr.io/a b'"},
		{"bare with credsStore", desktop, []string{"gcr.io"}, true, "docker logout gcr.io"},
		{"user info", plain, []string{"https://bob:PW-secret@gcr.io/v2/"}, true,
			`delete the entry "https://[redacted]@gcr.io/v2/" from "auths" in ` + plain.Path() + ` by hand (its key holds user info, maybe a password, so it is not shown or passed to docker logout)`},
		{"user info, no scheme", desktop, []string{"bob@gcr.io"}, true,
			`delete the entry "[redacted]@gcr.io" from "auths" in ` + desktop.Path() + ` by hand (its key holds user info, maybe a password, so it is not shown or passed to docker logout)`},
		{"URL with credsStore", desktop, []string{"https://gcr.io"}, true,
			`delete the entry "https://gcr.io" from "auths" in ` + desktop.Path() + ` by hand (docker logout hands that spelling to credsStore "desktop", which leaves the file alone)`},
	} {
		if got := staleLoginAdvice(c.f, "gcr.io", c.keys, c.onPath); got != c.want {
			t.Errorf("%s: advice %q, want %q", c.name, got, c.want)
		}
	}
}
