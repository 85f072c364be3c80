package dockerconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// writeConfig writes data as config.json in a fresh directory with mode perm.
func writeConfig(t *testing.T, data []byte, perm fs.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // beat the umask
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, path string) *File {
	t.Helper()
	f, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return f
}

func decode(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, data)
	}
	return m
}

func TestPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	if got, want := Path(), filepath.Join(dir, "config.json"); got != want {
		t.Errorf("with DOCKER_CONFIG: Path() = %s, want %s", got, want)
	}
	home := t.TempDir()
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("HOME", home)
	if got, want := Path(), filepath.Join(home, ".docker", "config.json"); got != want {
		t.Errorf("without DOCKER_CONFIG: Path() = %s, want %s", got, want)
	}
}

func TestLoadMissingAndEmpty(t *testing.T) {
	for name, data := range map[string][]byte{
		"missing":      nil,
		"empty":        {},
		"whitespace":   []byte(" \n\t\r\n"),
		"empty object": []byte("{}"),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			if data != nil {
				path = writeConfig(t, data, 0o600)
			}
			f := mustLoad(t, path)
			if f.Exists() != (data != nil) {
				t.Errorf("Exists() = %v", f.Exists())
			}
			if len(f.CredHelpers()) != 0 || len(f.Auths()) != 0 || f.CredsStore() != "" {
				t.Errorf("not empty: %v %v %q", f.CredHelpers(), f.Auths(), f.CredsStore())
			}
			if !f.SetCredHelper("gcr.io", "gcp") {
				t.Fatal("SetCredHelper on an empty config reported no change")
			}
			want := "{\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcp\"\n\t}\n}\n"
			if name == "empty object" { // an existing file without a newline keeps having none
				want = strings.TrimSuffix(want, "\n")
			}
			if got := string(f.Bytes()); got != want {
				t.Errorf("Bytes() =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestLoadRefusesInvalid(t *testing.T) {
	for name, tc := range map[string]struct{ data, detail string }{
		"truncated":          {"{\n\t\"auths\": {", "it is not valid JSON: unexpected end of JSON input at line 2, column 11"},
		"garbage":            {`auths = 1`, "it is not valid JSON: invalid character 'a' looking for beginning of value at line 1, column 1"},
		"trailing comma":     {"{\n\t\"a\": 1,\n}", "it is not valid JSON: invalid character '}' looking for beginning of object key string at line 3, column 1"},
		"missing comma":      {"{\n  \"a\": 1\n  \"b\": 2\n}", "invalid character '\"' after object key:value pair at line 3, column 3"},
		"two objects":        {"{}\n  {}", "it is not valid JSON: invalid character '{' after top-level value at line 2, column 3"},
		"trailing garbage":   {`{"a": 1} x`, "at line 1, column 10"},
		"array":              {`[{"auths": {}}]`, "not a JSON object"},
		"string":             {`"config"`, "not a JSON object"},
		"null":               {`null`, "not a JSON object"},
		"byte order mark":    {"\ufeff{}", "it starts with a UTF-8 byte-order mark (BOM), which docker cannot read either; save it as UTF-8 without BOM"},
		"credHelpers array":  {`{"credHelpers": ["gcr.io"]}`, "credHelpers"},
		"credHelpers number": {`{"credHelpers": {"gcr.io": 1}}`, "credHelpers"},
		"credHelpers string": {`{"credHelpers": "gcp"}`, "credHelpers"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, []byte(tc.data), 0o600)
			_, err := Load(path)
			if err == nil {
				t.Fatal("Load accepted it")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			msg := err.Error()
			for _, want := range []string{path + ": ", tc.detail, "fix it or move it away"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
		})
	}
}

func TestLoadDirectoryIsError(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Load(directory) = %v, want an error naming it", err)
	}
}

// A file docker wrote (tabs, no trailing newline) comes back byte for byte
// once our entries are taken out again, and with them only credHelpers
// differs.
func TestDockerWrittenFileKeptByteForByte(t *testing.T) {
	orig := readFixture(t, "docker-desktop.json")
	path := writeConfig(t, orig, 0o600)
	f := mustLoad(t, path)
	if got := f.Bytes(); !bytes.Equal(got, orig) {
		t.Fatalf("unchanged Bytes() differs from docker's own file:\n%s", got)
	}
	f.SetCredHelper("gcr.io", "gcp")
	f.SetCredHelper("europe-docker.pkg.dev", "gcp")
	want := strings.TrimSuffix(string(orig), "\n}") +
		",\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcp\",\n\t\t\"europe-docker.pkg.dev\": \"gcp\"\n\t}\n}"
	if got := string(f.Bytes()); got != want {
		t.Errorf("Bytes() =\n%s\nwant\n%s", got, want)
	}
	if !f.RemoveCredHelper("gcr.io", "gcp") || !f.RemoveCredHelper("europe-docker.pkg.dev", "gcp") {
		t.Fatal("RemoveCredHelper reported no change")
	}
	if got := f.Bytes(); !bytes.Equal(got, orig) {
		t.Errorf("after removing our entries Bytes() =\n%s\nwant the original", got)
	}
}

// A hand-written file is re-indented with tabs, but every value, escape
// and key position stays.
func TestRichFileKeepsKeysValuesAndOrder(t *testing.T) {
	orig := readFixture(t, "rich.json")
	f := mustLoad(t, writeConfig(t, orig, 0o640))
	f.SetCredHelper("gcr.io", "gcp")
	f.SetCredHelper("asia.gcr.io", "gcp")
	out := f.Bytes()

	var origKeys, outKeys []string
	for _, m := range f.members {
		outKeys = append(outKeys, m.key)
	}
	members, err := parseObject(orig)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		origKeys = append(origKeys, m.key)
	}
	if !reflect.DeepEqual(origKeys, outKeys) {
		t.Errorf("key order %v, want %v", outKeys, origKeys)
	}
	before, after := decode(t, orig), decode(t, out)
	for k, v := range before {
		if k == credHelpersKey {
			continue
		}
		if !reflect.DeepEqual(after[k], v) {
			t.Errorf("%q = %#v, want %#v", k, after[k], v)
		}
	}
	wantHelpers := map[string]any{"public.ecr.aws": "ecr-login", "asia.gcr.io": "gcp", "gcr.io": "gcp"}
	if !reflect.DeepEqual(after[credHelpersKey], wantHelpers) {
		t.Errorf("credHelpers = %v, want %v", after[credHelpersKey], wantHelpers)
	}
	for _, raw := range []string{
		// escapes as written, not re-encoded
		`"Docker-Client/\u00e9t\u00e9 <b>&amp;</b>"`,
		`"unicode \u2603 ☃": "日本語 \ud83d\udc33"`,
		`2.50`, `-3e10`, `"emptyList": []`, `"empty": {}`,
		// existing helpers keep their place, new ones are appended
		"\"credHelpers\": {\n\t\t\"public.ecr.aws\": \"ecr-login\",\n\t\t\"asia.gcr.io\": \"gcp\",\n\t\t\"gcr.io\": \"gcp\"\n\t},\n\t\"proxies\"",
	} {
		if !bytes.Contains(out, []byte(raw)) {
			t.Errorf("output lacks %s:\n%s", raw, out)
		}
	}
	if bytes.Contains(out, []byte("\n  ")) {
		t.Errorf("output still has space indentation:\n%s", out)
	}
	if !bytes.HasSuffix(out, []byte("}\n")) {
		t.Error("the file's trailing newline was dropped")
	}
}

func TestAuthsAndCredsStore(t *testing.T) {
	f := mustLoad(t, writeConfig(t, readFixture(t, "rich.json"), 0o600))
	want := map[string][]string{"gcr.io": {"https://gcr.io"}, "eu.gcr.io": {"eu.gcr.io"}, "registry.example.com:5000": {"registry.example.com:5000"}}
	if got := f.Auths(); !reflect.DeepEqual(got, want) {
		t.Errorf("Auths() = %v, want %v", got, want)
	}
	if got := f.CredsStore(); got != "osxkeychain" {
		t.Errorf("CredsStore() = %q", got)
	}

	f = mustLoad(t, writeConfig(t, []byte(`{"auths": "nonsense", "credsStore": 7}`), 0o600))
	if got := f.Auths(); len(got) != 0 {
		t.Errorf("malformed auths: Auths() = %v", got)
	}
	if got := f.CredsStore(); got != "" {
		t.Errorf("malformed credsStore: CredsStore() = %q", got)
	}
	f = mustLoad(t, writeConfig(t, []byte(`{"auths": {"not a host!": {"auth": "eDp5"}, "https://ASIA.GCR.IO/v2/": {"auth": "eDp5"}, "asia.gcr.io": {"auth": "eDp5"}, "x.io": 3}}`), 0o600))
	if got, want := f.Auths(), map[string][]string{"asia.gcr.io": {"asia.gcr.io", "https://ASIA.GCR.IO/v2/"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Auths() = %v, want %v", got, want)
	}
}

func TestSetAndRemoveCredHelper(t *testing.T) {
	f := mustLoad(t, writeConfig(t, readFixture(t, "gcloud.json"), 0o600))
	if f.Changed() {
		t.Fatal("Changed() after Load")
	}
	if !f.SetCredHelper("gcr.io", "gcp") {
		t.Error("replacing gcloud reported no change")
	}
	if f.SetCredHelper("gcr.io", "gcp") {
		t.Error("setting the same value again reported a change")
	}
	if f.RemoveCredHelper("us.gcr.io", "gcp") {
		t.Error("removed an entry that belongs to gcloud")
	}
	if f.RemoveCredHelper("absent.gcr.io", "gcp") {
		t.Error("removed an absent entry")
	}
	if !f.RemoveCredHelper("gcr.io", "gcp") {
		t.Error("did not remove our entry")
	}
	got := f.CredHelpers()
	if _, ok := got["gcr.io"]; ok || got["us.gcr.io"] != "gcloud" || len(got) != 6 {
		t.Errorf("CredHelpers() = %v", got)
	}
	if !f.Changed() {
		t.Error("Changed() = false after changes")
	}

	// A helper name written with escapes is still ours.
	f = mustLoad(t, writeConfig(t, []byte(`{"credHelpers": {"gcr.io": "\u0067cp"}}`), 0o600))
	if f.SetCredHelper("gcr.io", "gcp") {
		t.Error(`"\u0067cp" is "gcp": no change expected`)
	}
	if !f.RemoveCredHelper("gcr.io", "gcp") {
		t.Error(`"\u0067cp" not removed`)
	}
}

// Emptying credHelpers drops the key (docker's omitempty); an empty one we
// did not touch stays; null is replaced only when we add.
func TestCredHelpersKeyLifecycle(t *testing.T) {
	f := mustLoad(t, writeConfig(t, []byte("{\n\t\"credHelpers\": {},\n\t\"a\": 1\n}"), 0o600))
	if f.RemoveCredHelper("gcr.io", "gcp") {
		t.Error("removal from an empty credHelpers reported a change")
	}
	if got := string(f.Bytes()); got != "{\n\t\"credHelpers\": {},\n\t\"a\": 1\n}" {
		t.Errorf("untouched empty credHelpers changed:\n%s", got)
	}
	f.SetCredHelper("gcr.io", "gcp")
	f.RemoveCredHelper("gcr.io", "gcp")
	if got := string(f.Bytes()); got != "{\n\t\"a\": 1\n}" {
		t.Errorf("emptied credHelpers not dropped:\n%s", got)
	}

	f = mustLoad(t, writeConfig(t, []byte(`{"credHelpers": null}`), 0o600))
	if got := string(f.Bytes()); got != "{\n\t\"credHelpers\": null\n}" {
		t.Errorf("null credHelpers rendered as\n%s", got)
	}
	f.SetCredHelper("gcr.io", "gcp")
	if got := decode(t, f.Bytes())[credHelpersKey]; !reflect.DeepEqual(got, map[string]any{"gcr.io": "gcp"}) {
		t.Errorf("credHelpers = %v", got)
	}
}

// A repeated key keeps its first place and its last value, as docker
// reads it; inside credHelpers only once we change it.
func TestDuplicateKeys(t *testing.T) {
	f := mustLoad(t, writeConfig(t, []byte(`{"a": 1, "credHelpers": {"gcr.io": "x", "gcr.io": "gcp"}, "b": 2, "a": 3}`), 0o600))
	if f.SetCredHelper("gcr.io", "gcp") {
		t.Error("last value is gcp: no change expected")
	}
	want := "{\n\t\"a\": 3,\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"x\",\n\t\t\"gcr.io\": \"gcp\"\n\t},\n\t\"b\": 2\n}"
	if got := string(f.Bytes()); got != want {
		t.Errorf("Bytes() =\n%s\nwant\n%s", got, want)
	}
	f.SetCredHelper("eu.gcr.io", "gcp")
	want = "{\n\t\"a\": 3,\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcp\",\n\t\t\"eu.gcr.io\": \"gcp\"\n\t},\n\t\"b\": 2\n}"
	if got := string(f.Bytes()); got != want {
		t.Errorf("Bytes() =\n%s\nwant\n%s", got, want)
	}
}

func TestSaveNewFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docker")
	path := filepath.Join(dir, "config.json")
	f := mustLoad(t, path)
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Save with no change created the file (stat: %v)", err)
	}
	f.SetCredHelper("gcr.io", "gcp")
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	assertMode(t, dir, fs.ModeDir|0o700)
	assertMode(t, path, 0o600)
	if got := decode(t, mustRead(t, path))[credHelpersKey]; !reflect.DeepEqual(got, map[string]any{"gcr.io": "gcp"}) {
		t.Errorf("credHelpers = %v", got)
	}
}

func TestSaveKeepsModeAndIsIdempotent(t *testing.T) {
	path := writeConfig(t, readFixture(t, "rich.json"), 0o640)
	f := mustLoad(t, path)
	f.SetCredHelper("gcr.io", "gcp")
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o640)
	first := mustRead(t, path)

	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	f = mustLoad(t, path)
	if f.SetCredHelper("gcr.io", "gcp") {
		t.Error("second run reported a change")
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustRead(t, path), first) {
		t.Error("second run changed bytes")
	}
	if fi, err := os.Stat(path); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("second run rewrote the file (mtime %v, want %v)", fi.ModTime(), old)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("left files behind: %v", entries)
	}
}

// Save with changes that cancel out (set then remove) writes nothing;
// an unchanged file is never reformatted.
func TestSaveNoRewriteWhenBytesEqual(t *testing.T) {
	orig := readFixture(t, "docker-desktop.json")
	path := writeConfig(t, orig, 0o600)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	f := mustLoad(t, path)
	f.SetCredHelper("gcr.io", "gcp")
	f.RemoveCredHelper("gcr.io", "gcp")
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); !fi.ModTime().Equal(old) {
		t.Error("file rewritten although its bytes would not change")
	}

	rich := readFixture(t, "rich.json")
	path = writeConfig(t, rich, 0o600)
	f = mustLoad(t, path)
	f.SetCredHelper("public.ecr.aws", "ecr-login") // already so
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustRead(t, path), rich) {
		t.Error("an unchanged file was reformatted")
	}
}

func TestSaveThroughSymlink(t *testing.T) {
	realDir := t.TempDir()
	target := filepath.Join(realDir, "real.json")
	if err := os.WriteFile(target, []byte(`{"auths": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	link := filepath.Join(dir, "config.json")
	// a chain of two links, the first relative
	if err := os.Symlink(target, filepath.Join(dir, "middle.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("middle.json", link); err != nil {
		t.Fatal(err)
	}
	f := mustLoad(t, link)
	if f.Target() != target {
		t.Errorf("Target() = %s, want %s", f.Target(), target)
	}
	f.SetCredHelper("gcr.io", "gcp")
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("config.json is no longer a symlink (%v)", err)
	}
	assertMode(t, target, 0o644)
	if got := decode(t, mustRead(t, target))[credHelpersKey]; got == nil {
		t.Errorf("target not updated:\n%s", mustRead(t, target))
	}
}

func TestSaveThroughDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "sub", "real.json")
	link := filepath.Join(dir, "config.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	f := mustLoad(t, link)
	if f.Exists() {
		t.Error("a dangling link Exists()")
	}
	f.SetCredHelper("gcr.io", "gcp")
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	assertMode(t, target, 0o600)
}

func TestSymlinkLoop(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	if err := os.Symlink(b, a); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a, b); err != nil {
		t.Fatal(err)
	}
	_, err := Load(a)
	if err == nil || !strings.Contains(err.Error(), "symlink loop") || !strings.Contains(err.Error(), a) {
		t.Errorf("Load(loop) = %v, want a symlink loop error naming %s", err, a)
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModeDir | fs.ModePerm); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
