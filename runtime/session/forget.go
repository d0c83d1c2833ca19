package session

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// staleTicketTmp is how old a ticket's temporary must be to be a dead
// writer's (Vouch renames it within milliseconds).
const staleTicketTmp = time.Hour

// Forget removes the session ticket of box id, named name in the store at
// store, under the runtime directory base: devbox rm calls it once the box
// is gone, so that no ticket outlives its box. A ticket that names
// another box of that name (made since) stays; one that cannot be read as
// a ticket (a link, a fifo, a huge or damaged file) goes, as itself: a
// link is removed, never followed.
func Forget(base, store, name, id string) error {
	p := ticketPath(base, store, name)
	if t, ok := readTicket(p); ok && t.ID != id {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Sweep removes what Stale lists and returns how many entries it removed.
func Sweep(base, store string, live func(name, id string) bool) (int, error) {
	stale, err := Stale(base, store, live)
	n := 0
	for _, p := range stale {
		if os.Remove(p) == nil {
			n++
		}
	}
	return n, err
}

// Stale lists, under the runtime directory base, the session tickets of
// store whose box is gone (live reports whether box id named name still
// exists), tickets of other stores whose box directory has no box.json
// any more (a store removed, or pruned by a devbox older than Sweep),
// every entry of the tickets' directory that is not a ticket or a
// caller record (NoteCaller) (read as
// input: a link, a fifo, a huge or damaged file, a directory if empty),
// and temporaries of writers that died: what Sweep removes, and what
// `devbox prune --dry-run` lists.
func Stale(base, store string, live func(name, id string) bool) ([]string, error) {
	dir := filepath.Join(base, "front")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, ent := range ents {
		p := filepath.Join(dir, ent.Name())
		if strings.HasPrefix(ent.Name(), ".") {
			fi, err := ent.Info()
			if err != nil || time.Since(fi.ModTime()) < staleTicketTmp {
				continue
			}
		} else if strings.HasPrefix(ent.Name(), callerPrefix) {
			if b, _, err := readFile(p); err == nil {
				if c, err := decodeCaller(b); err == nil && callerFile(base, c.Config.Path) == p {
					continue // not a ticket: a caller record (caller.go)
				}
			}
		} else if t, ok := readTicket(p); ok && (t.Store != store && hasRecord(t.Dir) || t.Store == store && live(t.Name, t.ID)) {
			continue
		}
		stale = append(stale, p)
	}
	return stale, nil
}

// hasRecord reports whether box directory dir may still hold its record
// (anything but "no such file" counts: a ticket goes only when its box
// certainly has).
func hasRecord(dir string) bool {
	if !filepath.IsAbs(dir) {
		return false
	}
	_, err := os.Lstat(filepath.Join(dir, "box.json"))
	return !errors.Is(err, os.ErrNotExist)
}

// readTicket reads the ticket at p as input: a regular file of this user,
// not through a link, at most maxFile bytes, whose name is its store and
// box's (a ticket copied over another's name is no ticket).
func readTicket(p string) (Ticket, bool) {
	b, _, err := readFile(p)
	if err != nil {
		return Ticket{}, false
	}
	t, err := decodeTicket(b)
	if err != nil || t.Name == "" || t.ID == "" {
		return Ticket{}, false
	}
	if filepath.Base(ticketPath("", t.Store, t.Name)) != filepath.Base(p) {
		return Ticket{}, false
	}
	return t, true
}
