package gvisor

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	small := smallTier.cost()
	fast := fastTier.cost()
	for _, tc := range []struct {
		name            string
		total, fastMax  int64
		maxConns        int
		takes           int
		wantFast, wantN int // connections granted: fast ones, all
		wantLog         bool
	}{
		{"one fast", 40 << 20, 24 << 20, 1024, 1, 1, 1, false},
		{"fast share then small", 40 << 20, 24 << 20, 1024, 10, int(24<<20) / int(fast), 10, false},
		{"budget ends", 40 << 20, 24 << 20, 4096, 4096,
			int(24<<20) / int(fast), int(24<<20)/int(fast) + int((40<<20)-(24<<20)/fast*fast)/int(small), true},
		{"connection cap", 1 << 40, 24 << 20, 100, 150, int(24<<20) / int(fast), 100, true},
		{"no fast share", 1 << 20, 0, 1024, 40, 0, int(1<<20) / int(small), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			b := newBudget(tc.total, tc.fastMax, tc.maxConns, &log)
			var got []tier
			for range tc.takes {
				if tr, ok := b.take(); ok {
					got = append(got, tr)
				}
			}
			nFast := 0
			for _, tr := range got {
				if tr.fast {
					nFast++
				}
			}
			if len(got) != tc.wantN || nFast != tc.wantFast {
				t.Errorf("granted %d (%d fast), want %d (%d fast)", len(got), nFast, tc.wantN, tc.wantFast)
			}
			if b.used > b.total || b.fastN > b.fastMax {
				t.Errorf("charged %d (fast %d) over %d (fast %d)", b.used, b.fastN, b.total, b.fastMax)
			}
			if logged := strings.Contains(log.String(), "the cap"); logged != tc.wantLog {
				t.Errorf("log %q, want a line: %v", log.String(), tc.wantLog)
			}
			if strings.Count(log.String(), "\n") > 1 {
				t.Errorf("logged more than once: %q", log.String())
			}
			for _, tr := range got {
				b.give(tr)
			}
			if b.used != 0 || b.fastN != 0 || b.conns != 0 {
				t.Errorf("after giving all back: used %d fast %d conns %d", b.used, b.fastN, b.conns)
			}
			if _, ok := b.take(); !ok && tc.maxConns > 0 && tc.total >= small {
				t.Errorf("no connection after all were given back")
			}
		})
	}
}

func TestBudgetLogRate(t *testing.T) {
	var log bytes.Buffer
	b := newBudget(1<<20, 0, 1, &log)
	now := time.Unix(1000, 0)
	b.now = func() time.Time { return now }
	tr, _ := b.take()
	for _, step := range []time.Duration{0, time.Second, 5 * time.Second, 11 * time.Second, time.Second} {
		now = now.Add(step)
		b.take()
	}
	if n := strings.Count(log.String(), "\n"); n != 2 {
		t.Errorf("%d log lines in 18 s of refusals, want 2: %q", n, log.String())
	}
	b.give(tr)
	if _, ok := b.take(); !ok {
		t.Fatal("refused after a connection closed")
	}
	b.take()
	if n := strings.Count(log.String(), "\n"); n != 3 {
		t.Errorf("reaching the cap again logs again: %d lines", n)
	}
}
