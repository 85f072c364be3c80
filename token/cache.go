package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
	"github.com/gofrs/flock"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// The cache policy (SPEC §4) lives here and nowhere else.
const (
	// cacheDirName is the directory under the user cache dir.
	cacheDirName = "docker-credential-gcp"

	// cacheFormatVersion is written into every entry; entries of any other
	// version are ignored and replaced, so the format can change freely.
	cacheFormatVersion = 1

	// cacheDirPerm and cacheFilePerm keep cached tokens private to the user.
	cacheDirPerm  fs.FileMode = 0o700
	cacheFilePerm fs.FileMode = 0o600

	// cacheMaxEntrySize bounds what is read of one entry: a few hundred
	// bytes in practice.
	cacheMaxEntrySize = 64 << 10

	// freshFor is the validity a cached token must still have to be served
	// without minting: long enough for a slow push started now to finish.
	freshFor = 10 * time.Minute

	// staleFor is the validity a cached token must still have to be served
	// when minting fails for a reason that may pass (network down, 5xx):
	// better a token good for a few minutes than a failed pull. A refusal
	// (a revoked key: 4xx) is reported instead, as SPEC §3 asks.
	staleFor = 2 * time.Minute

	// lockWait bounds how long a cold call waits for another process that
	// is minting the same identity; past it we mint without the lock, so
	// a stuck process never hangs a docker pull.
	lockWait = 10 * time.Second

	// lockRetry is how often a waiting process polls the lock. It is only
	// paid under contention, and is small next to a mint's round-trip.
	lockRetry = 5 * time.Millisecond
)

// FileCache keeps minted access tokens on disk, one file per credential
// identity, so that the many short-lived processes docker starts share one
// token instead of each minting its own; a long-running process (the drone
// extension, dockerconfig --refresh) also keeps them in memory. It is safe
// for concurrent use by goroutines and by processes; any failure of the
// cache itself is ignored and only costs a mint.
type FileCache struct {
	dir      string // "" keeps tokens in memory only
	lockWait time.Duration
	flights  singleflight.Group

	mu     sync.Mutex
	memory map[string]cacheEntry // by identity: what this process last read or minted
}

// NewFileCache returns a cache in dir. Nothing touches the disk until a
// token is needed; dir is created (0700) on the first write. With dir ""
// tokens are kept in this process's memory only, for servers that run
// where no cache dir can be found (HOME unset).
func NewFileCache(dir string) *FileCache {
	return &FileCache{dir: dir, lockWait: lockWait, memory: map[string]cacheEntry{}}
}

// DefaultCacheDir is where the cache lives unless configured otherwise:
// docker-credential-gcp under os.UserCacheDir (which honours XDG_CACHE_HOME).
// It fails when no cache dir can be determined, e.g. HOME unset; callers
// then run without a cache.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locating the token cache: %w", err)
	}
	return filepath.Join(dir, cacheDirName), nil
}

// TokenSource wraps cred's token source with the cache, like
// oauth2.ReuseTokenSource but shared across processes. Credentials that are
// not Cacheable, or that have no identity to key them by, get their own
// token source back unchanged.
func (c *FileCache) TokenSource(cred *Credential) oauth2.TokenSource {
	if !cred.Cacheable || cred.Identity == "" {
		return cred.TokenSource
	}
	return &cachedTokenSource{cache: c, identity: cred.Identity, path: c.path(cred.Identity), mint: cred.TokenSource}
}

// Drop erases the cached token of identity, so the next call mints anew.
// A missing entry is not an error.
func (c *FileCache) Drop(identity string) error {
	c.mu.Lock()
	delete(c.memory, identity)
	c.mu.Unlock()
	if c.dir == "" {
		return nil
	}
	err := os.Remove(c.path(identity))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dropping cached token: %w", err)
	}
	return nil
}

// Lookup reports whether an unexpired token for identity is cached, and
// until when, for `doctor`. It never returns the token itself.
func (c *FileCache) Lookup(identity string) (expiry time.Time, ok bool) {
	e, ok := c.read(c.path(identity), identity)
	if !ok || !validFor(e, 0) {
		return time.Time{}, false
	}
	return e.Expiry, true
}

// cacheEntry is the content of one cache file.
type cacheEntry struct {
	Version     int       `json:"version"`
	Identity    string    `json:"identity"`
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type,omitempty"`
	Expiry      time.Time `json:"expiry"`
}

// path names the entry of identity: a hash, so that identities (which may
// hold file paths or e-mails) make safe, fixed-length file names.
func (c *FileCache) path(identity string) string {
	sum := sha256.Sum256([]byte(identity))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:])[:32]+".json")
}

// read returns the freshest entry of identity this process knows: from
// memory while it is fresh, else from the file at path.
func (c *FileCache) read(path, identity string) (cacheEntry, bool) {
	c.mu.Lock()
	mem, inMemory := c.memory[identity]
	c.mu.Unlock()
	if inMemory && validFor(mem, freshFor) || c.dir == "" {
		return mem, inMemory
	}
	e, ok := readEntryFile(path, identity)
	if !ok {
		return mem, inMemory
	}
	c.remember(e)
	return e, true
}

// remember keeps e in memory for later calls in this process.
func (c *FileCache) remember(e cacheEntry) {
	c.mu.Lock()
	c.memory[e.Identity] = e
	c.mu.Unlock()
}

// readEntryFile returns the entry at path if it is well-formed and belongs to
// identity. Anything else (missing, unreadable, not a regular file,
// oversized, corrupt, another version or identity) is a miss.
func readEntryFile(path, identity string) (cacheEntry, bool) {
	var e cacheEntry
	data, err := atomicfile.ReadFile(path, cacheMaxEntrySize)
	if err != nil || json.Unmarshal(data, &e) != nil {
		return cacheEntry{}, false
	}
	if e.Version != cacheFormatVersion || e.Identity != identity || e.AccessToken == "" || e.Expiry.IsZero() {
		return cacheEntry{}, false
	}
	return e, true
}

// write stores tok as the entry of identity; errors only mean it is not cached.
func (c *FileCache) write(path, identity string, tok *oauth2.Token) error {
	e := cacheEntry{
		Version:     cacheFormatVersion,
		Identity:    identity,
		AccessToken: tok.AccessToken,
		TokenType:   tok.TokenType,
		Expiry:      tok.Expiry,
	}
	c.remember(e)
	if c.dir == "" {
		return nil
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, cacheFilePerm)
}

// ensureDir creates the cache dir, private to the user, if it is missing.
func (c *FileCache) ensureDir() error {
	if _, err := os.Stat(c.dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(c.dir, cacheDirPerm); err != nil {
		return err
	}
	// MkdirAll's mode is filtered by the umask; make it exactly 0700.
	return os.Chmod(c.dir, cacheDirPerm)
}

// lock takes the cross-process lock of the entry at path, waiting at most
// c.lockWait. It returns nil when the lock cannot be had; the caller then
// mints without it.
func (c *FileCache) lock(path string) *flock.Flock {
	if c.dir == "" || c.ensureDir() != nil {
		return nil
	}
	l := atomicfile.NewLock(path[:len(path)-len(".json")]+".lock", cacheFilePerm)
	ctx, cancel := context.WithTimeout(context.Background(), c.lockWait)
	defer cancel()
	if ok, err := l.TryLockContext(ctx, lockRetry); !ok || err != nil {
		return nil
	}
	return l
}

// validFor reports whether e's token remains valid for at least d.
func validFor(e cacheEntry, d time.Duration) bool {
	return time.Until(e.Expiry) >= d
}

func (e cacheEntry) token() *oauth2.Token {
	return &oauth2.Token{AccessToken: e.AccessToken, TokenType: e.TokenType, Expiry: e.Expiry}
}

// cachedTokenSource serves one credential's tokens from a FileCache.
type cachedTokenSource struct {
	cache    *FileCache
	identity string
	path     string
	mint     oauth2.TokenSource
}

// Token returns a cached token with at least freshFor validity left, or
// mints one. Concurrent cold calls mint once: goroutines of this process
// share one flight, processes take turns on a file lock and re-read the
// entry the winner wrote.
func (s *cachedTokenSource) Token() (*oauth2.Token, error) {
	if e, ok := s.cache.read(s.path, s.identity); ok && validFor(e, freshFor) {
		return e.token(), nil
	}
	v, err, _ := s.cache.flights.Do(s.identity, func() (any, error) {
		return s.refresh()
	})
	if err != nil {
		return nil, err
	}
	return v.(*oauth2.Token), nil
}

// refresh is the miss path: lock, re-read, mint, write, unlock.
func (s *cachedTokenSource) refresh() (*oauth2.Token, error) {
	if l := s.cache.lock(s.path); l != nil {
		defer l.Unlock()
	}
	// Another goroutine's flight or another process may have minted while
	// we waited.
	cached, ok := s.cache.read(s.path, s.identity)
	if ok && validFor(cached, freshFor) {
		return cached.token(), nil
	}
	tok, err := s.mint.Token()
	if err != nil {
		if ok && validFor(cached, staleFor) && !refused(err) {
			return cached.token(), nil
		}
		return nil, err
	}
	if tok.AccessToken != "" && !tok.Expiry.IsZero() {
		_ = s.cache.write(s.path, s.identity, tok)
	}
	return tok, nil
}
