package boxfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/devbox-dev/devbox/internal/termsafe"
	"github.com/devbox-dev/devbox/runtime"
)

// Devcontainer fields devbox reads; every other field of a
// devcontainer.json is named as ignored.
var devcontainerFields = map[string]bool{
	"name": true, "image": true, "containerEnv": true, "remoteUser": true,
	"forwardPorts": true, "postCreateCommand": true, "mounts": true,
}

// FindDevcontainer returns the devcontainer.json of project directory dir
// (.devcontainer/devcontainer.json, else .devcontainer.json).
func FindDevcontainer(dir string) (string, error) {
	for _, p := range []string{filepath.Join(dir, ".devcontainer", "devcontainer.json"), filepath.Join(dir, ".devcontainer.json")} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no .devcontainer/devcontainer.json in %s (hint: run it in the project's directory, or --devcontainer=DIR)", dir)
}

// LoadDevcontainer reads devcontainer.json path, of the project in
// directory project, as one box; notes say which of its fields devbox
// ignored and how it read the others.
func LoadDevcontainer(path, project string) (Spec, []string, error) {
	b, err := readFile(path)
	if err != nil {
		return Spec{}, nil, err
	}
	return ParseDevcontainer(b, project, path)
}

// devcontainer is the subset devbox reads.
type devcontainer struct {
	Name              string            `json:"name"`
	Image             string            `json:"image"`
	ContainerEnv      map[string]string `json:"containerEnv"`
	RemoteUser        string            `json:"remoteUser"`
	ForwardPorts      []json.RawMessage `json:"forwardPorts"`
	PostCreateCommand json.RawMessage   `json:"postCreateCommand"`
	Mounts            []json.RawMessage `json:"mounts"`
}

// ParseDevcontainer decodes a devcontainer.json (JSON with comments and
// trailing commas) into a dev box named after the project directory.
func ParseDevcontainer(b []byte, project, name string) (Spec, []string, error) {
	clean := StripJSONC(b)
	var all map[string]json.RawMessage
	if err := json.Unmarshal(clean, &all); err != nil {
		return Spec{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	var d devcontainer
	if err := json.Unmarshal(clean, &d); err != nil {
		return Spec{}, nil, fmt.Errorf("%s: %w", name, err)
	}
	var notes, ignored []string
	for k := range all {
		if !devcontainerFields[k] {
			ignored = append(ignored, termsafe.Visible(k))
		}
	}
	sort.Strings(ignored)
	if len(ignored) > 0 {
		notes = append(notes, "ignored: "+strings.Join(ignored, ", "))
	}
	if d.Image == "" {
		return Spec{}, notes, fmt.Errorf("%s has no \"image\" (devbox does not build Dockerfiles or features; hint: build the image with podman build and set \"image\")", name)
	}
	expand := strings.NewReplacer("${localWorkspaceFolder}", project, "${localWorkspaceFolderBasename}", filepath.Base(project),
		"${containerWorkspaceFolder}", project)
	s := Spec{Name: boxName(project), Image: d.Image}
	for k, v := range d.ContainerEnv {
		s.Env = append(s.Env, k+"="+expand.Replace(v))
	}
	sort.Strings(s.Env)
	switch d.RemoteUser {
	case "root":
	case "":
		s.User = "user"
	default:
		s.User = "user"
		notes = append(notes, fmt.Sprintf("remoteUser %q: devbox sessions and postCreateCommand run as you", d.RemoteUser))
	}
	for _, p := range d.ForwardPorts {
		var n int
		if json.Unmarshal(p, &n) == nil && n > 0 && n < 65536 {
			s.Ports = append(s.Ports, strconv.Itoa(n)+":"+strconv.Itoa(n))
			continue
		}
		notes = append(notes, "forwardPorts "+termsafe.Visible(string(p))+": only port numbers are forwarded")
	}
	if cmd, ok := hookCommand(d.PostCreateCommand); ok {
		s.OnCreate = append(s.OnCreate, expand.Replace(cmd))
	} else if len(d.PostCreateCommand) > 0 {
		notes = append(notes, "postCreateCommand: only a string or an array is run")
	}
	for _, m := range d.Mounts {
		v, why := mountVolume(m, expand)
		if why != "" {
			notes = append(notes, "mounts "+termsafe.Visible(string(m))+": "+why)
			continue
		}
		s.Volumes = append(s.Volumes, v)
	}
	s.normalize()
	return s, notes, s.check()
}

// boxName makes a box name of a project directory's name.
func boxName(project string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(filepath.Base(project)) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-.")
	if runtime.ValidateName(n) != nil {
		n = "devcontainer"
	}
	return n
}

// hookCommand returns a postCreateCommand as a shell command line: a
// string as it is, an array quoted word by word.
func hookCommand(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, s != ""
	}
	var argv []string
	if json.Unmarshal(raw, &argv) == nil && len(argv) > 0 {
		q := make([]string, len(argv))
		for i, a := range argv {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		return strings.Join(q, " "), true
	}
	return "", false
}

// mountVolume turns a bind mount ("source=X,target=Y,type=bind[,readonly]"
// or the same as an object) into a volume; why says why not.
func mountVolume(raw json.RawMessage, expand *strings.Replacer) (string, string) {
	kv := map[string]string{}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		for _, part := range strings.Split(str, ",") {
			k, v, _ := strings.Cut(part, "=")
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	} else {
		var obj map[string]any
		if json.Unmarshal(raw, &obj) != nil {
			return "", "not a mount"
		}
		for k, v := range obj {
			kv[k] = fmt.Sprint(v)
		}
	}
	src, dst := kv["source"], kv["target"]
	if src == "" {
		src = kv["src"]
	}
	if dst == "" {
		dst = kv["destination"]
	}
	if dst == "" {
		dst = kv["dst"]
	}
	if t := kv["type"]; t != "" && t != "bind" {
		return "", "only bind mounts (a " + t + " is not)"
	}
	src = expand.Replace(src)
	if !filepath.IsAbs(src) || !filepath.IsAbs(dst) {
		return "", "source and target must be absolute paths"
	}
	v := filepath.Clean(src) + ":" + filepath.Clean(dst)
	if _, ro := kv["readonly"]; ro || kv["ro"] == "true" {
		v += ":ro"
	}
	return v, ""
}

// StripJSONC removes // and /* */ comments and trailing commas from JSON
// with comments, leaving strings alone.
func StripJSONC(b []byte) []byte {
	var out bytes.Buffer
	inStr, esc := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr:
			out.WriteByte(c)
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
			out.WriteByte(c)
		case c == '/' && i+1 < len(b) && b[i+1] == '/':
			for i < len(b) && b[i] != '\n' {
				i++
			}
			out.WriteByte('\n')
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			i += 2
			for i+1 < len(b) && !(b[i] == '*' && b[i+1] == '/') {
				i++
			}
			i++
			out.WriteByte(' ')
		case c == ',':
			// A trailing comma: the next significant byte closes.
			j := i + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
				j++
			}
			if j < len(b) && (b[j] == '}' || b[j] == ']') {
				continue
			}
			out.WriteByte(c)
		default:
			out.WriteByte(c)
		}
	}
	return out.Bytes()
}
