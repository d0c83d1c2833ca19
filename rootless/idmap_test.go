package rootless

import (
	"reflect"
	"strings"
	"testing"
)

func TestMapArgs(t *testing.T) {
	got := strings.Join(mapArgs(keepIDMaps(1000, []Range{{Start: 100000, Length: 65536}, {Start: 300000, Length: 10}})), " ")
	want := "0 100000 1000 1000 1000 1 1001 101000 64536 65537 300000 10"
	if got != want {
		t.Errorf("mapArgs = %q, want %q", got, want)
	}
}

func TestScrubEnv(t *testing.T) {
	got := ScrubEnv([]string{"A=1", "_DEVBOX_STAGE=x", "TERM=xterm", "_DEVBOX_INNER={}"})
	if !reflect.DeepEqual(got, []string{"A=1", "TERM=xterm"}) {
		t.Errorf("ScrubEnv = %v", got)
	}
}
