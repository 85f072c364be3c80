package helper

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/config"
	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
	"github.com/gofrs/flock"
)

const (
	// storeFileName is the stored-credentials file in the config dir.
	storeFileName = "credentials.json"

	// storeFilePerm and storeDirPerm keep stored secrets private to the user.
	storeFilePerm fs.FileMode = 0o600
	storeDirPerm  fs.FileMode = 0o700

	// storeMaxSize caps how much of the file is read: a few thousand keys,
	// far more than anyone stores, and a bound on a runaway file.
	storeMaxSize = 4 << 20

	// storeLockRetry is how often a waiting process polls the lock.
	storeLockRetry = 5 * time.Millisecond
)

// storeLockStall is how long a store or erase waits for the lock while the
// credentials file does not change. Every holder replaces the file within
// milliseconds of taking the lock, so a queue of any length (parallel
// docker logins on a loaded machine) is waited out; only a holder that
// makes no progress (stopped, or on a hung file system) ends the wait with
// an error. Variables for tests, as is storeNow.
var (
	storeLockStall = time.Minute
	storeNow       = time.Now
)

// Entry is one credential stored by `docker login` for a host.
type Entry struct {
	// Username is _json_key, _json_key_base64 or oauth2accesstoken.
	Username string `json:"username"`
	// Secret is the key JSON (base64 for _json_key_base64) or access token,
	// exactly as docker handed it over.
	Secret string `json:"secret"`
	// StoredAt is when it was stored; it bounds an access token's life.
	StoredAt time.Time `json:"stored_at"`
}

// storeFile is the on-disk format of the store.
type storeFile struct {
	// Credentials maps a normalised host (as ParseHost returns it) to its entry.
	Credentials map[string]Entry `json:"credentials"`
}

// Store owns the file of credentials stored with `docker login`: one JSON
// file, mode 0600 in a 0700 dir, replaced atomically and changed only under
// an exclusive file lock, so concurrent store/erase processes lose nothing.
type Store struct {
	// Path is the credentials file; its lock is Path + ".lock".
	Path string
}

// DefaultStore is the store in the config dir: config.Dir()/credentials.json.
func DefaultStore() (*Store, error) {
	dir, err := config.Dir()
	if err != nil {
		return nil, err
	}
	return &Store{Path: filepath.Join(dir, storeFileName)}, nil
}

// Get returns the entry stored for host, if any.
func (s *Store) Get(host string) (Entry, bool, error) {
	key, err := ParseHost(host)
	if err != nil {
		return Entry{}, false, err
	}
	f, err := s.read()
	if err != nil {
		return Entry{}, false, err
	}
	e, ok := f.Credentials[key]
	return e, ok, nil
}

// Put stores e for host, replacing any earlier entry.
func (s *Store) Put(host string, e Entry) error {
	key, err := ParseHost(host)
	if err != nil {
		return err
	}
	return s.update(func(f *storeFile) bool {
		f.Credentials[key] = e
		return true
	})
}

// Delete removes the entry of host; a missing entry or file is not an error.
func (s *Store) Delete(host string) error {
	key, err := ParseHost(host)
	if err != nil {
		return err
	}
	if _, err := os.Stat(s.Path); notThere(err) {
		return nil
	}
	return s.update(func(f *storeFile) bool {
		if _, ok := f.Credentials[key]; !ok {
			return false
		}
		delete(f.Credentials, key)
		return true
	})
}

// List returns the username stored for each host.
func (s *Store) List() (map[string]string, error) {
	f, err := s.read()
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(f.Credentials))
	for host, e := range f.Credentials {
		out[host] = e.Username
	}
	return out, nil
}

// read loads the file; a missing file is an empty store, a corrupt or
// oversized one an error naming the file and the way out, one not private
// to the user (planted?) an error matching atomicfile.ErrUntrusted.
func (s *Store) read() (*storeFile, error) {
	f := &storeFile{Credentials: map[string]Entry{}}
	data, err := atomicfile.ReadPrivateFile(s.Path, storeMaxSize)
	switch {
	case notThere(err):
		return f, nil
	case errors.Is(err, atomicfile.ErrUntrusted):
		return nil, fmt.Errorf("stored credentials: %w; make the file yours and private (chown it to yourself, chmod 600) or remove it", err)
	case errors.Is(err, atomicfile.ErrTooLarge):
		return nil, fmt.Errorf("stored credentials %s are larger than %d bytes; remove the file and `docker login` again", s.Path, storeMaxSize)
	case err != nil:
		return nil, fmt.Errorf("reading stored credentials: %w", err)
	}
	// Unmarshal errors may quote the file's bytes, which hold secrets:
	// report only the offset.
	if err := json.Unmarshal(data, f); err != nil {
		return nil, fmt.Errorf("stored credentials %s are corrupt (%s); remove the file and `docker login` again", s.Path, describeJSONError(err))
	}
	if f.Credentials == nil {
		f.Credentials = map[string]Entry{}
	}
	return f, nil
}

// lock takes the store's exclusive lock, waiting as long as its holders
// keep changing the credentials file (see storeLockStall).
func (s *Store) lock() (*flock.Flock, error) {
	lock := atomicfile.NewLock(s.Path+".lock", storeFilePerm)
	var w lockProgress
	for {
		ok, err := lock.TryLock()
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", lock.Path(), err)
		}
		if ok {
			return lock, nil
		}
		now := storeNow()
		fi, _ := os.Stat(s.Path)
		if w.stalled(now, fi) {
			return nil, fmt.Errorf("locking %s: another docker-credential-gcp process holds it and has not changed %s for %s; if none is running (or one is stopped), remove the lock file and retry", lock.Path(), s.Path, storeLockStall)
		}
		time.Sleep(storeLockRetry)
	}
}

// lockProgress watches the credentials file while waiting for its lock:
// each holder replaces it, so a change means the queue ahead moves.
type lockProgress struct {
	started bool
	// last is when a change was last seen, seen the file as then (nil when missing).
	last time.Time
	seen fs.FileInfo
}

// stalled records the file as it is at now (nil when missing) and reports
// whether it has stayed the same for longer than storeLockStall.
func (p *lockProgress) stalled(now time.Time, fi fs.FileInfo) bool {
	if !p.started || fileChanged(p.seen, fi) {
		p.started, p.last, p.seen = true, now, fi
		return false
	}
	return now.Sub(p.last) > storeLockStall
}

// fileChanged reports whether a and b (nil when missing) are different
// files, or one file whose size or modification time changed.
func fileChanged(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return (a == nil) != (b == nil)
	}
	return !os.SameFile(a, b) || a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime())
}

// notThere reports whether err says the file cannot exist: it is missing,
// or a directory on its way is a regular file (HOME set to a file), which
// is no store, as with HOME unset.
func notThere(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// describeJSONError says where a JSON document is broken without quoting it.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("unexpected %s at byte %d", typ.Value, typ.Offset)
	}
	return "invalid JSON"
}

// update runs change on the current content under the exclusive lock and
// writes the result atomically if change reports a modification.
func (s *Store) update(change func(*storeFile) bool) error {
	dir := filepath.Dir(s.Path)
	if err := os.MkdirAll(dir, storeDirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := atomicfile.CheckDir(dir); err != nil {
		return fmt.Errorf("refusing to store credentials: %w; %s", err, config.MakePrivateAdvice)
	}
	lock, err := s.lock()
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := atomicfile.CheckLock(lock); err != nil {
		return fmt.Errorf("locking: %w; remove the lock file", err)
	}

	f, err := s.read()
	if err != nil {
		return err
	}
	if !change(f) {
		return nil
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.Path, append(data, '\n'), storeFilePerm)
}
