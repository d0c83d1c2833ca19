package session

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/test/testutil"
	"golang.org/x/sys/unix"
)

// TestForget: devbox rm takes the removed box's ticket with it, and only
// its own: a ticket of a box made since under that name stays; a link in
// the ticket's place goes as a link.
func TestForget(t *testing.T) {
	base, store := t.TempDir(), t.TempDir()
	vouched(t, base, store, "", true)
	p := ticketPath(base, store, "dev")
	must(t, Forget(base, store, "dev", "another-box"))
	if _, err := os.Lstat(p); err != nil {
		t.Fatalf("the ticket of another box of the name went: %v", err)
	}
	must(t, Forget(base, store, "dev", "0123456789abcdef"))
	if _, err := os.Lstat(p); err == nil {
		t.Fatal("the removed box's ticket stays")
	}
	must(t, Forget(base, store, "dev", "0123456789abcdef")) // none: no error
	canary := filepath.Join(t.TempDir(), "canary")
	must(t, os.WriteFile(canary, []byte("keep"), 0o600))
	must(t, os.Symlink(canary, p))
	must(t, Forget(base, store, "dev", "0123456789abcdef"))
	if _, err := os.Lstat(p); err == nil {
		t.Error("a link in the ticket's place stays")
	}
	if b, err := os.ReadFile(canary); err != nil || string(b) != "keep" {
		t.Errorf("the link's target: %q, %v", b, err)
	}
}

// TestSweep: devbox prune removes the tickets of this store's boxes that
// are gone, those of other stores whose box directory is gone, and
// anything in the tickets' directory that is not a ticket,
// read as input (a link not followed, a fifo not waited on, a huge file
// not read whole); live boxes' tickets, other stores' tickets and a live
// writer's temporary stay.
func TestSweep(t *testing.T) {
	base, store := t.TempDir(), t.TempDir()
	vouched(t, base, store, "", true)
	dir := filepath.Join(base, "front")
	elsewhere := t.TempDir() // another store, whose box is there
	other := Ticket{Store: elsewhere, Name: "dev", ID: "0123456789abcdef", Dir: vouched(t, t.TempDir(), elsewhere, "", true), Record: FileID{Ino: 1}}
	must(t, Vouch(base, other))
	removedStore := Ticket{Store: "/removed", Name: "dev", ID: "0123456789abcdef", Dir: "/removed/containers/0123456789abcdef", Record: FileID{Ino: 1}}
	must(t, Vouch(base, removedStore))
	gone := Ticket{Store: store, Name: "old", ID: "fedcba9876543210", Dir: "/gone", Record: FileID{Ino: 1}}
	must(t, Vouch(base, gone))
	canary := filepath.Join(t.TempDir(), "canary")
	b, _ := os.ReadFile(ticketPath(base, store, "dev"))
	must(t, os.WriteFile(canary, b, 0o600))
	hostile := map[string]func(p string) error{
		"link":    func(p string) error { return os.Symlink(canary, p) },
		"fifo":    func(p string) error { return unix.Mkfifo(p, 0o600) },
		"copied":  func(p string) error { return os.WriteFile(p, b, 0o600) }, // a live ticket under another name
		"damaged": func(p string) error { return os.WriteFile(p, []byte("{"), 0o600) },
		"huge":    func(p string) error { return testutil.HugeFile(p, b) },
		".ticket-dead": func(p string) error {
			old := time.Now().Add(-2 * staleTicketTmp)
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				return err
			}
			return os.Chtimes(p, old, old)
		},
	}
	for name, plant := range hostile {
		must(t, plant(filepath.Join(dir, name)))
	}
	must(t, os.WriteFile(filepath.Join(dir, ".ticket-live"), nil, 0o600))

	live := func(name, id string) bool { return name == "dev" && id == "0123456789abcdef" }
	n, err := Sweep(base, store, live)
	must(t, err)
	if want := len(hostile) + 2; n != want {
		t.Errorf("removed %d, want %d", n, want)
	}
	for name := range hostile {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s: stays", name)
		}
	}
	for what, p := range map[string]string{
		"the gone box's ticket":          ticketPath(base, store, "old"),
		"a removed store's box's ticket": ticketPath(base, "/removed", "dev"),
	} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s stays", what)
		}
	}
	for what, p := range map[string]string{
		"the live box's ticket":  ticketPath(base, store, "dev"),
		"another store's ticket": ticketPath(base, elsewhere, "dev"),
		"a live temporary":       filepath.Join(dir, ".ticket-live"),
		"the link's target":      canary,
	} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s went: %v", what, err)
		}
	}
	if _, err := Lookup(base, store, "dev"); err != nil {
		t.Errorf("the live box after the sweep: %v", err)
	}
}
