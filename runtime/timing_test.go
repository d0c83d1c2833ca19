package runtime

import (
	"os"

	"github.com/devbox-dev/devbox/rootless"
	"slices"
	"testing"
	"time"
)

// TestStartupTiming reports the median time from rootless.Start to the
// exit of `true` in a box (set DEVBOX_TIMING=1; it is a measurement, not a
// check).
func TestStartupTiming(t *testing.T) {
	if os.Getenv("DEVBOX_TIMING") == "" {
		t.Skip("set DEVBOX_TIMING=1 to measure the box start-up time")
	}
	f := newFixture(t)
	s := f.spec("true")
	s.Remove = os.Getenv("DEVBOX_TIMING_REMOVE") != ""
	f.mustRun(s) // warm the caches
	var d []time.Duration
	for range 50 {
		start := time.Now()
		p, err := f.start(s, nil, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		code, err := p.Wait()
		d = append(d, time.Since(start))
		if err != nil || code != 0 {
			t.Fatalf("code %d err %v", code, err)
		}
	}
	slices.Sort(d)
	t.Logf("rootless.Start → exit of true, 50 runs: median %v, min %v, p90 %v, max %v", d[25], d[0], d[45], d[49])
}

func TestNoopTiming(t *testing.T) {
	if os.Getenv("DEVBOX_TIMING") == "" {
		t.Skip("set DEVBOX_TIMING=1")
	}
	f := newFixture(t)
	var d []time.Duration
	for range 50 {
		start := time.Now()
		code, err := rootless.Run(rootless.Spec{Stage: "noop", Mapping: f.m, Namespaces: rootless.Namespaces{Mount: true, PID: true, UTS: true, IPC: true, Net: true}})
		d = append(d, time.Since(start))
		if err != nil || code != 0 {
			t.Fatalf("code %d err %v", code, err)
		}
	}
	slices.Sort(d)
	t.Logf("noop stage: median %v, min %v, p90 %v", d[25], d[0], d[45])
}
