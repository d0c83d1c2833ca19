package cgroup

import "testing"

func TestLimitsOver(t *testing.T) {
	for _, c := range []struct{ l, n, want Limits }{
		{Limits{}, Limits{Memory: 1 << 30}, Limits{Memory: 1 << 30}},
		{Limits{Memory: 1 << 30, CPUs: 2}, Limits{CPUs: 1.5}, Limits{Memory: 1 << 30, CPUs: 1.5}},
		{Limits{Memory: 1 << 30, MemorySwap: 2 << 30}, Limits{MemorySwap: -1, PidsLimit: 512}, Limits{Memory: 1 << 30, MemorySwap: -1, PidsLimit: 512}},
		{Limits{CPUWeight: 10, IOWeight: 20}, Limits{CPUWeight: 30, IOWeight: 40}, Limits{CPUWeight: 30, IOWeight: 40}},
		{Limits{PidsLimit: 9}, Limits{}, Limits{PidsLimit: 9}},
	} {
		if got := c.l.Over(c.n); got != c.want {
			t.Errorf("%+v.Over(%+v) = %+v, want %+v", c.l, c.n, got, c.want)
		}
	}
}
