package runtime

import (
	"strings"
	"testing"
)

func TestAccountFiles(t *testing.T) {
	a := Account{Name: "alice", UID: 1000, GID: 1000, Group: "alice", Gecos: "Alice: A", Home: "/home/alice", Shell: "/bin/zsh"}
	passwd := "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000:Ubuntu:/home/ubuntu:/bin/bash\nalice:x:1500:1500::/old:/bin/sh\n"
	got := string(addPasswd([]byte(passwd), a, "/bin/bash"))
	want := "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice  A:/home/alice:/bin/bash\n"
	if got != want {
		t.Errorf("passwd:\n%s\nwant:\n%s", got, want)
	}
	group := "root:x:0:\nsudo:x:27:\nwheel:x:10:bob\nalice:x:1500:\n"
	got = string(addGroup([]byte(group), a, true))
	for _, w := range []string{"sudo:x:27:alice\n", "wheel:x:10:bob,alice\n", "alice:x:1500:\n", "alice-devbox:x:1000:\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("group lacks %q:\n%s", w, got)
		}
	}
	if got2 := string(addGroup([]byte(got), a, true)); got2 != got {
		t.Errorf("addGroup is not idempotent:\n%s\n%s", got, got2)
	}
	if got := string(addGroup([]byte("root:x:0:\nstaff:x:1000:\n"), a, false)); got != "root:x:0:\nstaff:x:1000:\n" {
		t.Errorf("an existing gid must be kept: %q", got)
	}
	sh := string(addShadow([]byte("root:*:1::::::\n"), a))
	if !strings.HasSuffix(sh, "alice:*:19000:0:99999:7:::\n") || string(addShadow([]byte(sh), a)) != sh {
		t.Errorf("shadow: %q", sh)
	}
	if got := string(addPasswd(nil, a, "/bin/sh")); got != "alice:x:1000:1000:Alice  A:/home/alice:/bin/sh\n" {
		t.Errorf("empty passwd: %q", got)
	}
}
