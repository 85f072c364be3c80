// Package atomicfile reads, writes and locks the small private files we
// keep on disk. A write replaces the file atomically, so a reader sees
// either the old content or the new, never a torn mix, and never a window
// where a secret is readable by others. A read takes only a regular file of
// bounded size, and neither a read nor a lock waits on a FIFO, so that
// nothing planted at a path (a FIFO, /dev/zero) can hang or flood us.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/gofrs/flock"
)

// ErrTooLarge is returned by ReadFile for a file over its size limit.
var ErrTooLarge = errors.New("file too large")

// WriteFile replaces path with data: it writes a temporary file with mode
// perm in the same directory, syncs it and renames it over path.
func WriteFile(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ReadFile returns the content of path if it is a regular file of at most
// limit bytes. It opens without blocking, so a FIFO at path is refused
// rather than waited on; a device or directory is refused too, and a larger
// file is ErrTooLarge. A missing file gives an error matching fs.ErrNotExist.
func ReadFile(path string, limit int64) ([]byte, error) {
	return readFile(path, limit, 0, nil)
}

// readFile is ReadFile opening with the extra flags, and refusing a file
// for which check (when not nil) returns an error.
func readFile(path string, limit int64, flags int, check func(string, fs.FileInfo) error) ([]byte, error) {
	f, _, err := openRegular(path, flags, check)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", path, limit, ErrTooLarge)
	}
	return data, nil
}

// OpenPrivate opens path for reading if it is a regular file private to
// the user (see CheckPrivate), without blocking on a FIFO, and returns it
// with its FileInfo: for a reader that wants only part of the file, such
// as the trace's last lines.
func OpenPrivate(path string) (*os.File, fs.FileInfo, error) {
	return openRegular(path, 0, CheckPrivate)
}

// openRegular opens path read-only and without blocking, with the extra
// flags, and refuses it unless it is a regular file for which check (when
// not nil) returns nil. check sees the file actually opened, so a file
// swapped in after a Stat cannot slip past it.
func openRegular(path string, flags int, check func(string, fs.FileInfo) error) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|flags, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err == nil && check != nil {
		err = check(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// NewLock returns the cross-process lock held on the file path (created
// with mode perm if missing): flock(2) on Unix, LockFileEx on Windows,
// released by the kernel if the process dies. The file is opened without
// blocking, so a FIFO at path fails the lock rather than hanging it, and
// with O_NOFOLLOW, so a symbolic link planted at path fails it too rather
// than creating or locking the file it points to. Check a held lock's file
// with CheckLock.
func NewLock(path string, perm os.FileMode) *flock.Flock {
	return flock.New(path, flock.SetPermissions(perm), flock.SetFlag(os.O_CREATE|os.O_RDONLY|syscall.O_NONBLOCK|noFollow))
}
