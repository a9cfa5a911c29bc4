package fusefs

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// opLog counts the requests Options.Observe reports.
type opLog struct {
	mu     sync.Mutex
	count  [NumOps]int
	errnos [NumOps]map[syscall.Errno]int
}

func (l *opLog) observe(op Op, took time.Duration, errno syscall.Errno) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if took < 0 {
		panic("negative duration")
	}
	l.count[op]++
	if errno != 0 {
		if l.errnos[op] == nil {
			l.errnos[op] = make(map[syscall.Errno]int)
		}
		l.errnos[op][errno]++
	}
}

func (l *opLog) get(op Op) (int, map[syscall.Errno]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[op], l.errnos[op]
}

func TestObserve(t *testing.T) {
	var l opLog
	e := newEnv(t, Options{Observe: l.observe})
	if err := os.WriteFile(e.path("f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(e.path("f")); err != nil || string(b) != "hello" {
		t.Fatalf("read back: %q, %v", b, err)
	}
	if err := os.Mkdir(e.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadDir(e.path("")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.path("missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat missing: %v", err)
	}
	for _, op := range []Op{OpCreate, OpWrite, OpFlush, OpOpen, OpRead, OpMkdir, OpOpenDir, OpLookup} {
		if n, _ := l.get(op); n == 0 {
			t.Errorf("no %s request observed", op)
		}
	}
	if _, errnos := l.get(OpLookup); errnos[syscall.ENOENT] == 0 {
		t.Errorf("the failed lookup was not observed with ENOENT: %v", errnos)
	}
	// Release is asynchronous after close.
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := l.get(OpRelease); n == 0; n, _ = l.get(OpRelease) {
		if time.Now().After(deadline) {
			t.Fatal("no release observed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOpNames(t *testing.T) {
	seen := map[string]bool{}
	for op := Op(0); op < NumOps; op++ {
		s := op.String()
		if s == "" || s == "unknown" || seen[s] {
			t.Errorf("op %d: name %q", op, s)
		}
		seen[s] = true
	}
	if NumOps.String() != "unknown" {
		t.Errorf("NumOps.String() = %q", NumOps.String())
	}
}
