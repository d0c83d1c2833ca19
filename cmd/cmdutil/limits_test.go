package cmdutil

import (
	"strings"
	"testing"

	"github.com/devbox-dev/devbox/cgroup"
	"github.com/spf13/pflag"
)

func TestAddLimitFlags(t *testing.T) {
	cases := []struct {
		args []string
		want cgroup.Limits
		err  string
	}{
		{nil, cgroup.Limits{}, ""},
		{[]string{"--memory", "512m", "--memory-swap", "1g", "--cpus", "1.5", "--cpu-weight", "200", "--pids-limit", "64", "--io-weight", "300"},
			cgroup.Limits{Memory: 512 << 20, MemorySwap: 1 << 30, CPUs: 1.5, CPUWeight: 200, PidsLimit: 64, IOWeight: 300}, ""},
		{[]string{"--memory=1.5GiB", "--memory-swap=-1"}, cgroup.Limits{Memory: 3 << 29, MemorySwap: -1}, ""},
		{[]string{"--memory", "lots"}, cgroup.Limits{}, `invalid argument "lots" for "--memory" flag: invalid size "lots" (hint: `},
		{[]string{"--cpus", "0"}, cgroup.Limits{}, `"--cpus" flag: invalid CPU count "0": must be between 0.01 and 4096`},
		{[]string{"--pids-limit", "-3"}, cgroup.Limits{}, `invalid pids limit`},
		{[]string{"--io-weight", "0"}, cgroup.Limits{}, `invalid weight`},
	}
	for _, c := range cases {
		var l cgroup.Limits
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		AddLimitFlags(fs, &l)
		err := fs.Parse(c.args)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || l != c.want {
			t.Errorf("%v: %+v, %v; want %+v", c.args, l, err, c.want)
		}
	}
	// Help shows defaults as empty and the types.
	var l cgroup.Limits
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddLimitFlags(fs, &l)
	usage := fs.FlagUsages()
	for _, s := range []string{"--memory size", "--cpus n", "--cpu-weight weight", "--pids-limit n", "--io-weight weight", "--memory-swap size"} {
		if !strings.Contains(usage, s) {
			t.Errorf("usage lacks %q:\n%s", s, usage)
		}
	}
	_ = fs.Set("memory", "64m")
	if got := fs.Lookup("memory").Value.String(); got != "64MiB" {
		t.Errorf("String() = %q", got)
	}
}
