package prestart

import "syscall"

const magic = "devbox-prestart-1"

// maxRecipe bounds a recipe file (a replay record holds an environment and
// a spec).
const maxRecipe = 1 << 20

// Encode serialises r: NUL-terminated key and value pairs after a magic
// line (arguments and environment cannot contain NUL).
func (r Recipe) Encode() []byte {
	var b []byte
	add := func(k, v string) { b = append(append(append(append(b, k...), 0), v...), 0) }
	b = append(b, magic+"\n"...)
	for _, s := range r.Prefix {
		add("prefix", s)
	}
	add("tty", r.TTY)
	add("exe", r.Exe)
	for _, s := range r.Args {
		add("arg", s)
	}
	for _, s := range r.Env {
		add("env", s)
	}
	add("flags", hex64(uint64(r.Flags)))
	if r.Setpgid {
		add("setpgid", "1")
	}
	for _, s := range r.Kinds {
		add("fd", s)
	}
	for _, s := range r.UIDMap {
		add("uidmap", s)
	}
	for _, s := range r.GIDMap {
		add("gidmap", s)
	}
	if p := r.Replay; p != nil {
		for _, s := range p.Argv {
			add("argv", s)
		}
		for _, s := range p.Environ {
			add("environ", s)
		}
		add("cwd", p.Cwd)
		add("spec", string(p.Spec))
		add("boxdir", p.BoxDir)
		for _, s := range p.Guards {
			add("guard", s)
		}
		add("cgroup", p.Cgroup)
		if p.HelperExe != "" {
			add("hexe", p.HelperExe)
			for _, a := range p.HelperArgs {
				add("harg", a)
			}
			add("hopts", string(p.HelperOptions))
			add("rundir", p.RunDir)
		}
	}
	return b
}

// Decode parses what Encode wrote.
func Decode(b []byte) (Recipe, bool) {
	var r Recipe
	if len(b) < len(magic)+1 || string(b[:len(magic)+1]) != magic+"\n" {
		return r, false
	}
	b = b[len(magic)+1:]
	next := func() (string, bool) {
		for i, c := range b {
			if c == 0 {
				s := string(b[:i])
				b = b[i+1:]
				return s, true
			}
		}
		return "", false
	}
	for len(b) > 0 {
		k, ok1 := next()
		v, ok2 := next()
		if !ok1 || !ok2 {
			return r, false
		}
		switch k {
		case "prefix":
			r.Prefix = append(r.Prefix, v)
		case "tty":
			r.TTY = v
		case "exe":
			r.Exe = v
		case "arg":
			r.Args = append(r.Args, v)
		case "env":
			r.Env = append(r.Env, v)
		case "flags":
			var f uintptr
			for _, c := range []byte(v) {
				switch {
				case c >= '0' && c <= '9':
					f = f<<4 | uintptr(c-'0')
				case c >= 'a' && c <= 'f':
					f = f<<4 | uintptr(c-'a'+10)
				default:
					return r, false
				}
			}
			r.Flags = f
		case "setpgid":
			r.Setpgid = v == "1"
		case "fd":
			if v != PipeToTarget && v != PipeFromTarget && v != SocketToTarget {
				return r, false
			}
			r.Kinds = append(r.Kinds, v)
		case "uidmap":
			r.UIDMap = append(r.UIDMap, v)
		case "gidmap":
			r.GIDMap = append(r.GIDMap, v)
		case "argv", "environ", "cwd", "spec", "boxdir", "guard", "cgroup", "hexe", "harg", "hopts", "rundir":
			if r.Replay == nil {
				r.Replay = &Replay{}
			}
			p := r.Replay
			switch k {
			case "argv":
				p.Argv = append(p.Argv, v)
			case "environ":
				p.Environ = append(p.Environ, v)
			case "cwd":
				p.Cwd = v
			case "spec":
				p.Spec = []byte(v)
			case "boxdir":
				p.BoxDir = v
			case "guard":
				p.Guards = append(p.Guards, v)
			case "cgroup":
				p.Cgroup = v
			case "hexe":
				p.HelperExe = v
			case "harg":
				p.HelperArgs = append(p.HelperArgs, v)
			case "hopts":
				p.HelperOptions = []byte(v)
			case "rundir":
				p.RunDir = v
			}
		default:
			return r, false
		}
	}
	ok := r.Exe != "" && len(r.Args) > 0 && len(r.Prefix) > 0 && r.Exe[0] == '/' &&
		validMap(r.UIDMap) && validMap(r.GIDMap) && (r.UIDMap[0] == "-") == (r.GIDMap[0] == "-")
	return r, ok
}

// validMap: a helper's absolute path and its arguments, or "-" and the one
// line a single-id map has.
func validMap(m []string) bool {
	if len(m) == 0 || m[0] == "" {
		return false
	}
	if m[0] == "-" {
		return len(m) == 2
	}
	return m[0][0] == '/'
}

// readRecipe reads a recipe the calling user wrote and nobody else can
// change.
func readRecipe(path string) (Recipe, bool) {
	var st syscall.Stat_t
	if syscall.Lstat(path, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG ||
		int(st.Uid) != syscall.Getuid() || st.Mode&0o022 != 0 || st.Size > maxRecipe {
		return Recipe{}, false
	}
	b, ok := readFile(path, maxRecipe)
	if !ok {
		return Recipe{}, false
	}
	return Decode(b)
}

// Save writes r for the next run with the same prefix, atomically, into
// Dir(runtimeDir).
func Save(runtimeDir string, r Recipe) error {
	r.Replay = nil
	return save(runtimeDir, Name(r.Prefix), r)
}

func save(runtimeDir, file string, r Recipe) error {
	dir := Dir(runtimeDir)
	if err := syscall.Mkdir(dir, 0o700); err != nil && err != syscall.EEXIST {
		return err
	}
	name := dir + "/" + file
	tmp := name + "." + randomID()
	fd, err := syscall.Open(tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	b := r.Encode()
	for len(b) > 0 && err == nil {
		var n int
		n, err = syscall.Write(fd, b)
		if err == syscall.EINTR {
			err = nil
			continue
		}
		b = b[n:]
	}
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = syscall.Rename(tmp, name)
	}
	if err != nil {
		syscall.Unlink(tmp)
	}
	return err
}
