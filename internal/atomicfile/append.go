package atomicfile

import (
	"fmt"
	"os"
	"syscall"
)

// OpenAppend opens path for appending, creating it with mode perm if
// missing, for a log that several processes write one whole line at a time
// (each Write of a line is one write(2) with O_APPEND, so lines never
// interleave). Like ReadFile it never waits: a FIFO with no reader fails
// the open at once, and anything but a regular file (a FIFO, a device such
// as /dev/full) is refused, as are a symbolic link at path and a file not
// private to the user.
func OpenAppend(path string, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK|noFollow, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err == nil {
		err = CheckPrivate(path, fi)
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}
