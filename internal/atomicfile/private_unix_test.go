//go:build unix

package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// foreignUID is a uid that is not the test's; chowning to it needs root.
const foreignUID = 65534

// chownForeign gives path to another user, skipping where only root may.
func chownForeign(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: giving a file to another user needs root; the mode checks run without it")
	}
	if err := os.Lchown(path, foreignUID, foreignUID); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDir(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := CheckDir(mk("own", 0o700)); err != nil {
		t.Errorf("own 0700 dir: %v", err)
	}
	if err := CheckDir(mk("own-readable", 0o755)); err != nil {
		t.Errorf("own 0755 dir: %v", err)
	}
	if err := CheckDir(filepath.Join(root, "missing")); err != nil {
		t.Errorf("missing dir: %v", err)
	}
	for i, mode := range []os.FileMode{0o777, 0o770, 0o707, os.ModeSticky | 0o777} {
		err := CheckDir(mk("open-"+strconv.Itoa(i), mode))
		if !errors.Is(err, ErrUntrusted) {
			t.Errorf("dir of mode %s: %v, want ErrUntrusted", mode, err)
		}
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(mk("target", 0o777), link); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(link); !errors.Is(err, ErrUntrusted) {
		t.Errorf("link to a 0777 dir: %v, want ErrUntrusted", err)
	}

	foreign := mk("foreign", 0o700)
	chownForeign(t, foreign)
	err := CheckDir(foreign)
	if !errors.Is(err, ErrUntrusted) {
		t.Fatalf("dir of another user: %v, want ErrUntrusted", err)
	}
	if want := foreign + " is owned by uid 65534, not you (uid 0)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestReadPrivateFile(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "own")
	if err := os.WriteFile(own, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadPrivateFile(own, 100); err != nil || string(data) != "mine" {
		t.Errorf("own 0600 file: %q, %v", data, err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(own, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateFile(link, 100); err != nil {
		t.Errorf("link to own file: %v", err)
	}
	if _, err := ReadPrivateEntry(link, 100); err == nil {
		t.Error("ReadPrivateEntry followed a symbolic link")
	}
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("planted"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func(string, int64) ([]byte, error){ReadPrivateFile, ReadPrivateEntry} {
		if _, err := read(open, 100); !errors.Is(err, ErrUntrusted) {
			t.Errorf("0666 file: %v, want ErrUntrusted", err)
		}
	}
	if _, err := ReadFile(open, 100); err != nil {
		t.Errorf("ReadFile checks no owner: %v", err)
	}
	chownForeign(t, own)
	if err := os.Chmod(own, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func(string, int64) ([]byte, error){ReadPrivateFile, ReadPrivateEntry} {
		if _, err := read(own, 100); !errors.Is(err, ErrUntrusted) {
			t.Errorf("file of another user: %v, want ErrUntrusted", err)
		}
	}
}

// A symbolic link planted at a lock's path is never followed: the lock
// fails, and the file it points to is neither created nor locked.
func TestNewLockRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{victim, existing} {
		lockPath := filepath.Join(dir, filepath.Base(target)+".lock")
		if err := os.Symlink(target, lockPath); err != nil {
			t.Fatal(err)
		}
		l := NewLock(lockPath, 0o600)
		if ok, err := l.TryLock(); ok || err == nil {
			t.Errorf("lock through a symlink to %s: ok=%v err=%v, want refused", target, ok, err)
			l.Unlock()
		}
	}
	if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock created the symlink's target: %v", err)
	}
	if data, _ := os.ReadFile(existing); string(data) != "keep" {
		t.Errorf("the symlink's target changed: %q", data)
	}
}

func TestCheckLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l := NewLock(path, 0o600)
	if ok, err := l.TryLock(); !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	defer l.Unlock()
	if err := CheckLock(l); err != nil {
		t.Errorf("own lock: %v", err)
	}
	chownForeign(t, path)
	if err := CheckLock(l); !errors.Is(err, ErrUntrusted) {
		t.Errorf("lock file of another user: %v, want ErrUntrusted", err)
	}
}

// statInfo is an fs.FileInfo with a chosen owner and mode.
type statInfo struct {
	fs.FileInfo
	uid  uint32
	mode fs.FileMode
}

func (s statInfo) Mode() fs.FileMode { return s.mode }
func (s statInfo) Sys() any          { return &syscall.Stat_t{Uid: s.uid} }

func TestNotTrustedBy(t *testing.T) {
	const me = 1000
	for _, tc := range []struct {
		uid  uint32
		mode fs.FileMode
		want string
	}{
		{me, 0o600, ""},
		{me, 0o644, ""},
		{me, 0o444, ""},
		{0, 0o644, ""}, // a mounted secret, or a file root installed
		{0, 0o400, ""},
		{me, 0o664, "writable by group or others (mode -rw-rw-r--)"},
		{me, 0o646, "writable by group or others (mode -rw-r--rw-)"},
		{0, 0o666, "writable by group or others (mode -rw-rw-rw-)"},
		{65534, 0o600, "owned by uid 65534, not you (uid 1000) or root"},
		{65534, 0o644, "owned by uid 65534, not you (uid 1000) or root"},
	} {
		if got := notTrustedBy(statInfo{uid: tc.uid, mode: tc.mode}, me); got != tc.want {
			t.Errorf("uid %d, mode %s: %q, want %q", tc.uid, tc.mode, got, tc.want)
		}
	}
}

func TestReadTrustedFile(t *testing.T) {
	dir := t.TempDir()
	own := filepath.Join(dir, "own")
	if err := os.WriteFile(own, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(own, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(own, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{own, link} {
		if data, err := ReadTrustedFile(p, 100); err != nil || string(data) != "mine" {
			t.Errorf("own 0644 file %s: %q, %v", p, data, err)
		}
	}
	// What counts is the file the link leads to, as opened.
	if err := os.Chmod(own, 0o664); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{own, link} {
		if _, err := ReadTrustedFile(p, 100); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), p+" is writable by group or others") {
			t.Errorf("0664 file %s: %v, want ErrUntrusted naming it", p, err)
		}
	}
	if err := os.Chmod(own, 0o600); err != nil {
		t.Fatal(err)
	}
	chownForeign(t, own)
	if _, err := ReadTrustedFile(link, 100); !errors.Is(err, ErrUntrusted) {
		t.Errorf("file of another user: %v, want ErrUntrusted", err)
	}
}
