package box

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeOps moves upper directories as the snapshot stage does, on a
// directory the test owns; failAt makes the n-th move fail (an
// interrupted devbox).
type fakeOps struct {
	s      *Store
	layers string
	n      int
	moves  int
	failAt int
}

func (f *fakeOps) NewLayer() string { f.n++; return strings.Repeat(fmt.Sprint(f.n%10), 64) }

func (f *fakeOps) step() error {
	f.moves++
	if f.moves == f.failAt {
		return errors.New("killed")
	}
	return nil
}

func (f *fakeOps) Freeze(id, layer string) error {
	if err := f.step(); err != nil {
		return err
	}
	dst := filepath.Join(f.layers, layer)
	if _, err := os.Stat(dst); err != nil {
		if err := os.Rename(filepath.Join(f.s.BoxDir(id), "upper"), dst); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(f.s.BoxDir(id), "upper"), 0o755)
}

func (f *fakeOps) Reset(id string) error {
	if err := f.step(); err != nil {
		return err
	}
	up := filepath.Join(f.s.BoxDir(id), "upper")
	if err := os.RemoveAll(up); err != nil {
		return err
	}
	return os.Mkdir(up, 0o755)
}

func TestSnapshotRollbackClone(t *testing.T) {
	dir := t.TempDir()
	s := &Store{Dir: filepath.Join(dir, "containers"), LocksDir: filepath.Join(dir, "locks")}
	ops := &fakeOps{s: s, layers: filepath.Join(dir, "layers")}
	for _, d := range []string{s.Dir, s.LocksDir, ops.layers} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	r := &Record{ID: testID, Name: "dev", Image: "x", Lowers: []string{testLayer}, Hostname: "dev", Created: time.Now()}
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
	write := func(name string) {
		up := filepath.Join(s.BoxDir(r.ID), "upper")
		if err := os.MkdirAll(up, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(up, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reload := func() *Record {
		t.Helper()
		got, err := s.Get("dev")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// Nothing written yet: the snapshot adds no layer.
	sn, err := s.TakeSnapshot(r, "", ops)
	if err != nil || sn.Tag != "snap1" || !slices.Equal(sn.Lowers, []string{testLayer}) {
		t.Fatalf("first snapshot %+v, %v", sn, err)
	}
	write("a")
	sn, err = s.TakeSnapshot(r, "with-a", ops)
	if err != nil || len(sn.Lowers) != 2 || sn.Lowers[1] != testLayer {
		t.Fatalf("second snapshot %+v, %v", sn, err)
	}
	if _, err := os.Stat(filepath.Join(ops.layers, sn.Lowers[0], "a")); err != nil {
		t.Errorf("the frozen layer lacks the file: %v", err)
	}
	if _, err := s.TakeSnapshot(r, "with-a", ops); err == nil {
		t.Error("a tag was accepted twice")
	}
	write("b")
	// Rollback, killed after the record was written: the next Complete
	// finishes it.
	ops.failAt = ops.moves + 1
	if _, err := s.Rollback(r, "with-a", ops); err == nil {
		t.Fatal("the interrupted rollback succeeded")
	}
	r = reload()
	if r.Pending == nil || r.Pending.Op != LayerReset {
		t.Fatalf("pending after an interrupted rollback: %+v", r.Pending)
	}
	if err := s.Complete(r, ops); err != nil {
		t.Fatal(err)
	}
	r = reload()
	if r.Pending != nil || !slices.Equal(r.Lowers, sn.Lowers) {
		t.Errorf("after rollback: lowers %v pending %+v, want %v", r.Lowers, r.Pending, sn.Lowers)
	}
	if _, err := os.Stat(filepath.Join(s.BoxDir(r.ID), "upper", "b")); err == nil {
		t.Error("the rollback kept what was written after the snapshot")
	}
	// Clone: the source is frozen and both stack the same layers.
	write("c")
	c, err := s.Clone(r, "dev2", strings.Repeat("e", 32), ops)
	if err != nil {
		t.Fatal(err)
	}
	r = reload()
	if !slices.Equal(c.Lowers, r.Lowers) || len(r.Lowers) != 3 || c.Hostname != "dev2" || len(c.Snapshots) != 0 {
		t.Errorf("clone %+v of %+v", c, r)
	}
	if _, err := s.Clone(r, "dev2", strings.Repeat("f", 32), ops); err == nil {
		t.Error("a clone took a name in use")
	}
	if err := s.DropSnapshot(r, "snap1"); err != nil || len(reload().Snapshots) != 1 {
		t.Errorf("drop: %v", err)
	}
	if _, err := r.FindSnapshot("nope"); err == nil {
		t.Error("an unknown tag was found")
	}
}

func TestCheckAllSnapshots(t *testing.T) {
	dir := t.TempDir()
	s := &Store{Dir: filepath.Join(dir, "containers"), LocksDir: filepath.Join(dir, "locks")}
	other := strings.Repeat("b", 64)
	r := &Record{ID: testID, Name: "dev", Image: "x", Lowers: []string{testLayer}, Hostname: "dev",
		Snapshots: []Snapshot{{Tag: "old", Lowers: []string{other, testLayer}}}}
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		present []string
		want    string
	}{
		{"all there", []string{testLayer, other}, ""},
		{"a snapshot's layer gone", []string{testLayer}, "snapshot old"},
		{"the box's layer gone", []string{other}, "image layer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dmg, n, err := s.CheckAll(func(l string) bool { return slices.Contains(c.present, l) })
			if err != nil || n != 1 {
				t.Fatal(n, err)
			}
			got := ""
			for _, d := range dmg {
				got += d.Issue
			}
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Errorf("damage %q, want %q", got, c.want)
			}
		})
	}
}
