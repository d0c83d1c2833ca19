package runtime

import (
	"fmt"
	"path/filepath"
	"strings"
)

// validatePaths checks the paths of a spec read back from disk or a pipe
// (spec.json is a file in the user's store, so it is input like any
// other): every host path the init mounts or writes under is absolute and
// has no ".." element, the id is a plain name, and a spec laid out like a
// store's (ContainerDir in a "containers" directory) takes its layers from
// that store's layers/ only, by layer id.
func (s *Spec) validatePaths() error {
	if !plainID(s.ID) {
		return fmt.Errorf("box spec: id %q is not 12 to 64 lowercase letters and digits", s.ID)
	}
	if err := specPath("container directory", s.ContainerDir); err != nil {
		return err
	}
	store := ""
	if filepath.Base(filepath.Dir(s.ContainerDir)) == "containers" {
		if filepath.Base(s.ContainerDir) != s.ID {
			return fmt.Errorf("box spec: container directory %q is not the directory of box %s", s.ContainerDir, s.ID)
		}
		store = filepath.Dir(filepath.Dir(s.ContainerDir))
	}
	for _, l := range s.Lowers {
		if err := specPath("layer directory", l); err != nil {
			return err
		}
		if store != "" && (filepath.Dir(l) != filepath.Join(store, "layers") || !hex64(filepath.Base(l))) {
			return fmt.Errorf("box spec: layer directory %q is not a layer of the store %s", l, store)
		}
	}
	for _, m := range s.Mounts {
		if m.Tmpfs && m.Source != "" {
			return fmt.Errorf("box spec: tmpfs mount on %q has a source", m.Target)
		}
		if err := specPath("mount source", m.Source); err != nil && !m.Tmpfs {
			return err
		}
		if err := specPath("mount target", m.Target); err != nil {
			return err
		}
	}
	return nil
}

// specPath accepts absolute paths without ".." elements.
func specPath(what, p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("box spec: %s %q is not an absolute path", what, p)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return fmt.Errorf("box spec: %s %q has a \"..\" element", what, p)
		}
	}
	return nil
}

func plainID(id string) bool {
	if len(id) < 12 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func hex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
