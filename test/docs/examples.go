package docs

import "strings"

// Outcome is what running an example must show.
type Outcome struct {
	Codes  []int    // accepted exit codes; none means 0
	Stdout []string // each must appear in stdout
	Stderr []string // each must appear in stderr
}

// Example says how one example is run and what it must do. Commands run
// with sh -c, as the unprivileged user, in a fresh devbox environment
// whose config maps the distro aliases the docs use (centos, fedora,
// ubuntu → the offline Debian image, alpine → busybox) and whose PATH
// has devbox; the working directory has bin/devbox. In Run, Setup, Probe
// and the expectations, {HOME} is the user's home, {WORK} the working
// directory, {USER} the user name and {PORT} a free TCP port.
type Example struct {
	// Says is what the text promises, for the failure message.
	Says string
	// Run is the command as run when the text's own cannot be run as
	// written: a placeholder (…, /srv/data), a port that may be taken, a
	// registry that is not reachable offline. Same verb, same flags.
	Run string
	// Setup are commands run first, each must exit 0 (make the box the
	// example names, put a stand-in for make or npm in it).
	Setup []string
	// Stdin is the command's input (an interactive shell's lines).
	Stdin string
	// Background runs the command while Probe is retried (a server).
	Background bool
	// Probe is run after the command (while it runs, when Background),
	// retried for up to 20 s until it exits 0 and shows ProbeOut.
	Probe    string
	ProbeOut string
	Outcome
	// NoCgroup is the outcome where boxes get no cgroup (no usable
	// cgroup v2): the limits commands say why instead.
	NoCgroup *Outcome
}

// installs returns a Setup command that puts an executable script at
// /usr/local/bin/tool in box, as root of the box.
func installs(box, tool string, lines ...string) string {
	var q []string
	for _, l := range lines {
		q = append(q, "'"+strings.ReplaceAll(l, "'", `'\''`)+"'")
	}
	return "printf '%s\\n' '#!/bin/sh' " + strings.Join(q, " ") + " | devbox exec --root " + box +
		" -- sh -c 'mkdir -p /usr/local/bin && cat > /usr/local/bin/" + tool + " && chmod 755 /usr/local/bin/" + tool + "'"
}

// writes returns a Setup command that writes lines to path in box, as
// root of the box, with the given mode.
func writes(box, path, mode string, lines ...string) string {
	var q []string
	for _, l := range lines {
		q = append(q, "'"+strings.ReplaceAll(l, "'", `'\''`)+"'")
	}
	dir := path[:strings.LastIndex(path, "/")]
	return "printf '%s\\n' " + strings.Join(q, " ") + " | devbox exec --root " + box +
		" -- sh -c 'mkdir -p " + dir + " && cat > " + path + " && chmod " + mode + " " + path + "'"
}

var noCgroup = &Outcome{Codes: []int{125}, Stderr: []string{"have no cgroup", "(hint: "}}

// Examples is the table, keyed by Key(example).
var Examples = map[string]Example{
	// README.md, The main job (and devbox pull --help).
	"devbox pull debian": {
		Says:    "pulls the alias debian, Debian 13",
		Outcome: Outcome{Stdout: []string{"docker.io/library/debian:13"}},
	},
	"devbox run debian -- cat /etc/os-release": {
		Says:    "runs a command in an ephemeral Debian box",
		Outcome: Outcome{Stdout: []string{"Debian GNU/Linux"}},
	},
	"devbox shell centos": {
		Says:    "a persistent box: you, your home",
		Stdin:   "id -un; echo $HOME; exit\n",
		Outcome: Outcome{Stdout: []string{"{USER}\n{HOME}\n"}},
	},
	"devbox shell centos -- make test": {
		Says:    "runs a command in the box, exit code passed through",
		Setup:   []string{"devbox create centos", installs("centos", "make", `echo made "$@"`, "exit 3")},
		Outcome: Outcome{Codes: []int{3}, Stdout: []string{"made test"}},
	},
	"devbox create build --image debian --memory 1g --cpus 2 --pids-limit 512": {
		Says:     "a box with cgroup v2 limits",
		Outcome:  Outcome{Stdout: []string{"build"}},
		NoCgroup: &Outcome{Codes: []int{125}, Stderr: []string{"cannot apply --memory", "(hint: "}},
	},
	"devbox shell build -- make -j8": {
		Says:    "runs in your current directory, with your home",
		Setup:   []string{"devbox create build --image debian", installs("build", "make", `echo made "$@" in "$(pwd)" home "$HOME"`)},
		Outcome: Outcome{Stdout: []string{"made -j8 in {WORK} home {HOME}"}},
	},
	"devbox stats": {
		Says:     "live CPU, memory, pids (one sample when piped)",
		Outcome:  Outcome{Stdout: []string{"NAME", "MEM USAGE"}},
		NoCgroup: noCgroup,
	},
	"devbox run -p 8080:80 debian -- …": {
		Says:       "a server in the box on the host's 127.0.0.1:8080",
		Run:        "devbox run -p {PORT}:80 busybox -- httpd -f -p 80 -h /etc",
		Background: true,
		Probe:      "wget -q -O - http://127.0.0.1:{PORT}/hostname || curl -sf http://127.0.0.1:{PORT}/hostname",
		ProbeOut:   "devbox",
	},
	"devbox ports centos": {
		Says:     "what the box listens on, forwarded to 127.0.0.1",
		Setup:    []string{"devbox create centos --grace 60", "devbox exec centos -- perl -MIO::Socket::INET -e 'fork and exit; close STDOUT; close STDERR; $s = IO::Socket::INET->new(LocalAddr => q(127.0.0.1), LocalPort => 5173, Listen => 1) or die; sleep 60'"},
		Probe:    "devbox ports centos",
		ProbeOut: "5173",
	},

	// docs/json.md, and devbox doctor --help.
	`devbox doctor --json | jq -r '.[] | select(.status != "pass") | "\(.check): \(.hint)"'`: {
		Says:    "the JSON of doctor filtered with jq",
		Outcome: Outcome{Codes: []int{0}},
	},
	`devbox doctor --json | jq -r '.[] | select(.status != "pass") | .check'`: {
		Says:    "the names of the checks that did not pass",
		Outcome: Outcome{Codes: []int{0}},
	},
	"devbox doctor": {
		Says:    "checks the host; exit 1 when something fails",
		Outcome: Outcome{Codes: []int{0, 1}, Stdout: []string{"user namespaces"}},
	},

	// docs/network.md, Ports.
	"devbox run -p 8080:80 busybox -- httpd -f -p 80 -h /etc": {
		Says:       "a web server in the box on the host's 127.0.0.1:8080",
		Run:        "devbox run -p {PORT}:80 busybox -- httpd -f -p 80 -h /etc",
		Background: true,
		Probe:      "wget -q -O - http://127.0.0.1:{PORT}/hostname || curl -sf http://127.0.0.1:{PORT}/hostname",
		ProbeOut:   "devbox",
	},
	"devbox create dev --image fedora -p 0.0.0.0:2222:22": {
		Says:    "a box whose port 22 is published on every address",
		Outcome: Outcome{Stdout: []string{"dev"}},
		Probe:   "devbox inspect dev",
		// the record keeps the -p value
		ProbeOut: "0.0.0.0:2222:22",
	},
	"devbox shell dev -- sh -c 'cd ~/site && npm run dev'": {
		Says:     "a dev server in the box listens on 5173, forwarded automatically",
		Setup:    []string{`mkdir -p "{HOME}/site"`, "devbox create dev --image busybox --grace 60", installs("dev", "npm", `echo npm "$@" in "$(pwd)"`, "httpd -p 127.0.0.1:5173 -h /etc")},
		Outcome:  Outcome{Stdout: []string{"npm run dev in {HOME}/site"}},
		Probe:    "devbox ports dev",
		ProbeOut: "5173",
	},
	"devbox ports dev": {
		Says:     "the box's listening port, reachable at 127.0.0.1",
		Setup:    []string{"devbox create dev --image busybox --grace 60", "devbox exec dev -- httpd -p 127.0.0.1:5173 -h /etc"},
		Probe:    "devbox ports dev",
		ProbeOut: "127.0.0.1:5173",
	},

	// --help examples.
	"devbox stats --no-stream --json web": {
		Says:     "one sample of box web as JSON",
		Setup:    []string{"devbox create web --image busybox --grace 60", "devbox shell web -- true"},
		Outcome:  Outcome{Stdout: []string{`"name":"web"`}},
		NoCgroup: noCgroup,
	},
	"devbox pull quay.io/fedora/fedora:43 --platform linux/arm64": {
		Says:    "pulls another platform's image from a full reference",
		Run:     "devbox pull 127.0.0.1:5000/test/multiarch:latest --platform linux/arm64",
		Outcome: Outcome{Stdout: []string{"test/multiarch"}},
	},
	"devbox update web --memory 1g --cpus 1.5": {
		Says:     "changes the limits of the running box web",
		Setup:    []string{"devbox create web --image busybox --grace 60", "devbox shell web -- true"},
		NoCgroup: noCgroup,
	},
	"devbox update web --pids-limit 512": {
		Says:     "changes the pids limit of the running box web",
		Setup:    []string{"devbox create web --image busybox --grace 60", "devbox shell web -- true"},
		NoCgroup: noCgroup,
	},
	"echo hi | devbox run busybox -- cat": {
		Says:    "stdin reaches the command",
		Outcome: Outcome{Stdout: []string{"hi\n"}},
	},
	"devbox run -e FOO=bar -w /tmp alpine -- sh -c 'echo $FOO; pwd'": {
		Says:    "sets the environment and the working directory",
		Outcome: Outcome{Stdout: []string{"bar\n/tmp\n"}},
	},
	"devbox create dev --image fedora": {
		Says:    "creates box dev",
		Outcome: Outcome{Stdout: []string{"dev\n"}},
	},
	"devbox create work --image ubuntu --home ~/boxes/work -v /srv/data:/data:ro": {
		Says:     "a sandboxed box with a home of its own and a read-only volume",
		Run:      `devbox create work --image ubuntu --home ~/boxes/work -v "{HOME}/srv-data:/data:ro"`,
		Setup:    []string{`mkdir -p "{HOME}/srv-data"`, `echo data > "{HOME}/srv-data/f"`},
		Outcome:  Outcome{Stdout: []string{"work\n"}},
		Probe:    "devbox exec work -- sh -c 'cat /data/f; touch /data/g 2>/dev/null || echo read-only; echo $HOME; ls -A $HOME | wc -l'",
		ProbeOut: "data\nread-only\n{HOME}\n0\n",
	},
	"devbox shell fedora -- make test": {
		Says:    "runs a command in the box, exit code passed through",
		Setup:   []string{"devbox create fedora", installs("fedora", "make", `echo made "$@"`)},
		Outcome: Outcome{Stdout: []string{"made test"}},
	},
	"devbox shell dev --root": {
		Says:    "enters the box as its root",
		Setup:   []string{"devbox create dev --image busybox"},
		Stdin:   "id -u; exit\n",
		Outcome: Outcome{Stdout: []string{"0\n"}},
	},
	"devbox exec dev -- make -C ~/src/project": {
		Says:    "runs a command in an existing box",
		Setup:   []string{`mkdir -p "{HOME}/src/project"`, "devbox create dev --image busybox", installs("dev", "make", `echo made "$@"`)},
		Outcome: Outcome{Stdout: []string{"made -C {HOME}/src/project"}},
	},
	"devbox exec dev -t -- htop": {
		Says:    "a terminal for a full-screen program",
		Setup:   []string{"devbox create dev --image busybox", installs("dev", "htop", "tty")},
		Outcome: Outcome{Stdout: []string{"/dev/pts/"}},
	},
	"devbox exec -it dev -- sh": {
		Says:    "docker's -it: an interactive shell on a terminal",
		Setup:   []string{"devbox create dev --image busybox"},
		Stdin:   "echo $((6*7)); tty; exit\n",
		Outcome: Outcome{Stdout: []string{"42", "/dev/pts/"}},
	},
	"devbox ls": {
		Says:    "lists the boxes",
		Setup:   []string{"devbox create dev --image busybox"},
		Outcome: Outcome{Stdout: []string{"NAME", "dev"}},
	},
	"devbox ps --json": {
		Says:    "lists boxes and runs in progress as JSON",
		Setup:   []string{"devbox create dev --image busybox"},
		Outcome: Outcome{Stdout: []string{`"name": "dev"`}},
	},
	"devbox ports dev --json": {
		Says:     "the box's ports as JSON",
		Setup:    []string{"devbox create dev --image busybox --grace 60", "devbox exec dev -- httpd -p 127.0.0.1:5173 -h /etc"},
		Probe:    "devbox ports dev --json",
		ProbeOut: `"boxPort": 5173`,
	},

	// Devices, exports and host commands (README, create/export/unexport --help).
	"devbox create vm --image debian --device /dev/kvm": {
		Says:     "a box with /dev/kvm passed in",
		Outcome:  Outcome{Stdout: []string{"vm"}},
		Probe:    "devbox inspect vm",
		ProbeOut: "/dev/kvm",
	},
	"devbox export dev --app org.gnome.TextEditor": {
		Says: "the box's app in the host's applications menu, named after the box",
		Setup: []string{"devbox create dev --image busybox",
			writes("dev", "/usr/share/applications/org.gnome.TextEditor.desktop", "644",
				"[Desktop Entry]", "Type=Application", "Name=Text Editor", "Exec=gnome-text-editor %U", "Terminal=false")},
		Probe:    `cat "$XDG_DATA_HOME"/applications/*org.gnome.TextEditor*.desktop`,
		ProbeOut: "Name=Text Editor (dev)",
	},
	"devbox export dev --bin /usr/bin/rg": {
		Says:     "a launcher on the host that runs the box's binary",
		Setup:    []string{"devbox create dev --image busybox", writes("dev", "/usr/bin/rg", "755", "#!/bin/sh", `echo "rg in the box: $*"`)},
		Probe:    `"$HOME/.local/bin/rg" --version`,
		ProbeOut: "rg in the box: --version",
	},
	"devbox export dev --list --json": {
		Says: "what was exported from the box, as JSON",
		Setup: []string{"devbox create dev --image busybox", writes("dev", "/usr/bin/rg", "755", "#!/bin/sh", "true"),
			"devbox export dev --bin /usr/bin/rg"},
		Outcome: Outcome{Stdout: []string{`"rg"`}},
	},
	"devbox export dev --list [--json]": {
		Says: "what was exported from the box",
		Run:  "devbox export dev --list",
		Setup: []string{"devbox create dev --image busybox", writes("dev", "/usr/bin/rg", "755", "#!/bin/sh", "true"),
			"devbox export dev --bin /usr/bin/rg"},
		Outcome: Outcome{Stdout: []string{"rg"}},
	},
	"devbox shell dev -- devbox-host -- podman ps": {
		Says:    "runs a host command (podman) from inside a dev box",
		Run:     "devbox shell dev -- devbox-host -- podman --version",
		Setup:   []string{"devbox create dev --image busybox"},
		Outcome: Outcome{Stdout: []string{"podman version"}},
	},
	"devbox unexport dev --all": {
		Says: "removes everything exported from the box",
		Setup: []string{"devbox create dev --image busybox", writes("dev", "/usr/bin/rg", "755", "#!/bin/sh", "true"),
			"devbox export dev --bin /usr/bin/rg"},
		Probe: `test ! -e "$HOME/.local/bin/rg"`,
	},
	"devbox unexport dev --bin rg": {
		Says: "removes the rg launcher",
		Setup: []string{"devbox create dev --image busybox", writes("dev", "/usr/bin/rg", "755", "#!/bin/sh", "true"),
			"devbox export dev --bin /usr/bin/rg"},
		Probe: `test ! -e "$HOME/.local/bin/rg"`,
	},
	// devbox snapshot, rollback, clone (--help and docs/boxfile.md).
	"devbox snapshot dev before-upgrade": {
		Says:    "freezes the stopped box's changes as a snapshot",
		Setup:   []string{"devbox create dev --image busybox"},
		Outcome: Outcome{Stdout: []string{"before-upgrade"}},
	},
	"devbox snapshot --list dev": {
		Says:    "lists the box's snapshots",
		Setup:   []string{"devbox create dev --image busybox", "devbox snapshot dev before-upgrade"},
		Outcome: Outcome{Stdout: []string{"TAG", "before-upgrade"}},
	},
	"devbox snapshot --rm dev before-upgrade": {
		Says:    "forgets a snapshot",
		Setup:   []string{"devbox create dev --image busybox", "devbox snapshot dev before-upgrade"},
		Outcome: Outcome{Stdout: []string{"before-upgrade"}},
	},
	"devbox rollback dev before-upgrade": {
		Says: "returns the box to the snapshot: a file removed since is back",
		Setup: []string{"devbox create dev --image busybox", writes("dev", "/etc/marker", "644", "kept"),
			"devbox snapshot --stop dev before-upgrade", "devbox exec --root dev rm /etc/marker", "devbox stop dev"},
		Outcome:  Outcome{Stdout: []string{"before-upgrade"}},
		Probe:    "devbox exec dev cat /etc/marker",
		ProbeOut: "kept",
	},
	"devbox clone dev dev-experiment": {
		Says:     "a second box over the same layers",
		Setup:    []string{"devbox create dev --image busybox", writes("dev", "/etc/marker", "644", "cloned"), "devbox stop dev"},
		Outcome:  Outcome{Stdout: []string{"dev-experiment"}},
		Probe:    "devbox exec dev-experiment cat /etc/marker",
		ProbeOut: "cloned",
	},
	// devbox assemble (--help and docs/boxfile.md).
	"devbox assemble": {
		Says: "makes the boxes of ./devbox.toml",
		// Trusted once, then removed: assemble asks before a file's hook
		// runs the first time.
		Setup: []string{`printf '%s\n' '[box.web]' 'image = "busybox"' 'on_create = ["touch /etc/made"]' > devbox.toml`,
			"devbox assemble --trust", "devbox rm -f web"},
		Outcome:  Outcome{Stdout: []string{"web\tcreate"}},
		Probe:    "devbox exec web ls /etc/made",
		ProbeOut: "/etc/made",
	},
	"devbox assemble --rm": {
		Says:    "removes the boxes of ./devbox.toml",
		Setup:   []string{`printf '%s\n' '[box.web]' 'image = "busybox"' > devbox.toml`, "devbox assemble"},
		Outcome: Outcome{Stdout: []string{"web\tremove"}},
	},
	"devbox assemble ci/devbox.toml --dry-run": {
		Says:    "says what assembling the file would do",
		Setup:   []string{`mkdir -p ci && printf '%s\n' '[box.ci]' 'image = "busybox"' > ci/devbox.toml`},
		Outcome: Outcome{Stdout: []string{"ci\tcreate"}},
		Probe:   "! devbox inspect ci",
	},
	// devbox build (--help, README and docs/boxfile.md).
	"devbox build": {
		Says:     "an image of each box of ./devbox.toml, no box kept",
		Setup:    []string{buildFile("devbox.toml")},
		Outcome:  Outcome{Stdout: []string{"web\tlocalhost/web:latest\tsha256:", "\tbuilt"}, Stderr: []string{"devbox: build web: commit"}},
		Probe:    `test "$(devbox ls --json)" = "[]" && devbox run web -- ls /etc/made`,
		ProbeOut: "/etc/made",
	},
	"devbox build ci/devbox.toml -b web -t team/web:1 --push 127.0.0.1:5000/team/web:1": {
		Says:     "one box's image under a name of your own, pushed",
		Setup:    []string{"mkdir -p ci", buildFile("ci/devbox.toml"), `printf '%s\n' '[box.db]' 'image = "busybox"' >> ci/devbox.toml`},
		Outcome:  Outcome{Stdout: []string{"web\tlocalhost/team/web:1", "127.0.0.1:5000/team/web:1"}},
		Probe:    "skopeo inspect --tls-verify=false docker://127.0.0.1:5000/team/web:1",
		ProbeOut: "dev.devbox.build.key",
	},
	"devbox build --no-cache --json": {
		Says:    "builds again although nothing changed",
		Setup:   []string{buildFile("devbox.toml"), "devbox build"},
		Outcome: Outcome{Stdout: []string{`"cached": false`, `"name": "commit"`}},
	},
	"devbox run web -- ls /etc/made": {
		Says:    "the built image runs like any other",
		Setup:   []string{buildFile("devbox.toml"), "devbox build"},
		Outcome: Outcome{Stdout: []string{"/etc/made"}},
	},
	"devbox shell --devcontainer -- id -un": {
		Says:    "enters the box of the project's devcontainer.json",
		Setup:   []string{`mkdir -p .devcontainer && printf '%s\n' '{' '  // comments are fine' '  "image": "busybox",' '  "name": "demo",' '}' > .devcontainer/devcontainer.json`},
		Outcome: Outcome{Stdout: []string{"{USER}"}},
	},
	// Commit, push, save, load (README, commit/push/save/load --help).
	"devbox commit dev localhost/dev:1": {
		Says:     "the box's image plus what changed in the box, as a new image in the store",
		Setup:    committable("dev"),
		Outcome:  Outcome{Stdout: []string{"localhost/dev:1"}, Stderr: []string{"Committed localhost/dev:1"}},
		Probe:    "devbox run localhost/dev:1 -- cat /usr/local/share/made",
		ProbeOut: "made in the box",
	},
	`devbox commit dev 127.0.0.1:5000/team/dev:1 -m "with the build tools" -a "Ann <ann@example.com>"`: {
		Says:     "a commit with a history comment and an author",
		Setup:    committable("dev"),
		Outcome:  Outcome{Stdout: []string{"127.0.0.1:5000/team/dev:1"}},
		Probe:    "skopeo inspect --config oci:$XDG_DATA_HOME/devbox/oci:127.0.0.1:5000/team/dev:1",
		ProbeOut: "with the build tools",
	},
	`devbox commit dev dev:2 --change 'CMD ["make", "test"]' --change 'ENV CI=true' --change 'WORKDIR /src'`: {
		Says:     "a commit whose image has its own command, environment and working directory",
		Setup:    []string{"devbox create dev --image busybox", writes("dev", "/src/Makefile", "644", "test:"), "devbox stop dev"},
		Outcome:  Outcome{Stdout: []string{"localhost/dev:2"}},
		Probe:    `devbox run dev:2 -- sh -c 'echo "CI=$CI in $(pwd)"'`,
		ProbeOut: "CI=true in /src",
	},
	"devbox push 127.0.0.1:5000/team/dev:1": {
		Says:     "the image in the registry its name names",
		Setup:    append(committable("dev"), "devbox commit dev 127.0.0.1:5000/team/dev:1"),
		Outcome:  Outcome{Stdout: []string{"127.0.0.1:5000/team/dev:1"}},
		Probe:    "skopeo inspect --tls-verify=false docker://127.0.0.1:5000/team/dev:1",
		ProbeOut: "team/dev",
	},
	"devbox push localhost/dev:1 registry.example.com/team/dev:1": {
		Says:    "the image pushed under another name (the test registry stands in for registry.example.com)",
		Run:     "devbox push localhost/dev:1 127.0.0.1:5000/team/dev:2",
		Setup:   append(committable("dev"), "devbox commit dev localhost/dev:1"),
		Outcome: Outcome{Stdout: []string{"127.0.0.1:5000/team/dev:2"}},
	},
	"devbox save localhost/dev:1 -o dev.tar": {
		Says:     "an OCI archive of the image",
		Setup:    append(committable("dev"), "devbox commit dev localhost/dev:1"),
		Probe:    "tar tf dev.tar",
		ProbeOut: "index.json",
	},
	"devbox load -i dev.tar": {
		Says:    "the archive's image, under the name it gives",
		Setup:   append(committable("dev"), "devbox commit dev localhost/dev:1", "devbox save localhost/dev:1 -o dev.tar", "devbox rmi localhost/dev:1"),
		Outcome: Outcome{Stdout: []string{"localhost/dev:1"}, Stderr: []string{"Loaded localhost/dev:1"}},
	},
	"devbox load -i dev.tar localhost/dev:2": {
		Says:    "the archive's image under another name",
		Setup:   append(committable("dev"), "devbox commit dev localhost/dev:1", "devbox save localhost/dev:1 -o dev.tar"),
		Outcome: Outcome{Stdout: []string{"localhost/dev:2"}},
	},
}

// committable returns the Setup of a stopped box with a file installed.
func committable(box string) []string {
	return []string{"devbox create " + box + " --image busybox",
		writes(box, "/usr/local/share/made", "644", "made in the box"), "devbox stop " + box}
}

// buildFile returns the Setup command that writes a box file with box
// web (busybox, an on_create hook) to path.
func buildFile(path string) string {
	return `printf '%s\n' '[box.web]' 'image = "busybox"' 'on_create = ["touch /etc/made"]' > ` + path
}
