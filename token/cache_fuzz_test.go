package token

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// fuzzIdentity is the credential identity whose entry the fuzzer writes.
const fuzzIdentity = "json:fuzz-identity"

// cacheFileSeeds are entries of every shape: fresh, stale but usable when
// minting fails, expired, foreign, of another version, corrupt.
func cacheFileSeeds() []string {
	now := time.Now()
	obtainedAt := now.Add(-time.Minute)
	entry := func(version int, identity, tok string, expiry time.Time) string {
		data, _ := json.Marshal(cacheEntry{Version: version, Identity: identity, AccessToken: tok, TokenType: "Bearer", ObtainedAt: obtainedAt, Expiry: expiry})
		return string(data)
	}
	fresh := entry(cacheFormatVersion, fuzzIdentity, "ya29.cached", now.Add(time.Hour))
	obtained := func(at time.Time, expiry time.Time) string {
		data, _ := json.Marshal(cacheEntry{Version: cacheFormatVersion, Identity: fuzzIdentity, AccessToken: "ya29.aged", ObtainedAt: at, Expiry: expiry})
		return string(data)
	}
	return []string{
		fresh,
		entry(cacheFormatVersion, fuzzIdentity, "ya29.cached", time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)),
		entry(cacheFormatVersion, fuzzIdentity, "ya29.short-but-young", now.Add(5*time.Minute)),
		obtained(now.Add(-50*time.Minute), now.Add(10*time.Minute)),
		obtained(now.Add(-10*time.Minute), now.Add(5*time.Minute)),
		obtained(time.Time{}, now.Add(time.Hour)),
		obtained(now.Add(time.Hour), now.Add(time.Minute)),
		entry(cacheFormatVersion, fuzzIdentity, "ya29.expired", now.Add(-time.Minute)),
		entry(cacheFormatVersion, fuzzIdentity, "ya29.old", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)),
		entry(cacheFormatVersion, "json:someone-else", "ya29.foreign", now.Add(time.Hour)),
		entry(cacheFormatVersion+1, fuzzIdentity, "ya29.future-format", now.Add(time.Hour)),
		entry(cacheFormatVersion, fuzzIdentity, "", now.Add(time.Hour)),
		entry(cacheFormatVersion, fuzzIdentity, "ya29.zero-expiry", time.Time{}),
		fresh[:len(fresh)/2],
		fresh + fresh,
		`{"version":2,"identity":"json:fuzz-identity","access_token":"ya29.x","obtained_at":"2000-01-01T00:00:00Z","expiry":"not a time"}`,
		`{"version":"2","identity":"json:fuzz-identity","access_token":"ya29.x","obtained_at":"2000-01-01T00:00:00Z","expiry":"2999-01-01T00:00:00Z"}`,
		`{"VERSION":2,"IDENTITY":"json:fuzz-identity","ACCESS_TOKEN":"ya29.case","OBTAINED_AT":"2000-01-01T00:00:00Z","EXPIRY":"2999-01-01T00:00:00Z"}`,
		`{"version":2,"identity":"json:fuzz-identity","access_token":"ya29.x","obtained_at":"0001-01-01T00:00:01Z","expiry":"9999-12-31T23:59:59.999999999+23:59"}`,
		`{"version":1,"identity":"json:fuzz-identity","access_token":"ya29.v1","expiry":"2999-01-01T00:00:00Z"}`,
		`{"version":1e400}`, `null`, `[]`, `{}`, ``, "\x00\xff", "{\"access_token\":\"\xff\"}",
	}
}

// fuzzMint is a token source that counts its mints and may fail.
type fuzzMint struct {
	mints int
	fail  bool
}

func (m *fuzzMint) Token() (*oauth2.Token, error) {
	m.mints++
	if m.fail {
		return nil, errors.New("token endpoint down")
	}
	return &oauth2.Token{AccessToken: "ya29.minted", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}, nil
}

// FuzzCacheFile writes arbitrary bytes as the cache entry of a credential.
// The cached token source must never panic or fail because of the file:
// it serves a well-formed entry of this identity with at least
// min(45 min, max(¾·life, min(5 min, 0.9·life))) left (life: what it had
// when obtained) without minting, mints otherwise and replaces the entry
// with a good one; and when minting fails it serves such an entry only while ≥2 min
// remain, else reports the mint's error.
func FuzzCacheFile(f *testing.F) {
	for _, s := range cacheFileSeeds() {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, failMint bool) {
		c := NewFileCache(dir)
		c.lockWait = time.Second
		if err := c.ensureDir(); err != nil {
			t.Fatal(err)
		}
		path := c.path(fuzzIdentity)
		if err := os.WriteFile(path, data, cacheFilePerm); err != nil {
			t.Fatal(err)
		}

		// What the file holds, by the documented rules.
		var e cacheEntry
		wellFormed := json.Unmarshal(data, &e) == nil && e.Version == cacheFormatVersion &&
			e.Identity == fuzzIdentity && e.AccessToken != "" && !e.Expiry.IsZero() &&
			!e.ObtainedAt.IsZero() && e.Expiry.After(e.ObtainedAt)
		left := time.Until(e.Expiry)
		life := e.Expiry.Sub(e.ObtainedAt)
		reusable := left > 0 && left >= min(DefaultMinLifetime, max(life/4*3, min(5*time.Minute, life/10*9)))

		_, _ = c.Lookup(fuzzIdentity)
		mint := &fuzzMint{fail: failMint}
		tok, err := c.TokenSource(cacheCred(fuzzIdentity, mint)).Token()

		switch {
		case wellFormed && reusable:
			if err != nil || mint.mints != 0 || tok.AccessToken != e.AccessToken {
				t.Fatalf("fresh entry (%v left): token %v, err %v, %d mints; want the cached token without minting", left, tok, err, mint.mints)
			}
		case failMint:
			if mint.mints != 1 {
				t.Fatalf("%d mints, want 1", mint.mints)
			}
			if wellFormed && left >= staleFor {
				if err != nil || tok.AccessToken != e.AccessToken {
					t.Fatalf("mint failed with a usable stale entry (%v left): token %v, err %v; want the cached token", left, tok, err)
				}
			} else if err == nil {
				t.Fatalf("mint failed and the entry is unusable, yet Token returned %v", tok)
			}
			if after, _ := os.ReadFile(path); string(after) != string(data) {
				t.Fatal("a failed mint changed the cache entry")
			}
		default:
			if err != nil || mint.mints != 1 || tok.AccessToken != "ya29.minted" {
				t.Fatalf("unusable entry: token %v, err %v, %d mints; want one mint", tok, err, mint.mints)
			}
			if got, ok := c.read(path, fuzzIdentity); !ok || got.AccessToken != "ya29.minted" {
				t.Fatalf("after minting the entry is %+v, %v; want the minted token", got, ok)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != cacheFilePerm {
				t.Fatalf("cache entry mode %v (%v), want %v", fi.Mode().Perm(), err, cacheFilePerm)
			}
		}
	})
}
