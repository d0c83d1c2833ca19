package runtime

import (
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// boxAccounts is what the agent resolved of the box's /etc/passwd and
// /etc/group for a session's uid, kept with the identities of the two
// files it was read from: a session whose uid was resolved from the very
// files that are there now takes it from here (two stats) instead of
// reading and parsing both files on its way to the fork. Anything else —
// another version of either file (a rename, a rewrite, an edit in place
// moves its ctime), a file missing or unreadable — reads them again.
type boxAccounts struct {
	mu            sync.Mutex
	passwd, group accountFileID
	users         map[int]User
}

// accountFileID identifies one version of a file.
type accountFileID struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

// accountSettle is how old a file's last change must be for what was
// read from it to be kept: a change within the same tick of the file
// system's clock could leave size and times as they were; any later
// change moves ctime past what was recorded.
var accountSettle = 2 * time.Second

// accountFiles are the files a session's user is resolved from, as the
// agent reads them (following links, in the box).
var accountFiles = [2]string{"/etc/passwd", "/etc/group"}

func accountStamp(path string) (accountFileID, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return accountFileID{}, false
	}
	return accountFileID{dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec, ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec}, true
}

// resolve returns the box's user of uid (ResolveUser of the box's
// passwd and group), from what was kept when both files are still the
// versions it was read from.
func (c *boxAccounts) resolve(uid int) (User, error) {
	now := time.Now()
	p, pok := accountStamp(accountFiles[0])
	g, gok := accountStamp(accountFiles[1])
	if pok && gok {
		c.mu.Lock()
		u, ok := c.users[uid]
		ok = ok && p == c.passwd && g == c.group
		c.mu.Unlock()
		if ok {
			return u.clone(), nil
		}
	}
	passwd, _ := readAll(accountFiles[0])
	group, _ := readAll(accountFiles[1])
	u, err := ResolveUser(strconv.Itoa(uid), passwd, group)
	if err != nil || !pok || !gok {
		return u, err
	}
	settled := func(id accountFileID) bool { return now.UnixNano()-id.ctime >= int64(accountSettle) }
	p2, pok := accountStamp(accountFiles[0])
	g2, gok := accountStamp(accountFiles[1])
	if pok && gok && p2 == p && g2 == g && settled(p) && settled(g) {
		c.mu.Lock()
		if c.passwd != p || c.group != g || c.users == nil {
			c.passwd, c.group, c.users = p, g, map[int]User{}
		}
		c.users[uid] = u.clone()
		c.mu.Unlock()
	}
	return u, nil
}

func (u User) clone() User {
	u.Groups = append([]uint32(nil), u.Groups...)
	return u
}
