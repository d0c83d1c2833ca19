package trace

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMark(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, savedOn := os.Stderr, on
	t.Cleanup(func() { os.Stderr, on = saved, savedOn })
	os.Stderr = w

	on = false
	Mark("silent")
	on = true
	before := time.Now()
	Mark("init: spec read")
	w.Close()
	b, _ := io.ReadAll(r)

	f := strings.Fields(string(b))
	if len(f) != 6 || f[0] != "devbox-trace" || f[2] != strconv.Itoa(os.Getpid()) || strings.Join(f[3:], " ") != "init: spec read" {
		t.Fatalf("line %q", b)
	}
	sec, err := strconv.ParseFloat(f[1], 64)
	if err != nil || len(strings.Split(f[1], ".")[1]) != 6 {
		t.Fatalf("timestamp %q: %v", f[1], err)
	}
	if d := sec - float64(before.UnixMicro())/1e6; d < 0 || d > 5 {
		t.Errorf("timestamp %f is %fs from now", sec, d)
	}
}
