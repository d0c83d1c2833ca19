package prestart

import (
	"errors"
	"strconv"
	"syscall"
)

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
	add("flags", strconv.FormatUint(uint64(r.Flags), 16))
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
	if r.Join != "" {
		add("join", r.Join)
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
		if p.CgroupBase != "" {
			add("cgbase", p.CgroupBase)
		}
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
	// rp is the replay part, made on its first key.
	rp := func() *Replay {
		if r.Replay == nil {
			r.Replay = &Replay{}
		}
		return r.Replay
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
			f, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return r, false
			}
			r.Flags = uintptr(f)
		case "setpgid":
			r.Setpgid = v == "1"
		case "fd":
			if v != PipeToTarget && v != PipeFromTarget && v != SocketToTarget {
				return r, false
			}
			r.Kinds = append(r.Kinds, v)
		case "uidmap":
			r.UIDMap = append(r.UIDMap, v)
		case "join":
			r.Join = v
		case "gidmap":
			r.GIDMap = append(r.GIDMap, v)
		case "argv":
			rp().Argv = append(rp().Argv, v)
		case "environ":
			rp().Environ = append(rp().Environ, v)
		case "cwd":
			rp().Cwd = v
		case "spec":
			rp().Spec = []byte(v)
		case "boxdir":
			rp().BoxDir = v
		case "guard":
			rp().Guards = append(rp().Guards, v)
		case "cgroup":
			rp().Cgroup = v
		case "cgbase":
			rp().CgroupBase = v
		case "hexe":
			rp().HelperExe = v
		case "harg":
			rp().HelperArgs = append(rp().HelperArgs, v)
		case "hopts":
			rp().HelperOptions = []byte(v)
		case "rundir":
			rp().RunDir = v
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

// errEnvValues refuses to record a start whose command line may carry a
// value of the box's environment.
var errEnvValues = errors.New("the command line sets box environment variables (-e/--env): not recorded")

// save writes r as file of Dir(runtimeDir). No value of an environment
// variable reaches the file: a command line that may set one for the box
// (-e/--env, which also puts the value into the spec) is not recorded at
// all, and a replay's key environment is kept as a digest (EnvDigest).
func save(runtimeDir, file string, r Recipe) error {
	if HasEnvFlag(r.Prefix) || r.Replay != nil && HasEnvFlag(r.Replay.Argv) {
		return errEnvValues
	}
	if p := r.Replay; p != nil {
		q := *p
		q.Environ = []string{keyDigest(p.Environ)}
		r.Replay = &q
	}
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
