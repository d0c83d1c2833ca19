package box

import (
	"github.com/devbox-dev/devbox/internal/termsafe"
	"os"
	"path/filepath"
	"time"

	"github.com/devbox-dev/devbox/image/store"
	nethost "github.com/devbox-dev/devbox/network/host"
	"github.com/devbox-dev/devbox/provision"
	"github.com/devbox-dev/devbox/runtime/agent"
	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// Listing is one line of `devbox ls` and the body of `devbox inspect`.
type Listing struct {
	*rbox.Record
	State rbox.State `json:"state"`
	Dir   string     `json:"dir"`
	// Status is "running", "stopped" or "broken" (a record that cannot
	// be used; Problem says why, with the file and a hint).
	Status  string `json:"status"`
	Problem string `json:"problem,omitempty"`
	// Security says how the box's commands are confined (capabilities,
	// seccomp, no_new_privs; docs/security.md).
	Security string `json:"security,omitempty"`
	// Network is the running box's user-mode network: driver and
	// forwarded ports.
	Network *nethost.State `json:"network,omitempty"`
	// NoProvision and Provision come from the box's provision.json.
	NoProvision bool             `json:"noProvision,omitempty"`
	Provision   *provision.State `json:"provision,omitempty"`
	// Run is set while the box is a devbox run in progress: an ephemeral
	// one (ls --all; no record, its name is empty) or a kept one (--name,
	// --keep) whose command still runs. RunPID is that devbox's pid.
	Run    bool `json:"run,omitempty"`
	RunPID int  `json:"runPid,omitempty"`
}

// List returns a Listing of every box; with runs, also of the devbox runs
// in progress that are not boxes.
func (m *Manager) List(runs bool) ([]Listing, error) {
	recs, err := m.bs.List()
	if err != nil {
		return nil, err
	}
	out := []Listing{}
	for _, r := range recs {
		out = append(out, m.Describe(r))
	}
	if runs {
		out = append(out, m.ephemeralRuns(recs)...)
	}
	return out, nil
}

// Describe describes box r as it is now (ls, inspect).
func (m *Manager) Describe(r *rbox.Record) Listing {
	l := Listing{Record: r, Dir: m.bs.BoxDir(r.ID), Status: "stopped", NoProvision: r.NoProvision, Provision: r.Provision}
	rep, err := agent.Call(m.bs.SocketPath(r.ID), agent.Request{Type: agent.TypeStatus}, 2*time.Second)
	if err == nil {
		l.Status = "running"
		l.State = rbox.State{Running: true, Sessions: rep.Sessions, InitPID: m.bs.InitPID(r.ID), Socket: m.bs.SocketPath(r.ID)}
		if r.Problem == nil {
			l.Network = m.networkState(r)
		}
	} else if run, ok := m.LiveRun(r.ID); ok {
		// A kept run whose command still runs.
		l.Status, l.Run, l.RunPID = "running", true, run.PID
		l.State = rbox.State{Running: true}
		l.Network = m.networkState(r)
	}
	if r.Problem != nil {
		l.Status, l.Problem = "broken", r.Problem.Error()
	} else if sec, err := r.Security(userHome()); err == nil {
		l.Security = sec.Describe()
	}
	return l
}

// LiveRun returns the devbox run in progress of box id, if there is one.
func (m *Manager) LiveRun(id string) (store.LiveRun, bool) {
	if !m.st.HasRunLock(id) {
		return store.LiveRun{}, false // the common case: one lstat
	}
	for _, r := range m.st.LiveRuns() {
		if r.ID == id {
			return r, true
		}
	}
	return store.LiveRun{}, false
}

// ephemeralRuns lists the devbox runs in progress that are not boxes
// (no --name, no --keep).
func (m *Manager) ephemeralRuns(boxes []*rbox.Record) []Listing {
	known := map[string]bool{}
	for _, r := range boxes {
		known[r.ID] = true
	}
	var out []Listing
	for _, run := range m.st.LiveRuns() {
		if known[run.ID] {
			continue
		}
		if _, err := os.Lstat(filepath.Join(m.bs.BoxDir(run.ID), "box.json")); err == nil {
			continue // a kept run's record, written after List
		}
		r := &rbox.Record{ID: run.ID, Image: termsafe.Printable(run.Image)}
		l := Listing{Record: r, Dir: m.bs.BoxDir(run.ID), Status: "running", Run: true, RunPID: run.PID,
			State: rbox.State{Running: true}}
		l.Network = m.networkState(r)
		out = append(out, l)
	}
	return out
}
