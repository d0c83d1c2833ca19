package boxfile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/devbox-dev/devbox/internal/safefile"
	"github.com/devbox-dev/devbox/network"
)

// HookTrust remembers the projects whose devcontainer.json or box file the
// user agreed to run: a repository's postCreateCommand or on_create hook
// runs as the user, in a dev box that shares the home, so devbox
// shell --devcontainer and devbox assemble ask first. What is trusted is
// one project (a directory, a box file) with one content of a box devbox
// makes of it (image, hooks, exports, env, volumes, ports: the Spec), so an
// edit of any of them, by a pull of the repository or by anyone else, asks
// again.
// Each trusted pair is a file in Dir, named by their digest.
type HookTrust struct {
	Dir string
}

// trustRecord is what a trust file holds (for the user who looks; only its
// name is the key).
type trustRecord struct {
	Project string `json:"project"`
	Spec    string `json:"spec"` // sha256 of the Spec's JSON
}

// trustKey names the trust of project with box s.
func trustKey(project string, s Spec) (string, trustRecord) {
	b, _ := json.Marshal(s) // strings, numbers and lists: it cannot fail
	sum := sha256.Sum256(b)
	rec := trustRecord{Project: filepath.Clean(project), Spec: hex.EncodeToString(sum[:])}
	k := sha256.Sum256([]byte(rec.Project + "\x00" + rec.Spec))
	return hex.EncodeToString(k[:]), rec
}

// NeedsTrust reports whether box s runs code of its file's on the host
// user's behalf, decides what the user's own commands run, or opens the
// user's machine to others: hooks (a devcontainer.json's
// postCreateCommand, a box file's on_create and on_start), exports, which
// put the box's commands on the user's PATH and in the desktop's menus,
// its environment (PATH, BASH_ENV, LD_PRELOAD and the like pick what the
// user's commands run in a box that shares the home), its mounts (a
// directory of the repository's over /usr/local/bin does too), and
// Exposed: ports published beyond loopback, and the host's network. The
// image and loopback ports are not counted: the image runs only what the
// user runs in it, and a port on 127.0.0.1 reaches only this machine.
func NeedsTrust(s Spec) bool {
	return len(s.OnCreate)+len(s.OnStart)+len(s.Bins)+len(s.Apps)+len(s.Env)+len(s.Volumes)+len(Exposed(s)) > 0
}

// Exposed lists, for the user to read, what box s opens: the host's
// network (the box shares its namespace, its local services and abstract
// sockets), and each published port that does not listen on loopback (or
// does not parse).
func Exposed(s Spec) []string {
	var l []string
	if s.Network == network.ModeHost {
		l = append(l, "network host (the box uses this machine's network and reaches its local services)")
	}
	for _, p := range s.Ports {
		ps, err := network.ParsePort(p)
		if a, aerr := netip.ParseAddr(ps.HostIP); err != nil || aerr != nil || !a.IsLoopback() {
			l = append(l, "port "+p+" (reachable from other machines)")
		}
	}
	return l
}

// Trusted reports whether the user trusted project with box s. The file is
// read as input (not through a link, a small regular file naming the same
// project and digest): anything else is not trust.
func (t HookTrust) Trusted(project string, s Spec) bool {
	key, want := trustKey(project, s)
	b, err := safefile.ReadFile(filepath.Join(t.Dir, key), 64<<10)
	if err != nil {
		return false
	}
	var got trustRecord
	return json.Unmarshal(b, &got) == nil && got == want
}

// Remember records that the user trusts project with box s.
func (t HookTrust) Remember(project string, s Spec) error {
	key, rec := trustKey(project, s)
	if err := os.MkdirAll(t.Dir, 0o700); err != nil {
		return fmt.Errorf("remembering the trust: %w", err)
	}
	b, _ := json.Marshal(rec)
	if err := safefile.WriteFile(filepath.Join(t.Dir, key), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("remembering the trust: %w", err)
	}
	return nil
}
