package trace

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
)

// The trace file's limits and modes.
const (
	// MaxSize caps the trace file: a line that would take it past this
	// first moves it to FILE.1 (replacing the one before), so a trace left
	// on costs at most twice this much disk.
	MaxSize = 5 << 20
	// dirPerm and filePerm keep the trace private to the user: it names
	// identities, hosts and file paths, though never a secret.
	dirPerm  os.FileMode = 0o700
	filePerm os.FileMode = 0o600
	// tailBytes bounds what Tail reads from the end of the file.
	tailBytes = 64 << 10
)

// maxSize is MaxSize; tests lower it.
var maxSize int64 = MaxSize

// warned is set once this process has warned that its trace cannot be
// written, so a server does not warn on every request.
var warned atomic.Bool

// warnOnce says on w, once per process, that the trace is not written.
func warnOnce(w io.Writer, dest string, err error) {
	if warned.CompareAndSwap(false, true) {
		fmt.Fprintf(w, "docker-credential-gcp: not writing the trace to %s: %v (fix it, or unset %s / run configure-docker --log '')\n", dest, err, EnvLog)
	}
}

// appendLine appends line to the trace file at path with one write, after
// moving a full file to path.1. The file's dir is created private, and a
// dir or file not private to the user, or anything but a regular file,
// is refused (see atomicfile.OpenAppend); nothing here waits on a lock.
func appendLine(path string, line []byte) error {
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := atomicfile.OpenAppend(path, filePerm)
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil && fi.Size()+int64(len(line)) > maxSize {
		rotate(path, fi)
		_ = f.Close()
		if f, err = atomicfile.OpenAppend(path, filePerm); err != nil {
			return err
		}
	}
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Check makes sure a trace can be written to the file at path, as each
// call would: its dir is created private and checked, the file created
// (0600) and checked. Nothing is written.
func Check(path string) error {
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := atomicfile.OpenAppend(path, filePerm)
	if err != nil {
		return err
	}
	return f.Close()
}

// ensureDir creates dir 0700 if it is missing and checks it is private
// to the user, so no one else can swap or read the trace file.
func ensureDir(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return err
		}
		// MkdirAll's mode is filtered by the umask; make it exactly 0700.
		if err := os.Chmod(dir, dirPerm); err != nil {
			return err
		}
	}
	if err := atomicfile.CheckDir(dir); err != nil {
		return fmt.Errorf("its dir: %w; trace to a file in a dir of your own (chmod 700)", err)
	}
	return nil
}

// rotate moves the full trace file full (the file at path when it was
// opened) to path.1. Of processes that find the file full at once, the
// one that takes the lock first moves it; the others find path no longer
// full (or no longer the file they opened) and leave it. A lock held by
// another process is not waited for: this line then goes to the full file.
func rotate(path string, full os.FileInfo) {
	l := atomicfile.NewLock(path, filePerm)
	if ok, err := l.TryLock(); !ok || err != nil {
		return
	}
	defer l.Unlock()
	now, err := os.Stat(path)
	if err != nil || !os.SameFile(now, full) {
		return
	}
	_ = os.Rename(path, path+".1")
}

// Tail returns the last n lines of the trace file at path (fewer if it
// holds fewer), for doctor. It reads at most the last 64 KiB, and only a
// regular file private to the user.
func Tail(path string, n int) ([]string, error) {
	f, fi, err := atomicfile.OpenPrivate(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	off := max(fi.Size()-tailBytes, 0)
	data := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(data, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if off > 0 {
		// The first line read may be cut; drop it.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	var out []string
	for _, l := range lines[max(len(lines)-n, 0):] {
		if len(l) > 0 {
			out = append(out, string(l))
		}
	}
	return out, nil
}
