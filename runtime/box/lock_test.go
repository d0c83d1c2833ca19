package box

import (
	"path/filepath"
	"testing"
)

func TestTryLock(t *testing.T) {
	dir := t.TempDir()
	s := &Store{Dir: filepath.Join(dir, "containers"), LocksDir: dir}
	if s.HasLock("build-x") {
		t.Fatal("a lock before anyone took it")
	}
	unlock, forget, held, err := s.TryLock("build-x")
	if err != nil || held || unlock == nil || forget == nil {
		t.Fatalf("TryLock of a free lock: held %v, %v", held, err)
	}
	if !s.HasLock("build-x") {
		t.Error("HasLock: the lock's file is not there")
	}
	// Another open file description: the lock is held.
	if u, f, held, err := s.TryLock("build-x"); err != nil || !held || u != nil || f != nil {
		t.Errorf("TryLock of a held lock: held %v, %v", held, err)
	}
	unlock()
	u2, forget2, held, err := s.TryLock("build-x")
	if err != nil || held {
		t.Fatalf("TryLock after the release: held %v, %v", held, err)
	}
	forget2()
	u2()
	if s.HasLock("build-x") {
		t.Error("forget left the lock's file")
	}
}
