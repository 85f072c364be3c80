// Package dockerconfig edits docker's config.json in place for
// configure-docker: it changes only the credHelpers entries asked for and
// keeps every other key, its raw value, the key order and the file's mode,
// so running it again changes no byte.
package dockerconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/docker-credential-gcp/docker-credential-gcp/helper"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/jsonpos"
)

// credHelpersKey is the one top-level key this package re-renders.
const credHelpersKey = "credHelpers"

// maxSymlinks bounds how many symbolic links Load follows (Linux's limit),
// so a loop is a clear error rather than a hang.
const maxSymlinks = 40

// maxSize bounds what Load reads: a docker config with thousands of logins
// is still well under it, and a link to /dev/zero is not read forever.
const maxSize = 4 << 20

// ErrInvalid marks a config.json that cannot be safely modified: not JSON,
// not a JSON object, or a credHelpers that is not an object of strings.
// Load's error wraps it and names the file.
var ErrInvalid = errors.New("invalid docker config")

// InvalidError is a config.json that is not a docker config: Path says
// which, Detail what is wrong with it (with a line and column where JSON
// gives one). It matches ErrInvalid.
type InvalidError struct{ Path, Detail string }

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s: %s; fix it or move it away", e.Path, e.Detail)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// utf8BOM is the byte-order mark some Windows editors put first.
var utf8BOM = []byte("\xef\xbb\xbf")

// Path is docker's config file: $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json, as the docker CLI itself decides.
func Path() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		if u, uerr := user.Current(); uerr == nil {
			home = u.HomeDir
		}
	}
	return filepath.Join(home, ".docker", "config.json")
}

// member is one key of a JSON object as written: the decoded key, its raw
// bytes (escapes kept) and its raw value.
type member struct {
	key    string
	rawKey []byte
	value  json.RawMessage
}

// File is a docker config.json loaded for a read-modify-write. Only the
// credHelpers object is ever re-rendered; every other top-level value is
// kept as written and only re-indented the way docker writes the file.
type File struct {
	path    string // as given to Load, for messages
	target  string // path with symbolic links resolved: what is read and written
	existed bool
	onDisk  []byte
	mode    fs.FileMode

	members []member // top-level keys in file order, duplicates collapsed
	helpers []member // credHelpers entries in file order
	// helpersDirty says credHelpers must be rendered from helpers rather
	// than copied from its raw value.
	helpersDirty bool
	changed      bool
}

// Load reads the docker config at path, following symbolic links. A missing
// or empty file is an empty config; one that is not a JSON object (or whose
// credHelpers is not an object of strings) is an error wrapping ErrInvalid.
func Load(path string) (*File, error) {
	target, err := resolveSymlinks(path)
	if err != nil {
		return nil, err
	}
	f := &File{path: path, target: target}
	// Bounded and non-blocking: a FIFO or a device at the path is refused
	// rather than waited on or read without end.
	data, err := atomicfile.ReadFile(target, maxSize)
	if notThere(err) {
		return f, nil
	}
	if err != nil {
		// err names the file read; name the config too when a link led there.
		if target != path {
			err = fmt.Errorf("reading %s: %w", path, err)
		}
		return nil, fmt.Errorf("%w; docker's config.json must be a regular file of at most 4 MiB", err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	f.existed, f.onDisk, f.mode = true, data, fi.Mode().Perm()
	if err := f.parse(data); err != nil {
		return nil, err
	}
	return f, nil
}

// resolveSymlinks follows path's final component through at most
// maxSymlinks links, like docker does before it writes; a missing file or a
// dangling link resolves to the path that would be created.
func resolveSymlinks(path string) (string, error) {
	p := path
	for range maxSymlinks {
		fi, err := os.Lstat(p)
		if notThere(err) {
			return p, nil
		}
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", path, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", path, err)
		}
		if !filepath.IsAbs(link) {
			// Not filepath.Join: cleaning ".." lexically is wrong when a
			// directory on the way is itself a link; the kernel resolves it.
			link = filepath.Dir(p) + string(filepath.Separator) + link
		}
		p = link
	}
	return "", fmt.Errorf("reading %s: more than %d symbolic links (a symlink loop?)", path, maxSymlinks)
}

// notThere reports whether err says the file cannot exist: missing, or a
// directory on its way is a regular file (HOME set to a file).
func notThere(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// parse fills f from the file's bytes.
func (f *File) parse(data []byte) error {
	if len(bytes.Trim(data, " \t\r\n")) == 0 {
		return nil
	}
	if bytes.HasPrefix(data, utf8BOM) {
		// docker's own JSON decoder chokes on it too, and ignores the file.
		return &InvalidError{f.path, "it starts with a UTF-8 byte-order mark (BOM), which docker cannot read either; save it as UTF-8 without BOM"}
	}
	members, err := parseObject(data)
	if err != nil {
		return &InvalidError{f.path, err.Error()}
	}
	f.members = members
	for _, m := range members {
		if m.key != credHelpersKey || string(m.value) == "null" {
			continue
		}
		helpers, err := parseObject(m.value)
		if err == nil {
			for _, h := range helpers {
				if len(h.value) == 0 || h.value[0] != '"' {
					err = errors.New("a value is not a string")
					break
				}
			}
		}
		if err != nil {
			return &InvalidError{f.path, fmt.Sprintf("its %q is not an object of strings (%v)", credHelpersKey, err)}
		}
		f.helpers = helpers
	}
	return nil
}

// parseObject splits a JSON object into its members in order. A repeated
// key keeps its first position and its last value, which is the value
// encoding/json (and so docker) reads.
func parseObject(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, notJSON(err, data)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("it is not a JSON object (it starts with %s)", describeToken(tok))
	}
	var members []member
	index := make(map[string]int)
	prev := dec.InputOffset()
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notJSON(err, data)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("it is not valid JSON (object key is %s)", describeToken(tok))
		}
		// Between the previous value and the end of this key lie only
		// white space, a comma and the key as written.
		rawKey := bytes.TrimLeft(data[prev:dec.InputOffset()], " \t\r\n,")
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, notJSON(err, data)
		}
		prev = dec.InputOffset()
		if i, ok := index[key]; ok {
			members[i].value = value
			continue
		}
		index[key] = len(members)
		members = append(members, member{key: key, rawKey: bytes.Clone(rawKey), value: value})
	}
	if _, err := dec.Token(); err != nil {
		return nil, notJSON(err, data)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, notJSON(errors.New("more data after the top-level object"), data)
	}
	return members, nil
}

// notJSON says where and why data is not valid JSON. A Decoder's token
// errors place the offset differently from json.Unmarshal's, so the
// position comes from Unmarshal, which reports the first error the same way
// for every kind of mistake.
func notJSON(err error, data []byte) error {
	var v any
	if uerr := json.Unmarshal(data, &v); uerr != nil {
		err = uerr
	}
	return fmt.Errorf("it is not valid JSON: %s", jsonpos.Describe(err, data))
}

// describeToken names a JSON token for an error message.
func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", string(v))
	case string:
		return "a string"
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%v", v)
	}
}

// memberIndex returns the position of the top-level key, or -1.
func (f *File) memberIndex(key string) int {
	for i, m := range f.members {
		if m.key == key {
			return i
		}
	}
	return -1
}

// member returns the top-level value of key, or nil.
func (f *File) member(key string) json.RawMessage {
	if i := f.memberIndex(key); i >= 0 {
		return f.members[i].value
	}
	return nil
}

// CredHelpers returns a copy of the credHelpers map: registry host (as
// docker spells it) to helper name.
func (f *File) CredHelpers() map[string]string {
	out := make(map[string]string, len(f.helpers))
	for _, h := range f.helpers {
		out[h.key] = stringValue(h)
	}
	return out
}

// stringValue decodes a credHelpers value (a JSON string, checked by parse).
func stringValue(h member) string {
	var s string
	_ = json.Unmarshal(h.value, &s)
	return s
}

// SetCredHelper routes host to docker-credential-<helperName> and reports
// whether that changed anything. A new host goes after the existing ones.
func (f *File) SetCredHelper(host, helperName string) (changed bool) {
	value := marshalString(helperName)
	for i, h := range f.helpers {
		if h.key == host {
			if stringValue(h) == helperName {
				return false
			}
			f.helpers[i].value = value
			f.markHelpersChanged()
			return true
		}
	}
	f.helpers = append(f.helpers, member{key: host, rawKey: marshalString(host), value: value})
	if f.memberIndex(credHelpersKey) < 0 {
		f.members = append(f.members, member{key: credHelpersKey, rawKey: marshalString(credHelpersKey)})
	}
	f.markHelpersChanged()
	return true
}

// RemoveCredHelper takes host out of credHelpers if, and only if, it is
// routed to helperName, and reports whether it did. When that leaves
// credHelpers empty the key itself goes, as docker (omitempty) would drop it.
func (f *File) RemoveCredHelper(host, helperName string) (changed bool) {
	for i, h := range f.helpers {
		if h.key != host {
			continue
		}
		if stringValue(h) != helperName {
			return false
		}
		f.helpers = append(f.helpers[:i:i], f.helpers[i+1:]...)
		if len(f.helpers) == 0 {
			f.helpers = nil
			j := f.memberIndex(credHelpersKey)
			f.members = append(f.members[:j:j], f.members[j+1:]...)
		}
		f.markHelpersChanged()
		return true
	}
	return false
}

func (f *File) markHelpersChanged() {
	f.helpersDirty = true
	f.changed = true
}

// Auths returns the hosts (normalised by helper.ParseHost, so
// "https://gcr.io" is gcr.io) that hold a static login in "auths": an entry
// with a non-empty auth or identitytoken. Entries left empty by a credsStore
// are not logins. Malformed entries are skipped. Each host maps to its
// entries' keys as written, sorted: how a key is spelt decides whether
// `docker logout` can remove it.
func (f *File) Auths() map[string][]string {
	out := make(map[string][]string)
	var auths map[string]json.RawMessage
	if err := json.Unmarshal(f.member("auths"), &auths); err != nil {
		return out
	}
	for key, raw := range auths {
		var entry struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		}
		if json.Unmarshal(raw, &entry) != nil || entry.Auth == "" && entry.IdentityToken == "" {
			continue
		}
		if host, err := helper.ParseHost(key); err == nil {
			out[host] = append(out[host], key)
		}
	}
	for _, keys := range out {
		slices.Sort(keys)
	}
	return out
}

// CredsStore is the default credential store docker uses for hosts without
// a credHelpers entry ("desktop", "osxkeychain", ...), or "".
func (f *File) CredsStore() string {
	var s string
	_ = json.Unmarshal(f.member("credsStore"), &s)
	return s
}

// Path is the file as given to Load, for messages.
func (f *File) Path() string { return f.path }

// Target is the file Save writes: Path with symbolic links resolved.
func (f *File) Target() string { return f.target }

// Exists reports whether the file existed when loaded.
func (f *File) Exists() bool { return f.existed }

// Bytes renders the config as docker writes it (tab indentation). Values
// other than credHelpers keep their bytes, escapes and key order; only
// white space between tokens changes.
func (f *File) Bytes() []byte {
	var compact bytes.Buffer
	compact.WriteByte('{')
	for i, m := range f.members {
		if i > 0 {
			compact.WriteByte(',')
		}
		compact.Write(m.rawKey)
		compact.WriteByte(':')
		if m.key == credHelpersKey && f.helpersDirty {
			writeObject(&compact, f.helpers)
		} else {
			compact.Write(m.value)
		}
	}
	compact.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "\t"); err != nil {
		// Unreachable: every piece was validated or marshalled by us.
		out.Reset()
		out.Write(compact.Bytes())
	}
	// Keep a trailing newline if the file had one; docker writes none, a
	// file we create gets one.
	if !f.existed || len(bytes.Trim(f.onDisk, " \t\r\n")) == 0 || bytes.HasSuffix(f.onDisk, []byte("\n")) {
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func writeObject(b *bytes.Buffer, members []member) {
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(m.rawKey)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
}

func marshalString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// Unchanged is the file's content as loaded, byte for byte: what stays on
// disk when nothing is changed.
func (f *File) Unchanged() []byte { return bytes.Clone(f.onDisk) }

// Changed reports whether a Set or Remove changed anything since Load.
func (f *File) Changed() bool { return f.changed }

// Save writes the config atomically through any symbolic link, keeping the
// file's mode (a new file gets 0600 in a 0700 directory). It does nothing
// when nothing was changed (a file is never reformatted for its own sake)
// or when the bytes equal what is on disk.
func (f *File) Save() error {
	if !f.changed {
		return nil
	}
	data := f.Bytes()
	if f.existed && bytes.Equal(data, f.onDisk) {
		f.changed = false
		return nil
	}
	perm := fs.FileMode(0o600)
	if f.existed {
		perm = f.mode
	}
	if err := os.MkdirAll(filepath.Dir(f.target), 0o700); err != nil {
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	if err := atomicfile.WriteFile(f.target, data, perm); err != nil {
		return err
	}
	f.existed, f.onDisk, f.mode, f.changed = true, data, perm, false
	return nil
}
