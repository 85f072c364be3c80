package main

import (
	"fmt"
	"io"
)

// maxProtocolInput caps what get, store and erase read from stdin: a server
// URL or a credentials JSON with a key is a few KiB. The protocol library
// joins every line of stdin into one buffer, so without a cap `yes gcr.io |
// docker-credential-gcp get` grows without end.
const maxProtocolInput = 1 << 20

// cappedReader reads at most limit bytes of r; past them it fails with a
// clear error instead of reading on.
type cappedReader struct {
	r      io.Reader
	action string
	left   int64
}

func capInput(r io.Reader, action string) io.Reader {
	return &cappedReader{r: r, action: action, left: maxProtocolInput}
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Input of exactly the limit is fine; one byte more is not.
		var one [1]byte
		if n, err := c.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, fmt.Errorf("%s: stdin holds more than %d MiB; it must hold only %s", c.action, maxProtocolInput>>20, inputWant(c.action))
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
