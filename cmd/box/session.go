package box

import (
	dbox "github.com/devbox-dev/devbox/box"
	"github.com/devbox-dev/devbox/cmd/config"
	rbox "github.com/devbox-dev/devbox/runtime/box"
	"github.com/devbox-dev/devbox/runtime/session"
)

// errNotRunning says the box's agent does not answer.
var errNotRunning = session.ErrNotRunning

// sessionOpts say what to run in a box.
type sessionOpts = session.Options

// session runs one command in running box r and returns its exit code
// (runtime/session, which devbox's front uses too). A box that answers
// gets a session ticket first, so that the front serves the next session
// in it itself while r's record files stay as they are.
func (e *env) session(r *rbox.Record, o sessionOpts) (int, error) {
	c, err := session.Dial(e.bs.SocketPath(r.ID), r.Name)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	sb := r.SessionBox()
	if r.RecordFile != (session.FileID{}) {
		// Best effort: without a ticket the front hands the next
		// session to the CLI again.
		_ = session.Vouch(e.bs.RuntimeDir, session.Ticket{Store: e.st.Root, Name: r.Name, ID: r.ID,
			Dir: e.bs.BoxDir(r.ID), Record: r.RecordFile, Provision: r.ProvisionFile, Box: &sb})
		_ = noteCaller(e.bs.RuntimeDir)
	}
	ids := e.mgr.Mapping()
	req := session.NewRequest(sb, dbox.HostAccount(ids), ids.Single(), o)
	return session.Run(c, r.Name, req, e.f.IOStreams.ErrOut)
}

// noteCaller records for the front what a session takes from the
// configuration file (decoded from the content the record keeps) and the
// caller's identity, read afresh between two looks at the files it comes
// from (session.NoteCaller).
func noteCaller(base string) error {
	p := config.Path()
	return session.NoteCaller(base, p, func(content []byte, exists bool) (session.ConfigSeen, error) {
		if !exists {
			return session.ConfigSeen{}, nil // no file: the defaults
		}
		c, err := config.Decode(p, content)
		if err != nil {
			return session.ConfigSeen{}, err
		}
		return session.ConfigSeen{StoreRoot: c.Store.Root, ProvisionAuto: c.Provision.Auto}, nil
	}, dbox.CallerIdent)
}
