//go:build !unix

package atomicfile

import "io/fs"

// noFollow is 0: this system's open has no O_NOFOLLOW.
const noFollow = 0

// notPrivate is "": this system (Windows) has no Unix owner and mode
// bits; its ACLs guard the user's profile dirs.
func notPrivate(fs.FileInfo) string { return "" }

// notTrusted is "": this system (Windows) has no Unix owner and mode bits.
func notTrusted(fs.FileInfo) string { return "" }
