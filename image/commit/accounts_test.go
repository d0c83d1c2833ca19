package commit

import "testing"

func TestUndoAccount(t *testing.T) {
	a := Account{Name: "ann", UID: 1000, GID: 1000}
	for _, c := range []struct {
		name         string
		undo         undoFunc
		upper, lower string
		want         string // "" : nothing to commit
	}{
		{"passwd only devbox's line", undoPasswd,
			"root:x:0:0:root:/root:/bin/sh\nann:x:1000:1000:Ann:/home/ann:/bin/bash\n",
			"root:x:0:0:root:/root:/bin/sh\n", ""},
		{"passwd: the image's uid 1000 put back", undoPasswd,
			"root:x:0:0:root:/root:/bin/sh\nann:x:1000:1000:Ann:/home/ann:/bin/bash\n",
			"root:x:0:0:root:/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n", ""},
		{"passwd: a user added in the box stays", undoPasswd,
			"root:x:0:0:root:/root:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\nann:x:1000:1000:Ann:/home/ann:/bin/bash\n",
			"root:x:0:0:root:/root:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n",
			"root:x:0:0:root:/root:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n"},
		{"passwd: no image file", undoPasswd, "ann:x:1000:1000:Ann:/home/ann:/bin/bash\n", "", ""},
		{"group: admin membership and primary group", undoGroup,
			"root:x:0:\nsudo:x:27:ann\nann:x:1000:\n", "root:x:0:\nsudo:x:27:\n", ""},
		{"group: members of the image kept", undoGroup,
			"root:x:0:\nwheel:x:10:bob,ann\n", "root:x:0:\nwheel:x:10:bob\n", ""},
		{"group: the image's own gid 1000 kept", undoGroup,
			"users:x:1000:\nsudo:x:27:ann\n", "users:x:1000:\nsudo:x:27:\n", ""},
		{"group: a member the image had stays", undoGroup,
			"sudo:x:27:ann\n", "sudo:x:27:ann\n", ""},
		{"group: a group added in the box stays", undoGroup,
			"root:x:0:\nsudo:x:27:ann\ndocker:x:999:\nann:x:1000:\n", "root:x:0:\nsudo:x:27:\n",
			"root:x:0:\nsudo:x:27:\ndocker:x:999:\n"},
		{"shadow", undoShadow, "root:*:19000:0:99999:7:::\nann:*:19000:0:99999:7:::\n", "root:*:19000:0:99999:7:::\n", ""},
		{"shadow: a password set in the box stays", undoShadow,
			"root:$y$abc:19000:0:99999:7:::\nann:*:19000:0:99999:7:::\n", "root:*:19000:0:99999:7:::\n",
			"root:$y$abc:19000:0:99999:7:::\n"},
	} {
		got, keep := c.undo([]byte(c.upper), []byte(c.lower), a)
		if keep != (c.want != "") || string(got) != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, keep, c.want)
		}
	}
}
