package cgroup

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		err  string
	}{
		{"1024", 1024, ""},
		{"1b", 1, ""},
		{"512k", 512 << 10, ""},
		{"512KiB", 512 << 10, ""},
		{"512m", 512 << 20, ""},
		{"512M", 512 << 20, ""},
		{"512mb", 512 << 20, ""},
		{"64MiB", 64 << 20, ""},
		{"1g", 1 << 30, ""},
		{"1G", 1 << 30, ""},
		{"1.5GiB", 3 << 29, ""},
		{"1.5g", 3 << 29, ""},
		{" 2 g ", 2 << 30, ""},
		{"0.5m", 512 << 10, ""},
		{"2t", 2 << 40, ""},
		{"", 0, "invalid size"},
		{"m", 0, "invalid size"},
		{"12q", 0, "invalid size"},
		{"1.2.3g", 0, "invalid size"},
		{"-1g", 0, "invalid size"},
		{"0", 0, "out of range"},
		{"0.1b", 0, "out of range"},
		{"99999999t", 0, "out of range"},
		{"1e3m", 0, "invalid size"},
		{"1gg", 0, "invalid size"},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want error %q", c.in, got, err, c.err)
			} else if !strings.Contains(err.Error(), "(hint: ") {
				t.Errorf("ParseSize(%q): error without a hint: %v", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{
		900: "900B", 1024: "1KiB", 64 << 20: "64MiB", 3 << 29: "1.5GiB", 1<<30 + 1: "1GiB", 5 << 40: "5TiB",
	} {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	cases := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.5", 0.5, true}, {"2", 2, true}, {"1.25", 1.25, true}, {"0.01", 0.01, true},
		{"0.001", 0, false}, {"0", 0, false}, {"-1", 0, false}, {"two", 0, false},
		{"NaN", 0, false}, {"Inf", 0, false}, {"", 0, false}, {"5000", 0, false},
	}
	for _, c := range cases {
		got, err := ParseCPUs(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseCPUs(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "(hint: ") {
			t.Errorf("ParseCPUs(%q): error without a hint: %v", c.in, err)
		}
	}
}

func TestParseWeightPidsSwap(t *testing.T) {
	for in, ok := range map[string]bool{"1": true, "100": true, "10000": true, "0": false, "10001": false, "-5": false, "x": false} {
		if _, err := ParseWeight(in); (err == nil) != ok {
			t.Errorf("ParseWeight(%q): %v", in, err)
		}
	}
	for in, ok := range map[string]bool{"1": true, "20": true, "0": false, "-1": false, "1.5": false} {
		if _, err := ParsePids(in); (err == nil) != ok {
			t.Errorf("ParsePids(%q): %v", in, err)
		}
	}
	if v, err := ParseMemorySwap("-1"); err != nil || v != -1 {
		t.Errorf("ParseMemorySwap(-1) = %d, %v", v, err)
	}
	if v, err := ParseMemorySwap("1g"); err != nil || v != 1<<30 {
		t.Errorf("ParseMemorySwap(1g) = %d, %v", v, err)
	}
}

func TestLimitsValidate(t *testing.T) {
	cases := []struct {
		l   Limits
		err string
	}{
		{Limits{}, ""},
		{Limits{Memory: 64 << 20}, ""},
		{Limits{Memory: 1 << 20}, "too small"},
		{Limits{MemorySwap: 1 << 30}, "needs --memory"},
		{Limits{Memory: 1 << 30, MemorySwap: 512 << 20}, "less than --memory"},
		{Limits{Memory: 1 << 30, MemorySwap: -1}, ""},
		{Limits{Memory: 1 << 30, MemorySwap: 1 << 30}, ""},
	}
	for _, c := range cases {
		err := c.l.Validate()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%+v.Validate() = %v, want %q", c.l, err, c.err)
		}
	}
}

func TestLimitsControllersAndResources(t *testing.T) {
	l := Limits{Memory: 64 << 20, MemorySwap: 128 << 20, CPUs: 0.5, CPUWeight: 200, PidsLimit: 20, IOWeight: 300}
	if got, want := l.Controllers(), []string{"memory", "cpu", "pids", "io"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Controllers() = %v, want %v", got, want)
	}
	if got, want := l.Flags(), []string{"--memory", "--memory-swap", "--cpus", "--cpu-weight", "--pids-limit", "--io-weight"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Flags() = %v, want %v", got, want)
	}
	if got := l.flagsFor("cpu"); !reflect.DeepEqual(got, []string{"--cpus", "--cpu-weight"}) {
		t.Errorf("flagsFor(cpu) = %v", got)
	}
	r := l.Resources()
	if *r.Memory.Max != 64<<20 || *r.Memory.Swap != 64<<20 {
		t.Errorf("memory: max %d swap %d", *r.Memory.Max, *r.Memory.Swap)
	}
	if r.CPU.Max != "50000 100000" || *r.CPU.Weight != 200 {
		t.Errorf("cpu: max %q weight %d", r.CPU.Max, *r.CPU.Weight)
	}
	if r.Pids.Max != 20 {
		t.Errorf("pids: %d", r.Pids.Max)
	}
	if r := (Limits{CPUs: 1.5}).Resources(); r.CPU.Max != "150000 100000" || r.Memory != nil || r.Pids != nil {
		t.Errorf("cpus 1.5: %+v", r)
	}
	if r := (Limits{Memory: 64 << 20, MemorySwap: -1}).Resources(); r.Memory.Swap != nil {
		t.Errorf("unlimited swap must be written by Update, got %d", *r.Memory.Swap)
	}
	if (Limits{}).Any() || !(Limits{IOWeight: 1}).Any() {
		t.Error("Any")
	}
}
