package runtime

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBoxAccountsCache: a session's user comes from the box's passwd and
// group as they are now — kept only while both files are the versions it
// was read from and changed long enough before (an edit in place, even
// to the same size and times, reads them again).
func TestBoxAccountsCache(t *testing.T) {
	dir := t.TempDir()
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	saved, savedSettle := accountFiles, accountSettle
	t.Cleanup(func() { accountFiles, accountSettle = saved, savedSettle })
	accountFiles = [2]string{passwd, group}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(passwd, "me:x:1000:1000::/home/aa:/bin/sh\n")
	write(group, "me:x:1000:\nwheel:x:10:me\n")
	var c boxAccounts
	home := func(want string, cached bool) {
		t.Helper()
		u, err := c.resolve(1000)
		if err != nil || u.Home != want || len(u.Groups) != 2 {
			t.Fatalf("resolve: %+v, %v; want home %s and two groups", u, err, want)
		}
		if _, ok := c.users[1000]; ok != cached {
			t.Fatalf("kept: %v, want %v", ok, cached)
		}
		u.Groups[0] = 99 // the caller's copy
	}
	home("/home/aa", false) // changed just now: not kept
	accountSettle = 0
	home("/home/aa", true)
	home("/home/aa", true)
	if u, _ := c.resolve(1000); u.Groups[0] == 99 {
		t.Fatal("a caller's change reached the kept user")
	}
	fi, err := os.Stat(passwd)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	write(passwd, "me:x:1000:1000::/home/bb:/bin/sh\n") // same size
	if err := os.Chtimes(passwd, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	home("/home/bb", true)
	write(group+".new", "me:x:1000:\n")
	if err := os.Rename(group+".new", group); err != nil {
		t.Fatal(err)
	}
	if u, _ := c.resolve(1000); len(u.Groups) != 1 {
		t.Fatalf("after group was replaced: %+v", u)
	}
	if err := os.Remove(group); err != nil {
		t.Fatal(err)
	}
	c.users = nil
	if u, err := c.resolve(1000); err != nil || len(u.Groups) != 1 || c.users != nil {
		t.Fatalf("without group: %+v, %v (kept: %v)", u, err, c.users)
	}
}
