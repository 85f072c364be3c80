package helper

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/internal/atomicfile"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/gofrs/flock"
)

func newTestStore(t *testing.T) *Store {
	t.Helper()
	return &Store{Path: filepath.Join(t.TempDir(), "cfg", "docker-credential-gcp", storeFileName)}
}

// readStoreFile parses the store file as the raw on-disk format.
func readStoreFile(t *testing.T, path string) storeFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f storeFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("store file is not valid JSON: %v\n%s", err, data)
	}
	return f
}

func TestDefaultStore(t *testing.T) {
	d := isolate(t)
	s, err := DefaultStore()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(d.config, "docker-credential-gcp", "credentials.json"); s.Path != want {
		t.Errorf("DefaultStore().Path = %q, want %q", s.Path, want)
	}
}

func TestStoreMissingFileIsEmpty(t *testing.T) {
	s := newTestStore(t)
	if _, ok, err := s.Get("gcr.io"); ok || err != nil {
		t.Errorf("Get on a missing file = %v, %v; want not found, nil", ok, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 0 {
		t.Errorf("List on a missing file = %v, %v; want empty", list, err)
	}
	if err := s.Delete("gcr.io"); err != nil {
		t.Errorf("Delete on a missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(s.Path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading or deleting created the store dir: %v", err)
	}
}

func TestStoreRoundTrip(t *testing.T) {
	s := newTestStore(t)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	e := Entry{Username: UsernameAccessToken, Secret: "ya29.secret", StoredAt: at}
	if err := s.Put("https://GCR.IO./v2/", e); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("europe-west1-docker.pkg.dev", Entry{Username: UsernameJSONKey, Secret: "{}", StoredAt: at}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get("gcr.io")
	if err != nil || !ok || got != e {
		t.Errorf("Get(gcr.io) = %+v, %v, %v; want %+v", got, ok, err, e)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gcr.io": UsernameAccessToken, "europe-west1-docker.pkg.dev": UsernameJSONKey}
	if fmt.Sprint(list) != fmt.Sprint(want) {
		t.Errorf("List = %v, want %v", list, want)
	}
	raw := readStoreFile(t, s.Path)
	if raw.Credentials["gcr.io"].Secret != "ya29.secret" {
		t.Errorf("file format: %+v", raw)
	}
	for range 2 {
		if err := s.Delete("GCR.IO"); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := s.Get("gcr.io"); ok {
		t.Error("entry still there after Delete")
	}
	if list, _ := s.List(); len(list) != 1 {
		t.Errorf("List after Delete = %v", list)
	}
	if err := s.Put("bad host", e); err == nil {
		t.Error("Put accepted an invalid host")
	}
}

func TestStoreFileModes(t *testing.T) {
	s := newTestStore(t)
	if err := s.Put("gcr.io", Entry{Username: UsernameAccessToken, Secret: "x"}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]fs.FileMode{
		s.Path:               0o600,
		s.Path + ".lock":     0o600,
		filepath.Dir(s.Path): 0o700,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", path, got, want)
		}
	}
	// A file someone loosened is tightened by the next write.
	if err := os.Chmod(s.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("us.gcr.io", Entry{Username: UsernameAccessToken, Secret: "y"}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(s.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("after rewrite mode is %o", fi.Mode().Perm())
	}
}

func TestStoreCorruptFile(t *testing.T) {
	s := newTestStore(t)
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"truncated":  `{"credentials":{"gcr.io":{"username":"oauth2accesstoken","secret":"TOPSECRET`,
		"wrong type": `{"credentials":{"gcr.io":"TOPSECRET"}}`,
		"garbage":    "TOPSECRET\x00\x01",
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(s.Path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			check := func(op string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s on a corrupt store succeeded", op)
				}
				msg := err.Error()
				if !strings.Contains(msg, s.Path) || !strings.Contains(msg, "remove the file") {
					t.Errorf("%s error does not name the file and the fix: %v", op, err)
				}
				if strings.Contains(msg, "TOPSECRET") {
					t.Errorf("%s error quotes the file: %v", op, err)
				}
			}
			_, _, err := s.Get("gcr.io")
			check("Get", err)
			_, err = s.List()
			check("List", err)
			check("Put", s.Put("us.gcr.io", Entry{Username: UsernameAccessToken, Secret: "x"}))
			check("Delete", s.Delete("gcr.io"))
			if data, _ := os.ReadFile(s.Path); string(data) != content {
				t.Error("a corrupt store was overwritten")
			}
		})
	}
}

func TestStoreTooLarge(t *testing.T) {
	s := newTestStore(t)
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	big := `{"credentials":{}, "pad":"` + strings.Repeat("x", storeMaxSize) + `"}`
	if err := os.WriteFile(s.Path, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("List of an oversized store = %v", err)
	}
}

// fakeStoreClock makes storeNow advance by step on each call and run tick
// first, so a test decides what a waiter sees between its polls.
func fakeStoreClock(t *testing.T, step time.Duration, tick func(call int)) {
	t.Helper()
	oldNow, oldStall := storeNow, storeLockStall
	t.Cleanup(func() { storeNow, storeLockStall = oldNow, oldStall })
	now, calls := time.Now(), 0
	storeNow = func() time.Time {
		calls++
		tick(calls)
		now = now.Add(step)
		return now
	}
}

// holdStoreLock holds s's lock as another process would until release.
func holdStoreLock(t *testing.T, s *Store) (release func()) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	held := flock.New(s.Path + ".lock")
	if err := held.Lock(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Unlock() })
	return func() { held.Unlock() }
}

// A holder that stops making progress (the file stays the same for
// storeLockStall) ends the wait with one error naming the lock file.
func TestStoreLockStalled(t *testing.T) {
	s := newTestStore(t)
	holdStoreLock(t, s)
	storeLockStall = time.Minute
	fakeStoreClock(t, 20*time.Second, func(int) {})
	err := s.Put("gcr.io", Entry{Username: UsernameAccessToken, Secret: "x"})
	if err == nil || !strings.Contains(err.Error(), "locking "+s.Path+".lock") || !strings.Contains(err.Error(), "has not changed "+s.Path+" for 1m0s") {
		t.Errorf("Put under a stalled lock = %v, want a locking error naming the lock file and the stall", err)
	}
}

// A queue of holders that keep replacing the file is waited out however
// long it takes in all: here ten stall periods, each holder's turn half one.
func TestStoreLockWaitsWhileHoldersProgress(t *testing.T) {
	s := newTestStore(t)
	release := holdStoreLock(t, s)
	storeLockStall = time.Minute
	const turns = 20
	fakeStoreClock(t, 30*time.Second, func(call int) {
		switch {
		case call < turns:
			// The holder of this turn stores its entry: the file changes.
			if err := atomicfile.WriteFile(s.Path, fmt.Appendf(nil, `{"credentials":{"r%d.gcr.io":{"username":"oauth2accesstoken","secret":"s"}}}`, call), 0o600); err != nil {
				t.Error(err)
			}
		case call == turns:
			release()
		}
	})
	if err := s.Put("gcr.io", Entry{Username: UsernameAccessToken, Secret: "x"}); err != nil {
		t.Fatalf("Put behind holders that keep making progress: %v", err)
	}
	if list, err := s.List(); err != nil || len(list) != 2 {
		t.Errorf("after the wait the store lists %v, %v; want the last holder's entry and gcr.io", list, err)
	}
}

// expectedAfterWorkers is the content the concurrency tests must end with:
// each worker i leaves r<i>.gcr.io and nothing else.
func expectedAfterWorkers(n int) map[string]string {
	want := map[string]string{}
	for i := range n {
		want[fmt.Sprintf("r%d.gcr.io", i)] = UsernameAccessToken
	}
	return want
}

// storeWorker is what each concurrent goroutine or process does: several
// rounds of store and erase through the Helper, as docker login/logout do.
func storeWorker(path string, i int) error {
	h := &Helper{Store: &Store{Path: path}}
	for round := range 5 {
		keep := fmt.Sprintf("r%d.gcr.io", i)
		temp := fmt.Sprintf("t%d-%d.gcr.io", i, round)
		for _, host := range []string{keep, temp} {
			c := &credentials.Credentials{ServerURL: "https://" + host, Username: UsernameAccessToken, Secret: fmt.Sprintf("tok-%d-%d", i, round)}
			if err := h.Add(c); err != nil {
				return err
			}
		}
		if err := h.Delete(temp); err != nil {
			return err
		}
	}
	return nil
}

func checkWorkersResult(t *testing.T, s *Store, n int) {
	t.Helper()
	raw := readStoreFile(t, s.Path)
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if want := expectedAfterWorkers(n); fmt.Sprint(list) != fmt.Sprint(want) {
		t.Errorf("after %d concurrent workers the store lists %d entries:\n%v\nwant %v", n, len(list), list, want)
	}
	for i := range n {
		if e := raw.Credentials[fmt.Sprintf("r%d.gcr.io", i)]; e.Secret != fmt.Sprintf("tok-%d-4", i) {
			t.Errorf("worker %d's last update was lost: %+v", i, e)
		}
	}
}

func TestStoreConcurrentGoroutines(t *testing.T) {
	isolate(t)
	s := newTestStore(t)
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- storeWorker(s.Path, i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	checkWorkersResult(t, s, n)
}

// Environment of a child process started by TestStoreConcurrentProcesses.
const (
	envChildStore = "HELPER_TEST_CHILD_STORE"
	envChildIndex = "HELPER_TEST_CHILD_INDEX"
)

// TestStoreConcurrentProcesses runs 32 copies of the test binary doing
// store/erase on one file at once, as parallel `docker login`s do: none
// may lose another's update or leave the file torn.
func TestStoreConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 32 processes")
	}
	isolate(t)
	s := newTestStore(t)
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		t.Fatal(err)
	}
	const n = 32
	cmds := make([]*exec.Cmd, n)
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoreChildProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envChildStore+"="+s.Path, envChildIndex+"="+strconv.Itoa(i))
		cmds[i] = cmd
	}
	outs := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("child %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	checkWorkersResult(t, s, n)
}

// TestStoreChildProcess is the body of one child of
// TestStoreConcurrentProcesses; run directly it does nothing.
func TestStoreChildProcess(t *testing.T) {
	path := os.Getenv(envChildStore)
	if path == "" {
		t.Skip("only run as a child of TestStoreConcurrentProcesses")
	}
	i, err := strconv.Atoi(os.Getenv(envChildIndex))
	if err != nil {
		t.Fatal(err)
	}
	if err := storeWorker(path, i); err != nil {
		t.Fatal(err)
	}
}
