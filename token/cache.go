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
	"strings"
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
	// Version 2 added obtained_at (for the lifetime policy) and principal.
	cacheFormatVersion = 2

	// cacheDirPerm and cacheFilePerm keep cached tokens private to the user.
	cacheDirPerm  fs.FileMode = 0o700
	cacheFilePerm fs.FileMode = 0o600

	// cacheMaxEntrySize bounds what is read of one entry: a few hundred
	// bytes in practice.
	cacheMaxEntrySize = 64 << 10

	// DefaultMinLifetime is M, the validity a token handed out keeps at
	// least when its source can give one: long enough for a docker build
	// or BuildKit session that got it to finish.
	DefaultMinLifetime = 45 * time.Minute

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
	dir         string // "" keeps tokens in memory only
	lockWait    time.Duration
	minLifetime time.Duration
	now         func() time.Time // the clock; tests replace it
	flights     singleflight.Group

	dirOnce sync.Once
	dirErr  error // why dir is not used; see Unusable

	mu     sync.Mutex
	memory map[string]cacheEntry // by identity: what this process last read or minted
}

// NewFileCache returns a cache in dir. Nothing touches the disk until a
// token is needed; dir is created (0700) on the first write. With dir ""
// tokens are kept in this process's memory only, for servers that run
// where no cache dir can be found (HOME unset).
func NewFileCache(dir string) *FileCache {
	return &FileCache{dir: dir, lockWait: lockWait, minLifetime: DefaultMinLifetime, now: time.Now, memory: map[string]cacheEntry{}}
}

// SetMinLifetime sets M, the validity a cached token must keep to be
// reused (see ReuseThreshold); m must be positive.
func (c *FileCache) SetMinLifetime(m time.Duration) {
	c.minLifetime = m
}

// MinLifetime is the M this cache applies.
func (c *FileCache) MinLifetime() time.Duration { return c.minLifetime }

// ReuseThreshold is the cache policy (SPEC §4): a cached token that had
// life when it was obtained is reused while it has at least
// min(M, max(¾·life, min(5 min, 0.9·life))) left. So 60-minute tokens are
// handed out with at least 45 min left; a source of short tokens is asked
// again after a quarter of their life, never on every call, but nothing
// handed out expires within 5 min (handOutFloor) when a fresh mint could
// avoid it: a 5-minute token is reused only in its first 30 s. A user who
// sets M below 5 min gets M.
func (c *FileCache) ReuseThreshold(life time.Duration) time.Duration {
	return min(c.minLifetime, max(life/4*3, min(handOutFloor, life/10*9)))
}

// handOutFloor is the validity a handed-out token keeps whenever its
// source can give it: BuildKit asks again only every 4 m 50 s and uses
// its answer until then.
const handOutFloor = 5 * time.Minute

// ShortLived reports whether tokens that live life when obtained may be
// handed out with less than 5 minutes left however fresh the mint: the
// source can never give a client such as BuildKit the 5 minutes it keeps
// a token. Direct federation from 2- to 5-minute CI ID tokens is such a
// source; impersonation (1-hour tokens) is the fix.
func ShortLived(life time.Duration) bool {
	return life > 0 && life/10*9 < handOutFloor
}

// NoticeShortLived wraps ts so that notice is called with the life of
// every token ts mints that is ShortLived. Put under the cache, it speaks
// once per mint: gets answered from the cache stay quiet.
func NoticeShortLived(ts oauth2.TokenSource, notice func(life time.Duration)) oauth2.TokenSource {
	return shortLivedNotice{ts: ts, notice: notice}
}

type shortLivedNotice struct {
	ts     oauth2.TokenSource
	notice func(time.Duration)
}

func (s shortLivedNotice) Token() (*oauth2.Token, error) {
	tok, err := s.ts.Token()
	if err == nil && tok != nil && !tok.Expiry.IsZero() {
		if life := time.Until(tok.Expiry).Round(time.Second); ShortLived(life) {
			s.notice(life)
		}
	}
	return tok, err
}

// ParseMinLifetime reads M as a Go duration ("45m", "1h30m"); what
// cannot be a minimum lifetime is an error saying what is expected.
func ParseMinLifetime(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("minimum token lifetime %q: want a positive Go duration such as 45m or 1h30m", s)
	}
	return d, nil
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
	return &cachedTokenSource{cache: c, identity: cred.Identity, principal: cred.Principal, path: c.path(cred.Identity), mint: cred.TokenSource}
}

// TokenSourceContext is TokenSource that also records in the Report ctx
// carries (see WithReport) whether each token was a hit, minted or a stale
// fallback; nothing is recorded for a credential the cache does not hold.
func (c *FileCache) TokenSourceContext(ctx context.Context, cred *Credential) oauth2.TokenSource {
	ts := c.TokenSource(cred)
	if cached, ok := ts.(*cachedTokenSource); ok {
		cached.report = reportFrom(ctx)
	}
	return ts
}

// Unusable says why the cache dir is not used although it exists: it is
// not private to the user (another user's, or writable by group or
// others), so its entries could be forged and its locks planted. Tokens
// then live in this process's memory only: every get mints. It is checked
// once per FileCache: one stat of the dir; each entry and lock file is
// checked as it is opened.
func (c *FileCache) Unusable() error {
	if c.dir == "" {
		return nil
	}
	c.dirOnce.Do(func() { c.dirErr = atomicfile.CheckDir(c.dir) })
	return c.dirErr
}

// onDisk reports whether tokens are read from and written to the dir.
func (c *FileCache) onDisk() bool { return c.dir != "" && c.Unusable() == nil }

// Drop erases the cached token of identity, so the next call mints anew.
// A missing entry is not an error.
func (c *FileCache) Drop(identity string) error {
	c.mu.Lock()
	delete(c.memory, identity)
	c.mu.Unlock()
	if !c.onDisk() {
		return nil
	}
	err := os.Remove(c.path(identity))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dropping cached token: %w", err)
	}
	return nil
}

// CachedToken describes a cached token for `doctor` and for sources that
// need not look for themselves while their token is cached. It never
// holds the token itself.
type CachedToken struct {
	// Principal is the account the token is for, as its source said.
	Principal string
	// ObtainedAt is when the token was minted; Expiry when it lapses.
	ObtainedAt, Expiry time.Time
	// ReuseUntil is when the policy stops handing it out and mints anew.
	ReuseUntil time.Time
	// Reusable is true while a call would be answered with this token
	// without minting.
	Reusable bool
}

// Lookup reports whether an unexpired token for identity is cached, and
// what the policy does with it. It never mints.
func (c *FileCache) Lookup(identity string) (CachedToken, bool) {
	e, ok := c.read(c.path(identity), identity)
	if !ok || c.left(e) <= 0 {
		return CachedToken{}, false
	}
	return CachedToken{
		Principal:  e.Principal,
		ObtainedAt: e.ObtainedAt,
		Expiry:     e.Expiry,
		ReuseUntil: e.Expiry.Add(-c.ReuseThreshold(e.life())),
		Reusable:   c.reusable(e),
	}, true
}

// cacheEntry is the content of one cache file.
type cacheEntry struct {
	Version     int       `json:"version"`
	Identity    string    `json:"identity"`
	Principal   string    `json:"principal,omitempty"`
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type,omitempty"`
	ObtainedAt  time.Time `json:"obtained_at"`
	Expiry      time.Time `json:"expiry"`
}

// life is how long the token was valid for when it was obtained.
func (e cacheEntry) life() time.Duration { return e.Expiry.Sub(e.ObtainedAt) }

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
	if inMemory && c.reusable(mem) || !c.onDisk() {
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
// identity. Anything else (missing, unreadable, a symbolic link, not a
// regular file, not private to the user, oversized, corrupt, another
// version or identity) is a miss.
func readEntryFile(path, identity string) (cacheEntry, bool) {
	var e cacheEntry
	data, err := atomicfile.ReadPrivateEntry(path, cacheMaxEntrySize)
	if err != nil || json.Unmarshal(data, &e) != nil {
		return cacheEntry{}, false
	}
	if e.Version != cacheFormatVersion || e.Identity != identity || e.AccessToken == "" ||
		e.Expiry.IsZero() || e.ObtainedAt.IsZero() || e.life() <= 0 {
		return cacheEntry{}, false
	}
	return e, true
}

// write stores tok, obtained now for principal, as the entry of identity;
// errors only mean it is not cached.
func (c *FileCache) write(path, identity, principal string, tok *oauth2.Token) error {
	e := cacheEntry{
		Version:     cacheFormatVersion,
		Identity:    identity,
		Principal:   principal,
		AccessToken: tok.AccessToken,
		TokenType:   tok.TokenType,
		ObtainedAt:  c.now(),
		Expiry:      tok.Expiry,
	}
	if e.life() <= 0 {
		return nil
	}
	c.remember(e)
	if !c.onDisk() {
		return nil
	}
	if err := c.ensureDir(); err != nil {
		return err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, cacheFilePerm)
}

// ensureDir creates the cache dir, private to the user, if it is missing,
// and checks the dir it is about to write to: another user may have made
// it since Unusable looked.
func (c *FileCache) ensureDir() error {
	if _, err := os.Stat(c.dir); err != nil {
		if err := os.MkdirAll(c.dir, cacheDirPerm); err != nil {
			return err
		}
		// MkdirAll's mode is filtered by the umask; make it exactly 0700.
		if err := os.Chmod(c.dir, cacheDirPerm); err != nil {
			return err
		}
	}
	return atomicfile.CheckDir(c.dir)
}

// lock takes the cross-process lock of the entry at path, waiting at most
// c.lockWait. It returns nil when the lock cannot be had; the caller then
// mints without it.
func (c *FileCache) lock(path string) *flock.Flock {
	if !c.onDisk() || c.ensureDir() != nil {
		return nil
	}
	l := atomicfile.NewLock(path[:len(path)-len(".json")]+".lock", cacheFilePerm)
	ctx, cancel := context.WithTimeout(context.Background(), c.lockWait)
	defer cancel()
	if ok, err := l.TryLockContext(ctx, lockRetry); !ok || err != nil {
		return nil
	}
	if atomicfile.CheckLock(l) != nil {
		_ = l.Unlock()
		return nil
	}
	return l
}

// left is the validity e's token has left.
func (c *FileCache) left(e cacheEntry) time.Duration { return e.Expiry.Sub(c.now()) }

// reusable reports whether e may be handed out without minting, by
// ReuseThreshold.
func (c *FileCache) reusable(e cacheEntry) bool {
	left := c.left(e)
	return left > 0 && left >= c.ReuseThreshold(e.life())
}

func (e cacheEntry) token() *oauth2.Token {
	return &oauth2.Token{AccessToken: e.AccessToken, TokenType: e.TokenType, Expiry: e.Expiry}
}

// cachedTokenSource serves one credential's tokens from a FileCache.
type cachedTokenSource struct {
	cache     *FileCache
	identity  string
	principal string
	path      string
	mint      oauth2.TokenSource
	report    *Report // nil: nobody asked what the cache did
}

// flight is what one refresh got: the token, and how.
type flight struct {
	tok    *oauth2.Token
	result CacheResult
}

// Token returns a cached token the policy lets us reuse, or mints one.
// Concurrent cold calls mint once: goroutines of this process share one
// flight, processes take turns on a file lock and re-read the entry the
// winner wrote.
func (s *cachedTokenSource) Token() (*oauth2.Token, error) {
	if e, ok := s.cache.read(s.path, s.identity); ok && s.cache.reusable(e) {
		s.report.cached(CacheHit)
		return e.token(), nil
	}
	v, err, _ := s.cache.flights.Do(s.identity, func() (any, error) {
		return s.refresh()
	})
	if err != nil {
		return nil, err
	}
	f := v.(flight)
	s.report.cached(f.result)
	return f.tok, nil
}

// refresh is the miss path: lock, re-read, mint, write, unlock.
func (s *cachedTokenSource) refresh() (flight, error) {
	if l := s.cache.lock(s.path); l != nil {
		defer l.Unlock()
	}
	// Another goroutine's flight or another process may have minted while
	// we waited.
	cached, ok := s.cache.read(s.path, s.identity)
	if ok && s.cache.reusable(cached) {
		return flight{cached.token(), CacheHit}, nil
	}
	tok, err := s.mint.Token()
	if err != nil {
		if ok && s.cache.left(cached) >= staleFor && !refused(err) {
			return flight{cached.token(), CacheStale}, nil
		}
		return flight{}, err
	}
	if tok.AccessToken != "" && !tok.Expiry.IsZero() {
		_ = s.cache.write(s.path, s.identity, s.principal, tok)
	}
	return flight{tok, CacheMinted}, nil
}
