package export

import (
	"errors"
	"fmt"
	"github.com/devbox-dev/devbox/internal/self"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	rbox "github.com/devbox-dev/devbox/runtime/box"
)

// Dirs are where exports go on the host.
type Dirs struct {
	Apps  string // $XDG_DATA_HOME/applications
	Icons string // $XDG_DATA_HOME/icons/devbox
	Bin   string // ~/.local/bin (or --dir)
	Units string // $XDG_CONFIG_HOME/systemd/user
	// UserManager is the socket of the user's systemd manager, when one
	// runs ($XDG_RUNTIME_DIR/systemd/private); empty when none does.
	UserManager string
}

// DefaultDirs computes Dirs from the environment (getenv) and home.
func DefaultDirs(getenv func(string) string, home string) Dirs {
	abs := func(k, def string) string {
		if v := getenv(k); v != "" && filepath.IsAbs(v) {
			return filepath.Clean(v)
		}
		return def
	}
	data := abs("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))
	cfg := abs("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	d := Dirs{
		Apps:  filepath.Join(data, "applications"),
		Icons: filepath.Join(data, "icons", "devbox"),
		Bin:   filepath.Join(home, ".local", "bin"),
		Units: filepath.Join(cfg, "systemd", "user"),
	}
	if rt := getenv("XDG_RUNTIME_DIR"); rt != "" && filepath.IsAbs(rt) {
		p := filepath.Join(rt, "systemd", "private")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			d.UserManager = p
		}
	}
	return d
}

// Box is one box to export from.
type Box struct {
	ID, Name string
	Dir      string   // the box's directory in the store (exports.json)
	Layers   []string // its upper directory, then its image layers, top-most first
	Exe      string   // the devbox program the exports run
	Store    string   // the store the box is in (given to that program)
	Dirs     Dirs
	// Reader reads the box's files (Read in a stage of the box's user
	// namespace, from the CLI); nil reads them in this process.
	Reader func(ReadRequest) (ReadResult, error)
	// Warn reports what an export did without (an icon); nil: nothing.
	Warn func(msg string)
}

// devbox is the command line that runs devbox on this box's store.
func (b *Box) devbox() []string {
	if b.Store == "" {
		return []string{b.Exe}
	}
	return []string{b.Exe, "--store", b.Store}
}

// read returns the first candidate path in the box that exists (as
// ReadRequest says) and its content.
func (b *Box) read(cands []string, max int64, exec bool) (string, []byte, error) {
	req := ReadRequest{Layers: b.Layers, Candidates: cands, Max: max, Exec: exec}
	var res ReadResult
	if b.Reader != nil {
		var err error
		if res, err = b.Reader(req); err != nil {
			return "", nil, err
		}
	} else {
		res = Read(req)
	}
	if res.Path == "" {
		if res.Error == "" {
			res.Error = "not found"
		}
		return "", nil, errors.New(res.Error)
	}
	return res.Path, res.Data, nil
}

// ForRecord describes box record r (its directory dir, its image layers
// under layersDir) as exports of this devbox program see it.
func ForRecord(r *rbox.Record, dir, storeRoot, layersDir string) (*Box, error) {
	exe, err := self.Path()
	if err != nil {
		return nil, fmt.Errorf("finding devbox's own path: %w", err)
	}
	home, _ := os.UserHomeDir()
	b := &Box{ID: r.ID, Name: r.Name, Dir: dir, Exe: exe, Store: storeRoot,
		Dirs: DefaultDirs(os.Getenv, home), Layers: []string{filepath.Join(dir, "upper")}}
	for _, c := range r.Lowers {
		b.Layers = append(b.Layers, filepath.Join(layersDir, c))
	}
	return b, nil
}

// validName is a name devbox derives a host file name from.
func validName(s string) bool {
	return validToken(s, "._+-") && s[0] != '.' && s[0] != '-'
}

func (b *Box) record(it Item) error {
	items, err := Load(b.Dir)
	if err != nil {
		return err
	}
	out := items[:0]
	for _, o := range items {
		if o.Kind != it.Kind || o.Path != it.Path {
			out = append(out, o)
		}
	}
	return save(b.Dir, append(out, it))
}

// appDirs are where a box's desktop files are looked for.
var appDirs = []string{"/usr/share/applications", "/usr/local/share/applications", "/var/lib/flatpak/exports/share/applications"}

// App exports desktop file app (its id, with or without .desktop).
func (b *Box) App(app string) (Item, error) {
	app = strings.TrimSuffix(app, ".desktop")
	if !validName(app) {
		return Item{}, fmt.Errorf("invalid application name %q (hint: the name of a .desktop file in the box's /usr/share/applications, e.g. org.gnome.TextEditor)", app)
	}
	var cands []string
	for _, d := range appDirs {
		cands = append(cands, d+"/"+app+".desktop")
	}
	src, data, err := b.read(cands, 256<<10, false)
	if err != nil {
		return Item{}, fmt.Errorf("box %s has no application %s (hint: devbox exec %s -- ls /usr/share/applications)", b.Name, app, b.Name)
	}
	e, err := ParseDesktop(data)
	if err != nil {
		return Item{}, fmt.Errorf("%s in box %s: %w", src, b.Name, err)
	}
	it := Item{Kind: KindApp, Name: app, Source: src,
		Path: filepath.Join(b.Dirs.Apps, "devbox-"+b.Name+"-"+app+".desktop")}
	if e.Icon != "" {
		if ip, err := b.copyIcon(app, e.Icon); err == nil {
			it.Icon = ip
		} else {
			if b.Warn != nil {
				b.Warn(fmt.Sprintf("no icon for %s: %v", app, err))
			}
		}
	}
	content, err := Desktop(e, b.devbox(), b.Name, b.ID, it.Icon)
	if err != nil {
		return Item{}, fmt.Errorf("%s in box %s: %w", src, b.Name, err)
	}
	if err := place(it.Path, b.ID, []byte(content), 0o644); err != nil {
		return Item{}, err
	}
	if err := b.record(it); err != nil {
		return Item{}, err
	}
	b.refreshApps()
	return it, nil
}

// refreshApps updates the applications directory's MIME cache, when the
// host has the tool for it.
func (b *Box) refreshApps() {
	if _, err := exec.LookPath("update-desktop-database"); err == nil {
		_ = exec.Command("update-desktop-database", b.Dirs.Apps).Run()
	}
}

var iconSizes = []string{"scalable", "512x512", "256x256", "192x192", "128x128", "96x96", "64x64", "48x48", "32x32"}

// iconCandidates are the paths in the box where a themed icon name may be.
func iconCandidates(name string) []string {
	var out []string
	for _, base := range []string{"/usr/share/icons/hicolor", "/usr/local/share/icons/hicolor"} {
		for _, s := range iconSizes {
			for _, ext := range []string{".svg", ".png"} {
				out = append(out, base+"/"+s+"/apps/"+name+ext)
			}
		}
	}
	for _, ext := range []string{".svg", ".png", ".xpm"} {
		out = append(out, "/usr/share/pixmaps/"+name+ext)
	}
	return out
}

// iconKind says which image format b is in by its first bytes, "" for
// none devbox copies.
func iconKind(b []byte) string {
	switch {
	case len(b) > 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return ".png"
	case strings.HasPrefix(string(b), "/* XPM */"):
		return ".xpm"
	case strings.Contains(string(b[:min(len(b), 4096)]), "<svg"):
		return ".svg"
	}
	return ""
}

// copyIcon copies the box's icon (a themed name or an absolute path in
// the box) into the icons directory and returns its host path.
func (b *Box) copyIcon(app, icon string) (string, error) {
	var cands []string
	switch {
	case path.IsAbs(icon):
		cands = []string{path.Clean(icon)}
	case validName(icon) && !strings.Contains(icon, "/"):
		cands = iconCandidates(icon)
	default:
		return "", fmt.Errorf("unusable icon name %q", icon)
	}
	for len(cands) > 0 {
		src, data, err := b.read(cands, 4<<20, false)
		if err != nil {
			break
		}
		for len(cands) > 0 && cands[0] != src {
			cands = cands[1:]
		}
		cands = cands[1:]
		ext := iconKind(data)
		if ext == "" {
			continue // not an image devbox copies: the next candidate
		}
		dst := filepath.Join(b.Dirs.Icons, b.Name+"-"+app+ext)
		if err := os.MkdirAll(b.Dirs.Icons, 0o755); err != nil {
			return "", err
		}
		if err := writeAtomic(dst, data, 0o644); err != nil {
			return "", err
		}
		return dst, nil
	}
	return "", fmt.Errorf("icon %s not found in the box", icon)
}

// binPath is the default PATH searched in the box for a bare --bin name.
var binPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// Bin exports binary bin (a path in the box, or a name looked up in the
// box's PATH) as a launcher in dir (empty: b.Dirs.Bin).
func (b *Box) Bin(bin, dir string) (Item, error) {
	if dir == "" {
		dir = b.Dirs.Bin
	}
	if !filepath.IsAbs(dir) {
		return Item{}, fmt.Errorf("--dir %q is not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	if err := checkText("path", bin); err != nil || bin == "" {
		return Item{}, fmt.Errorf("invalid --bin %q", bin)
	}
	var cands []string
	if path.IsAbs(bin) {
		cands = []string{path.Clean(bin)}
	} else if validName(bin) {
		for _, d := range binPath {
			cands = append(cands, d+"/"+bin)
		}
	}
	src, _, err := b.read(cands, 0, true)
	if err != nil || src == "" {
		return Item{}, fmt.Errorf("box %s has no executable %s (hint: devbox exec %s -- sh -c 'command -v %s')", b.Name, bin, b.Name, path.Base(bin))
	}
	name := path.Base(src)
	if !validName(name) {
		return Item{}, fmt.Errorf("cannot name a launcher after %q", name)
	}
	content, err := Launcher(b.Exe, b.Store, b.Name, b.ID, src)
	if err != nil {
		return Item{}, err
	}
	it := Item{Kind: KindBin, Name: name, Source: src, Path: filepath.Join(dir, name)}
	if err := place(it.Path, b.ID, []byte(content), 0o755); err != nil {
		return Item{}, err
	}
	return it, b.record(it)
}

// ErrNoUserManager says --service has no systemd user manager to go to.
var ErrNoUserManager = errors.New("no systemd user manager runs for you here (no $XDG_RUNTIME_DIR/systemd/private), so a service cannot be exported (hint: run it with devbox exec NAME -- COMMAND, or log in to a systemd session)")

var unitDirs = []string{"/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/user", "/etc/systemd/user"}

// Service exports the box's systemd unit unit as a user unit on the host
// that runs its ExecStart in the box.
func (b *Box) Service(unit string) (Item, error) {
	if b.Dirs.UserManager == "" {
		return Item{}, ErrNoUserManager
	}
	unit = strings.TrimSuffix(unit, ".service")
	if !validName(unit) || strings.Contains(unit, "@") {
		return Item{}, fmt.Errorf("invalid unit name %q", unit)
	}
	var cands []string
	for _, d := range unitDirs {
		cands = append(cands, d+"/"+unit+".service")
	}
	src, data, err := b.read(cands, 256<<10, false)
	if err != nil {
		return Item{}, fmt.Errorf("box %s has no unit %s.service", b.Name, unit)
	}
	desc, ex := unitExec(data)
	argv, err := ParseExecStart(ex)
	if err != nil {
		return Item{}, fmt.Errorf("%s in box %s: %w", src, b.Name, err)
	}
	content, err := Unit(b.devbox(), b.Name, b.ID, unit, desc, argv)
	if err != nil {
		return Item{}, err
	}
	it := Item{Kind: KindService, Name: unit, Source: src, Path: filepath.Join(b.Dirs.Units, "devbox-"+b.Name+"-"+unit+".service")}
	if err := place(it.Path, b.ID, []byte(content), 0o644); err != nil {
		return Item{}, err
	}
	if err := b.record(it); err != nil {
		return Item{}, err
	}
	_ = exec.Command("systemctl", "--user", "daemon-reload").Run()
	return it, nil
}

// Unexport removes the exports of kind named name (every export when
// kind is empty) and returns what it removed.
func (b *Box) Unexport(kind, name string) ([]Item, error) {
	items, err := Load(b.Dir)
	if err != nil {
		return nil, err
	}
	var removed, kept []Item
	var errs []error
	for _, it := range items {
		match := kind == "" || it.Kind == kind && (it.Name == name || path.Base(it.Source) == name || it.Name+".desktop" == name)
		if !match {
			kept = append(kept, it)
			continue
		}
		if err := b.removeItem(it); err != nil {
			errs = append(errs, err)
		}
		removed = append(removed, it)
	}
	for _, it := range removed {
		if it.Kind == KindApp {
			b.refreshApps()
			break
		}
	}
	if kind != "" && len(removed) == 0 {
		return nil, fmt.Errorf("box %s has no exported %s %s (hint: devbox export %s --list)", b.Name, kind, name, b.Name)
	}
	switch {
	case len(removed) == 0:
	case len(kept) == 0:
		_ = os.Remove(filepath.Join(b.Dir, manifestName))
	default:
		if err := save(b.Dir, kept); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

func (b *Box) removeItem(it Item) error {
	if !filepath.IsAbs(it.Path) || filepath.Clean(it.Path) != it.Path {
		return fmt.Errorf("left %q: not a path devbox wrote", it.Path)
	}
	switch it.Kind {
	case KindApp:
		if filepath.Dir(it.Path) != b.Dirs.Apps {
			return fmt.Errorf("left %s: not in %s", it.Path, b.Dirs.Apps)
		}
	case KindService:
		if filepath.Dir(it.Path) != b.Dirs.Units {
			return fmt.Errorf("left %s: not in %s", it.Path, b.Dirs.Units)
		}
		defer exec.Command("systemctl", "--user", "daemon-reload").Run()
	case KindBin:
	default:
		return fmt.Errorf("left %s: unknown kind %q", it.Path, it.Kind)
	}
	err := removeMarked(it.Path, b.ID)
	if it.Kind == KindApp {
		err = errors.Join(err, removeIcon(it.Icon, b.Dirs.Icons, b.Name+"-"))
	}
	return err
}
