package stats

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/devbox-dev/devbox/cmd/iostreams"
)

// fakeBox makes a box cgroup in a temporary tree with the given files.
func fakeBox(t *testing.T, root, id, name string, files map[string]string) box.CgroupBox {
	t.Helper()
	p := "/user/devbox-" + id
	dir := filepath.Join(root, p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, c := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := cgroup.Load(root, p)
	if err != nil {
		t.Fatal(err)
	}
	return box.CgroupBox{ID: id, Name: name, Box: b}
}

func TestRunNoStreamJSONAndTable(t *testing.T) {
	root := t.TempDir()
	boxes := []box.CgroupBox{
		fakeBox(t, root, "0123456789abcdef", "web", map[string]string{
			"cpu.stat": "usage_usec 2000000\n", "cpu.max": "50000 100000\n",
			"memory.current": "33554432\n", "memory.max": "67108864\n", "memory.stat": "anon 1\n",
			"pids.current": "4\n", "pids.max": "20\n", "memory.events": "oom_kill 0\n",
		}),
		fakeBox(t, root, "fedcba9876543210", "", map[string]string{
			"cpu.stat": "usage_usec 10\n", "cpu.max": "max 100000\n",
			"memory.current": "1048576\n", "memory.max": "max\n", "memory.stat": "anon 1\n",
			"pids.current": "2\n", "pids.max": "max\n",
		}),
	}
	list := func() ([]box.CgroupBox, error) { return boxes, nil }

	var out bytes.Buffer
	if err := run(context.Background(), &out, false, list, &Options{JSON: true, NoStream: true, Interval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var rows []Row
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("%v: %s", err, out.String())
	}
	r := rows[0]
	if r.Name != "web" || r.Cgroup != "/user/devbox-0123456789abcdef" || r.CPU.UsageUsec != 2000000 || *r.CPU.Limit != 0.5 ||
		r.Memory.Current != 32<<20 || *r.Memory.Limit != 64<<20 || r.Pids.Current != 4 || *r.Pids.Limit != 20 || r.CPUPercent != 0 {
		t.Errorf("row %+v", r)
	}
	if rows[1].Memory.Limit != nil || rows[1].Pids.Limit != nil || rows[1].CPU.Limit != nil {
		t.Errorf("unlimited row %+v", rows[1])
	}
	for _, key := range []string{`"cpuPercent"`, `"usageUsec"`, `"memory":{"current"`, `"pids":{"current"`, `"limit":null`} {
		if !strings.Contains(out.String(), key) {
			t.Errorf("JSON lacks %s: %s", key, out.String())
		}
	}

	out.Reset()
	if err := run(context.Background(), &out, true, list, &Options{NoStream: true, Interval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	for _, s := range []string{"NAME", "web", "0123456789ab", "32MiB / 64MiB", "50.0%", "4 / 20", "(max 50%)", "1MiB / unlimited", "fedcba987654"} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	if strings.Contains(table, "\x1b[") {
		t.Error("one-shot output redraws the screen")
	}

	if err := run(context.Background(), &out, false, list, &Options{Boxes: []string{"nope"}, NoStream: true, Interval: time.Millisecond}); err == nil {
		t.Error("an unknown box was accepted")
	}
}

func TestRunStreamsUntilCancelled(t *testing.T) {
	root := t.TempDir()
	b := fakeBox(t, root, "0123456789abcdef", "web", map[string]string{"cpu.stat": "usage_usec 0\n", "memory.current": "0\n", "pids.current": "1\n"})
	list := func() ([]box.CgroupBox, error) { return []box.CgroupBox{b}, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, false, list, &Options{JSON: true, Interval: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n < 2 {
		t.Errorf("%d samples in 120ms at 20ms:\n%s", n, out.String())
	}
	// A named box that stops ends the stream.
	gone := func() ([]box.CgroupBox, error) { return nil, nil }
	calls := 0
	flaky := func() ([]box.CgroupBox, error) {
		calls++
		if calls == 1 {
			return list()
		}
		return gone()
	}
	if err := run(context.Background(), &out, false, flaky, &Options{Boxes: []string{"web"}, Interval: time.Millisecond}); err != nil {
		t.Errorf("stream of a stopped box: %v", err)
	}
}

func TestCPUPercent(t *testing.T) {
	for _, c := range []struct {
		before, after uint64
		wall          time.Duration
		want          float64
	}{
		{0, 500000, time.Second, 50}, {0, 2000000, time.Second, 200}, {10, 5, time.Second, 0}, {0, 1, 0, 0},
	} {
		if got := cpuPercent(c.before, c.after, c.wall); got != c.want {
			t.Errorf("cpuPercent(%d, %d, %s) = %v, want %v", c.before, c.after, c.wall, got, c.want)
		}
	}
}

func TestNewCmdStatsFlags(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	var got *Options
	cmd := NewCmdStats(&cmdutil.Factory{IOStreams: ios}, func(_ context.Context, o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--no-stream", "--json", "a", "b"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !got.NoStream || !got.JSON || len(got.Boxes) != 2 || got.Interval != time.Second {
		t.Errorf("%+v", got)
	}
	cmd.SetArgs([]string{"--interval", "0s"})
	if err := cmd.Execute(); err == nil {
		t.Error("--interval 0 accepted")
	}
}
