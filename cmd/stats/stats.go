// Package stats implements `devbox stats`: live CPU, memory and pids usage
// of running boxes, read from their cgroups.
package stats

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cgroup"
	"github.com/devbox-dev/devbox/cmd/cmdutil"
	"github.com/spf13/cobra"
)

// Options are the parsed flags.
type Options struct {
	Boxes    []string
	JSON     bool
	NoStream bool
	Interval time.Duration
	// Watch streams even when stdout is not a terminal.
	Watch bool
}

// NewCmdStats builds the command.
func NewCmdStats(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "stats [flags] [BOX...]",
		Short: "Show the CPU, memory and pids usage of running boxes",
		Long: "Show live CPU, memory and process usage of running boxes (all of them when no\n" +
			"BOX is named), read from each box's cgroup. CPU % is relative to one CPU.\n" +
			"On a terminal the figures refresh every --interval; piped, one sample is printed\n" +
			"unless --watch. Where boxes get no cgroup (no usable cgroup v2), it says why.",
		Example: "  devbox stats\n  devbox stats --no-stream --json web",
		RunE: func(c *cobra.Command, args []string) error {
			opts.Boxes = args
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("invalid --interval %s (hint: use a positive duration, e.g. 2s)", opts.Interval)
			}
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return Run(c.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.JSON, "json", false, "print JSON: one array per sample (one line each when streaming)")
	fl.BoolVar(&opts.NoStream, "no-stream", false, "print one sample and exit (the default when stdout is not a terminal)")
	fl.BoolVar(&opts.Watch, "watch", false, "keep printing samples even when stdout is not a terminal")
	fl.DurationVar(&opts.Interval, "interval", time.Second, "time between samples")
	return cmd
}

// Row is one box in one sample; the JSON form is documented in
// docs/cgroups.md.
type Row struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Cgroup     string  `json:"cgroup"`
	CPUPercent float64 `json:"cpuPercent"` // over the last interval, 100 = one CPU
	cgroup.Stats
}

// Run samples the boxes until ctx ends (or once with --no-stream).
func Run(ctx context.Context, f *cmdutil.Factory, opts *Options) error {
	st, err := f.Store()
	if err != nil {
		return err
	}
	list := func() ([]box.CgroupBox, error) { return box.CgroupBoxes(st.ContainersDir()) }
	if !opts.Watch && !f.IOStreams.OutTTY {
		o := *opts
		o.NoStream = true // piped: one snapshot
		opts = &o
	}
	all, err := list()
	if err != nil {
		return err
	}
	for _, ref := range opts.Boxes {
		if _, err := box.FindCgroupBoxes(all, []string{ref}); err != nil && strings.HasPrefix(err.Error(), "no running box") {
			return box.ExplainNoCgroup(st, ref)
		}
	}
	if len(all) == 0 {
		// No box has a cgroup: where none can be made, say so once.
		if err := box.CgroupsUnusable(); err != nil {
			return err
		}
	}
	return run(ctx, f.IOStreams.Out, f.IOStreams.OutTTY, list, opts)
}

type lister func() ([]box.CgroupBox, error)

func run(ctx context.Context, out io.Writer, tty bool, list lister, opts *Options) error {
	boxes, err := pick(list, opts.Boxes)
	if err != nil {
		return err
	}
	prev := sample(boxes)
	wait := opts.Interval
	if opts.NoStream {
		wait = min(wait, 500*time.Millisecond) // CPU % needs two samples
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if !opts.NoStream {
			if boxes, err = pick(list, opts.Boxes); err != nil {
				if len(opts.Boxes) > 0 {
					return nil // the named boxes stopped
				}
				return err
			}
		}
		cur := sample(boxes)
		rows := rowsOf(boxes, prev, cur)
		if err := render(out, rows, opts.JSON, tty && !opts.NoStream); err != nil {
			return err
		}
		if opts.NoStream {
			return nil
		}
		prev = cur
	}
}

func pick(list lister, refs []string) ([]box.CgroupBox, error) {
	all, err := list()
	if err != nil || len(refs) == 0 {
		return all, err
	}
	return box.FindCgroupBoxes(all, refs)
}

type point struct {
	at    time.Time
	stats cgroup.Stats
	ok    bool
}

func sample(boxes []box.CgroupBox) map[string]point {
	m := make(map[string]point, len(boxes))
	for _, b := range boxes {
		s, err := b.Box.Stat()
		m[b.ID] = point{at: time.Now(), stats: s, ok: err == nil}
	}
	return m
}

func rowsOf(boxes []box.CgroupBox, prev, cur map[string]point) []Row {
	rows := []Row{}
	for _, b := range boxes {
		c := cur[b.ID]
		if !c.ok {
			continue // stopped between listing and sampling
		}
		r := Row{ID: b.ID, Name: b.Name, Cgroup: b.Box.Path, Stats: c.stats}
		if p, ok := prev[b.ID]; ok && p.ok {
			r.CPUPercent = cpuPercent(p.stats.CPU.UsageUsec, c.stats.CPU.UsageUsec, c.at.Sub(p.at))
		}
		rows = append(rows, r)
	}
	return rows
}

// cpuPercent is the CPU time used between two samples, in percent of one
// CPU over the wall time between them.
func cpuPercent(before, after uint64, wall time.Duration) float64 {
	if after < before || wall <= 0 {
		return 0
	}
	return float64(after-before) / float64(wall.Microseconds()) * 100
}

func render(out io.Writer, rows []Row, asJSON, redraw bool) error {
	if asJSON {
		b, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	if redraw {
		fmt.Fprint(out, "\x1b[H\x1b[2J")
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tCPU %\tMEM USAGE / LIMIT\tMEM %\tPIDS")
	for _, r := range rows {
		name := r.Name
		if name == "" {
			name = "-"
		}
		mem, memPct := cgroup.FormatSize(int64(r.Memory.Current))+" / ", "-"
		if r.Memory.Limit != nil {
			mem += cgroup.FormatSize(int64(*r.Memory.Limit))
			memPct = fmt.Sprintf("%.1f%%", float64(r.Memory.Current)/float64(*r.Memory.Limit)*100)
		} else {
			mem += "unlimited"
		}
		pids := strconv.FormatUint(r.Pids.Current, 10)
		if r.Pids.Limit != nil {
			pids += " / " + strconv.FormatUint(*r.Pids.Limit, 10)
		}
		cpu := fmt.Sprintf("%.1f%%", r.CPUPercent)
		if r.CPU.Limit != nil {
			cpu += fmt.Sprintf(" (max %s)", strconv.FormatFloat(*r.CPU.Limit*100, 'f', -1, 64)+"%")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, r.ID[:min(12, len(r.ID))], cpu, mem, memPct, pids)
	}
	return tw.Flush()
}
