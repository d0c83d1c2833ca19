package runtime

import "testing"

func TestPeerAllowed(t *testing.T) {
	cases := []struct {
		name       string
		pid        int32
		uid, owner uint32
		ok         bool
	}{
		{"host CLI of the owner", 0, 1000, 1000, true},
		{"host CLI, single id (root inside is the user)", 0, 0, 0, true},
		{"a process of the box", 42, 1000, 1000, false},
		{"root of the box", 7, 0, 1000, false},
		{"another uid outside the box", 0, 1001, 1000, false},
		{"the box's root from outside its PID namespace", 0, 0, 1000, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := peerAllowed(c.pid, c.uid, c.owner); (err == nil) != c.ok {
				t.Errorf("peerAllowed(%d, %d, %d) = %v, want ok=%v", c.pid, c.uid, c.owner, err, c.ok)
			}
		})
	}
}
