//go:build unix

package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// noFollow makes open fail on a symbolic link instead of following it.
const noFollow = syscall.O_NOFOLLOW

// notPrivate says why fi is not private to the current user, or "".
func notPrivate(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if uid := os.Geteuid(); int64(st.Uid) != int64(uid) {
		return fmt.Sprintf("owned by uid %d, not you (uid %d)", st.Uid, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Sprintf("writable by group or others (mode %s)", fi.Mode().Perm())
	}
	return ""
}

// notTrusted says why fi could be changed by a user other than the current
// one or root, or "".
func notTrusted(fi fs.FileInfo) string { return notTrustedBy(fi, os.Geteuid()) }

// notTrustedBy is notTrusted for the user uid.
func notTrustedBy(fi fs.FileInfo, uid int) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	if int64(st.Uid) != int64(uid) && st.Uid != 0 {
		return fmt.Sprintf("owned by uid %d, not you (uid %d) or root", st.Uid, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Sprintf("writable by group or others (mode %s)", fi.Mode().Perm())
	}
	return ""
}
