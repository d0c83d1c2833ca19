package runtime

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/rootless"
)

// TestStartupTiming measures the time from rootless.Start to the exit of
// `true` in a box, 50 runs, next to the same namespaces with a stage that
// exits at once (the floor rootless sets). It is a measurement, not a
// check: set DEVBOX_TIMING=1.
func TestStartupTiming(t *testing.T) {
	if os.Getenv("DEVBOX_TIMING") == "" {
		t.Skip("set DEVBOX_TIMING=1 to measure the box start-up time")
	}
	f := newFixture(t)
	ns := rootless.Namespaces{Mount: true, PID: true, UTS: true, IPC: true, Net: true}
	measure := func(name string, run func() int) {
		run() // warm the caches
		var d []time.Duration
		for range 50 {
			start := time.Now()
			if code := run(); code != 0 {
				t.Fatalf("%s: exit %d", name, code)
			}
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		t.Logf("%-34s median %6.2fms  min %6.2fms  p90 %6.2fms", name, ms(d[25]), ms(d[0]), ms(d[45]))
	}
	measure("rootless floor (stage exits)", func() int {
		code, err := rootless.Run(rootless.Spec{Stage: "noop", Mapping: f.m, Namespaces: ns})
		if err != nil {
			t.Fatal(err)
		}
		return code
	})
	for _, remove := range []bool{false, true} {
		s := f.spec("true")
		s.Remove = remove
		name := "box: true (persistent)"
		if remove {
			name = "box: true (Remove, ephemeral)"
		}
		measure(name, func() int {
			p, err := f.start(s, nil, nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			code, err := p.Wait()
			if err != nil {
				t.Fatal(err)
			}
			return code
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
