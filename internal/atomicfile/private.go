package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/gofrs/flock"
)

// ErrUntrusted marks a directory or file we keep private data in that
// another local user could have planted or could change: not owned by the
// current user, or writable by group or others. Callers ignore it (the
// cache) or ignore it with a warning (settings, stored credentials).
var ErrUntrusted = errors.New("not private to the current user")

// UntrustedError says which path is not private and why. It matches
// ErrUntrusted.
type UntrustedError struct {
	Path   string
	Reason string // e.g. "owned by uid 1001, not you (uid 1000)"
}

// Error names the path and why it is not private.
func (e *UntrustedError) Error() string { return e.Path + " is " + e.Reason }

// Is makes errors.Is(err, ErrUntrusted) true.
func (e *UntrustedError) Is(target error) bool { return target == ErrUntrusted }

// CheckPrivate returns an *UntrustedError when fi, the file or directory
// at path, is not owned by the current user or is writable by group or
// others; on systems without Unix owners (Windows) it returns nil.
func CheckPrivate(path string, fi fs.FileInfo) error {
	if reason := notPrivate(fi); reason != "" {
		return &UntrustedError{Path: path, Reason: reason}
	}
	return nil
}

// CheckDir checks the directory dir as CheckPrivate does, following a
// symbolic link to it. A dir that does not exist yet is fine (we create
// it, private); one that is not a directory is an error.
//
// Only dir itself is checked, and (by the readers) each file in it, not
// its parents: the user cannot own /tmp or /, and a parent that lets
// others replace dir only lets them put in a dir of their own, which this
// check then refuses.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return CheckPrivate(dir, fi)
}

// ReadPrivateFile is ReadFile for a file that must be private: one not
// owned by the current user, or writable by group or others, is refused
// with an *UntrustedError. A symbolic link at path is followed and the
// file it leads to checked.
func ReadPrivateFile(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, 0, CheckPrivate)
}

// ReadPrivateEntry is ReadPrivateFile that also refuses a symbolic link at
// path, for files only this program ever creates (cache entries).
func ReadPrivateEntry(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, noFollow, CheckPrivate)
}

// CheckTrusted returns an *UntrustedError when fi, the file at path, could
// be changed by a user other than the current one or root: owned by
// someone else, or writable by group or others. It is OpenSSH's
// StrictModes rule for files we read but others may provide, such as a
// credential file a root-owned secret mount holds; on systems without Unix
// owners (Windows) it returns nil.
func CheckTrusted(path string, fi fs.FileInfo) error {
	if reason := notTrusted(fi); reason != "" {
		return &UntrustedError{Path: path, Reason: reason}
	}
	return nil
}

// ReadTrustedFile is ReadFile for a file whose content decides where our
// secrets go: one that a user other than the current one or root could
// change is refused with an *UntrustedError. A symbolic link at path is
// followed (a Kubernetes secret volume is links into a root-owned dir),
// and the file actually opened is checked.
func ReadTrustedFile(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, 0, CheckTrusted)
}

// CheckLock checks the file of a held lock as CheckPrivate does; a lock
// file planted by another user is not to be trusted to exclude anyone.
func CheckLock(l *flock.Flock) error {
	fi, err := l.Stat()
	if err != nil {
		return err
	}
	return CheckPrivate(l.Path(), fi)
}
