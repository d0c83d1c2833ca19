package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// ShellQuote quotes s for a POSIX shell: in single quotes, each single
// quote in s closed, escaped with a backslash and reopened.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func checkText(what, s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q has a control character", what, s)
		}
	}
	return nil
}

// LaunchKey marks the launcher line devbox's `launch` reads.
const LaunchKey = "X-Devbox-Launch"

// Launch is what a launcher runs: Bin in box Box of store Store.
type Launch struct {
	Store string `json:"store,omitempty"`
	Box   string `json:"box"`
	Bin   string `json:"bin"`
}

// maxShebang bounds the interpreter line the kernel reads (128 bytes
// before Linux 5.1).
const maxShebang = 127

// Launcher renders the launcher of binary bin (a path in the box) of box
// boxName: it runs the binary in the box through devbox (exe, on store)
// with the caller's arguments; devbox exec passes the working directory,
// stdio and exit code. When exe can be an interpreter line (an absolute
// path without blanks, short enough), the kernel starts `exe launch FILE
// ARG...` itself, which reads the LaunchKey line: no shell in between.
// Otherwise, and for `sh FILE`, /bin/sh runs its last line, the same
// command.
func Launcher(exe, store, boxName, boxID, bin string) (string, error) {
	for _, s := range []string{exe, store, boxName, bin} {
		if err := checkText("path", s); err != nil {
			return "", err
		}
	}
	dq := []string{ShellQuote(exe)}
	if store != "" {
		dq = append(dq, "'--store'", ShellQuote(store))
	}
	l, err := json.Marshal(Launch{Store: store, Box: boxName, Bin: bin})
	if err != nil {
		return "", err
	}
	interp := "#!/bin/sh"
	if path.IsAbs(exe) && !strings.ContainsAny(exe, " \t") && len(exe)+len("#! launch") <= maxShebang {
		interp = "#!" + exe + " launch"
	}
	return interp + "\n" +
		"# Runs " + bin + " in devbox box " + boxName + " (devbox unexport " + boxName + " --bin " + path.Base(bin) + " removes this file).\n" +
		"# " + markKey + "=" + boxID + "\n" +
		"# " + LaunchKey + "=" + string(l) + "\n" +
		"exec " + strings.Join(dq, " ") + " exec " + ShellQuote(boxName) + " -- " + ShellQuote(bin) + ` "$@"` + "\n", nil
}

// ReadLaunch reads what launcher file p runs (its LaunchKey line).
func ReadLaunch(p string) (Launch, error) {
	var l Launch
	f, err := os.Open(p)
	if err != nil {
		return l, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return l, fmt.Errorf("%s is not a devbox launcher", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return l, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(line, "# "+LaunchKey+"=")
		if !ok {
			continue
		}
		if err := json.Unmarshal([]byte(v), &l); err != nil {
			return l, fmt.Errorf("%s: %w", p, err)
		}
		if l.Box == "" || !path.IsAbs(l.Bin) || l.Store != "" && !path.IsAbs(l.Store) {
			return l, fmt.Errorf("%s: not a devbox launcher", p)
		}
		return l, nil
	}
	return l, fmt.Errorf("%s is not a devbox launcher (no %s line)", p, LaunchKey)
}

// ParseExecStart splits a systemd unit's ExecStart value into argv: its
// prefixes (-, @, :, +, !) are dropped, double- and single-quoted words
// and backslash escapes are honoured. Specifiers (%) and variables ($)
// cannot be carried into the box and are refused.
func ParseExecStart(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	v = strings.TrimLeft(v, "-@:+!")
	if err := checkText("ExecStart", v); err != nil {
		return nil, err
	}
	if strings.ContainsAny(v, "%$") {
		return nil, errors.New("ExecStart uses specifiers or variables, which devbox cannot carry into the box")
	}
	var args []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, in = c, true
		case c == '\\':
			if i+1 >= len(v) {
				return nil, errors.New("ExecStart ends in a backslash")
			}
			i++
			cur.WriteByte(v[i])
			in = true
		case quote == 0 && (c == ' ' || c == '\t'):
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		case quote == 0 && c == ';':
			return nil, errors.New("ExecStart runs more than one command")
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("ExecStart has an unterminated quote")
	}
	if in {
		args = append(args, cur.String())
	}
	if len(args) == 0 || !path.IsAbs(args[0]) {
		return nil, errors.New("ExecStart names no absolute program")
	}
	return args, nil
}

// systemdQuote quotes one argument for a unit file's Exec line.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`)
	return `"` + r.Replace(s) + `"`
}

// Unit renders the systemd user unit that runs argv (from the box's unit
// unitName) in box boxName through devbox (the command line devbox).
func Unit(devbox []string, boxName, boxID, unitName, description string, argv []string) (string, error) {
	all := append(append(append([]string{}, devbox...), "exec", boxName, "--"), argv...)
	var q []string
	for _, a := range all {
		if err := checkText("argument", a); err != nil {
			return "", err
		}
		q = append(q, systemdQuote(a))
	}
	if err := checkText("description", description); err != nil {
		description = ""
	}
	if description == "" {
		description = unitName
	}
	description = strings.ReplaceAll(description, "%", "%%")
	return "# " + markKey + "=" + boxID + "\n" +
		"[Unit]\n" +
		"Description=" + description + " (devbox box " + boxName + ")\n\n" +
		"[Service]\n" +
		"ExecStart=" + strings.Join(q, " ") + "\n" +
		"Restart=on-failure\n\n" +
		"[Install]\n" +
		"WantedBy=default.target\n", nil
}

// unitExec reads a unit file's Description and first ExecStart.
func unitExec(b []byte) (desc, exec string) {
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' {
			section = t
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case section == "[Unit]" && k == "Description" && desc == "":
			desc = v
		case section == "[Service]" && k == "ExecStart" && exec == "" && v != "":
			exec = v
		}
	}
	return desc, exec
}
