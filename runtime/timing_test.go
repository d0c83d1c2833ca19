package runtime

import (
	"slices"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/rootless"
)

// BenchmarkStartup measures the time from rootless.Start to the exit of
// `true` in a box, and the floor rootless sets (the same namespaces, a
// stage that exits at once). It reports the median: run it as the test
// user with -test.bench=Startup -test.benchtime=50x.
func BenchmarkStartup(b *testing.B) {
	f := newFixture(b)
	ns := rootless.Namespaces{Mount: true, PID: true, UTS: true, IPC: true, Net: true}
	box := func(remove bool) func() (int, error) {
		s := f.spec("true")
		s.Remove = remove
		return func() (int, error) {
			p, err := f.start(s, nil, nil, nil, nil)
			if err != nil {
				return -1, err
			}
			return p.Wait()
		}
	}
	for _, bc := range []struct {
		name string
		run  func() (int, error)
	}{
		{"rootless-floor", func() (int, error) {
			return rootless.Run(rootless.Spec{Stage: "noop", Mapping: f.m, Namespaces: ns})
		}},
		{"box-persistent", box(false)},
		{"box-ephemeral", box(true)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := bc.run(); err != nil { // warm the caches
				b.Fatal(err)
			}
			var d []time.Duration
			for b.Loop() {
				start := time.Now()
				code, err := bc.run()
				d = append(d, time.Since(start))
				if err != nil || code != 0 {
					b.Fatalf("exit %d: %v", code, err)
				}
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "ms-median")
			b.ReportMetric(float64(d[0].Microseconds())/1000, "ms-min")
		})
	}
}
