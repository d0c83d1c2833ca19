package box

import (
	"strings"
	"testing"
)

func TestParseVolume(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		in, target string
		ro         bool
		err        string
	}{
		{dir + ":/data", "/data", false, ""},
		{dir + ":/data:ro", "/data", true, ""},
		{dir + "/:/data/../x:rw", "/x", false, ""},
		{"rel:/data", "", false, "absolute"},
		{dir + ":rel", "", false, "absolute"},
		{dir + ":/", "", false, "cannot be replaced"},
		{dir + ":/d:rx", "", false, "ro or rw"},
		{"/no/such/dir/x:/d", "", false, "does not exist"},
		{dir, "", false, "SRC:DST"},
		{dir + ":/a:ro:x", "", false, "SRC:DST"},
	}
	for _, c := range cases {
		v, err := ParseVolume(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "hint:") {
				t.Errorf("ParseVolume(%q) err = %v, want %q with a hint", c.in, err, c.err)
			}
			continue
		}
		if err != nil || v.Target != c.target || v.ReadOnly != c.ro || v.Source != dir {
			t.Errorf("ParseVolume(%q) = %+v, %v", c.in, v, err)
		}
	}
}
