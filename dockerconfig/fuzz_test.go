package dockerconfig

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fuzzSeeds are realistic docker configs; the testdata/*.json fixtures are
// added too.
var fuzzSeeds = []string{
	``,
	`{}`,
	`{"auths": {}}`,
	`{"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"}}, "credsStore": "desktop"}`,
	`{"auths": {"gcr.io": {}, "https://eu.gcr.io": {"identitytoken": "t"}}, "credsStore": "desktop", "currentContext": "desktop-linux"}`,
	`{"credHelpers": {"gcr.io": "gcloud", "us.gcr.io": "gcloud"}}`,
	`{"credHelpers": {"gcr.io": "gcp"}}`,
	`{"credHelpers": {}}`,
	`{"credHelpers": null}`,
	`{"proxies": {"default": {"httpProxy": "http://p:3128", "httpsProxy": "http://p:3128", "noProxy": "localhost,127.0.0.1"}}}`,
	`{"experimental": "enabled", "stackOrchestrator": "swarm", "features": {"buildkit": true}}`,
	`{"HttpHeaders": {"X-Meta": "<&>"}, "detachKeys": "ctrl-e,e", "psFormat": "table {{.ID}}\t{{.Names}}"}`,
	`{"unknown": [1, 2.0, -3e-7, 1e308, "\u2603", {"x": [null, true, false]}], "ünïcødé": "日本語"}`,
	`{"a": 1, "a": 2, "credHelpers": {"gcr.io": "x"}, "credHelpers": {"eu.gcr.io": "y"}}`,
	`{"cred\u0048elpers": {"gcr.io": "other"}, "\ud83d\udc33": "\ud83d"}`,
	"{\n  \"auths\" : { } ,\r\n\t\"kubeconfig\":\"~/.kube/config\"\n}\n",
	`{"plugins": {"-x-cli-hints": {"enabled": "true"}}, "aliases": {"builder": "buildx"}, "currentContext": "default"}`,
}

// FuzzConfigRoundTrip checks that for any JSON object, adding our
// credHelpers entry keeps every other top-level key with an equal value,
// that the output is stable (a second run changes no byte) and that
// removing the entry again restores credHelpers.
func FuzzConfigRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range fixtures {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := &File{path: "config.json", existed: true, onDisk: data}
		parseErr := cfg.parse(data)

		var orig map[string]any
		if len(bytes.Trim(data, " \t\r\n")) == 0 {
			if parseErr != nil {
				t.Fatalf("empty input refused: %v", parseErr)
			}
			orig = map[string]any{}
		} else if err := json.Unmarshal(data, &orig); err != nil || orig == nil {
			return // not a JSON object encoding/json can read
		}
		if parseErr != nil {
			// Only a credHelpers docker itself cannot read is refused.
			if allStrings(orig[credHelpersKey]) {
				t.Fatalf("valid config refused: %v", parseErr)
			}
			return
		}

		const host, name = "gcr.io", "gcp"
		cfg.SetCredHelper(host, name)
		out := cfg.Bytes()
		got := decodeObject(t, out)

		for k, v := range orig {
			if k == credHelpersKey {
				continue
			}
			if !reflect.DeepEqual(got[k], v) {
				t.Fatalf("key %q: got %#v, want %#v\noutput:\n%s", k, got[k], v, out)
			}
		}
		wantHelpers := map[string]any{}
		if m, ok := orig[credHelpersKey].(map[string]any); ok {
			for k, v := range m {
				wantHelpers[k] = v
			}
		}
		wantHelpers[host] = name
		if !reflect.DeepEqual(got[credHelpersKey], wantHelpers) {
			t.Fatalf("credHelpers = %#v, want %#v", got[credHelpersKey], wantHelpers)
		}
		wantLen := len(orig)
		if _, ok := orig[credHelpersKey]; !ok {
			wantLen++
		}
		if len(got) != wantLen {
			t.Fatalf("output has %d keys, want %d:\n%s", len(got), wantLen, out)
		}

		// A second run on the output changes nothing.
		again := &File{path: "config.json", existed: true, onDisk: out}
		if err := again.parse(out); err != nil {
			t.Fatalf("own output refused: %v\n%s", err, out)
		}
		if again.SetCredHelper(host, name) {
			t.Fatal("second SetCredHelper reported a change")
		}
		if out2 := again.Bytes(); !bytes.Equal(out2, out) {
			t.Fatalf("not stable:\n%s\nthen\n%s", out, out2)
		}

		// Removing it restores credHelpers (absent if it ends up empty).
		if !again.RemoveCredHelper(host, name) {
			t.Fatal("RemoveCredHelper found nothing to remove")
		}
		restored := decodeObject(t, again.Bytes())
		delete(wantHelpers, host)
		if len(wantHelpers) == 0 {
			if _, ok := restored[credHelpersKey]; ok {
				t.Fatalf("empty credHelpers kept: %s", again.Bytes())
			}
		} else if !reflect.DeepEqual(restored[credHelpersKey], wantHelpers) {
			t.Fatalf("after remove credHelpers = %#v, want %#v", restored[credHelpersKey], wantHelpers)
		}
	})
}

// allStrings reports whether v is null or an object of strings.
func allStrings(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return v == nil
	}
	for _, x := range m {
		if _, ok := x.(string); !ok {
			return false
		}
	}
	return true
}

func decodeObject(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		t.Fatalf("output is not a JSON object (%v):\n%s", err, data)
	}
	return m
}
