package box

import (
	"errors"

	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// EnterOptions say which box a session goes to (devbox shell, exec).
type EnterOptions struct {
	CreateOptions
	// MayCreate lets a missing box NAME be created (devbox shell): from
	// --image, or NAME as an alias.
	MayCreate bool
	// Reprovision runs first-start provisioning again.
	Reprovision bool
	// Changed are the create flags given for an existing box, and Given
	// each as it would be written again (for the hint): flags that ask for
	// something else than the box has are refused (CheckExisting).
	Changed []string
	Given   map[string][]string
}

// Enter returns the record of the box a session goes to: found, or
// created (o.MayCreate), and provisioned when it is due (which starts
// it). The session itself is the caller's: a running box answers at once,
// and Start starts one that does not.
func (m *Manager) Enter(o EnterOptions) (*rbox.Record, error) {
	r, err := m.bs.Get(o.Name)
	if errors.Is(err, rbox.ErrNotFound) && o.MayCreate {
		tab, terr := m.aliases()
		if terr != nil {
			return nil, terr
		}
		if _, isAlias := tab.Lookup(o.Name); !isAlias && o.Image == "" {
			if rbox.IsBroken(err) {
				return nil, err // names the record that cannot be read
			}
			return nil, NotAliasError(tab, o.Name, "shell")
		}
		r, err = m.Create(o.CreateOptions)
		if errors.Is(err, ErrExists) {
			err = nil // created by a concurrent devbox shell
		}
	} else if err == nil && len(o.Changed) > 0 {
		err = m.CheckExisting(r, o.CreateOptions, o.Changed, o.Given)
	}
	if err != nil {
		return nil, err
	}
	want, err := m.wantsProvision(r, o.Reprovision)
	if err != nil {
		return nil, err
	}
	if want {
		if err := m.Start(r); err != nil {
			return nil, err
		}
		if r, err = m.Provision(r, o.Reprovision); err != nil {
			return nil, err
		}
	}
	return r, nil
}
