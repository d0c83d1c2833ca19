package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// StageRead is the stage that reads a box's files inside the user
// namespace (ReadMain): layers whose directories only the box's ids may
// enter (an image whose root is mode 0700) are readable there, as root of
// the namespace, and nowhere else.
const StageRead = "export-read"

// ReadRequest asks for the first of Candidates (paths in the box) that is
// a regular file (and executable, with Exec) of at most Max bytes.
type ReadRequest struct {
	Layers     []string `json:"layers"`
	Candidates []string `json:"candidates"`
	Max        int64    `json:"max"`
	Exec       bool     `json:"exec,omitempty"` // only check it is executable; no data
}

// ReadResult is the file found: its path in the box and content.
type ReadResult struct {
	Path  string `json:"path,omitempty"`
	Data  []byte `json:"data,omitempty"`
	Error string `json:"error,omitempty"` // why nothing was found
	// Denied says a candidate could not be reached for permissions: the
	// layers are readable only inside the box's user namespace.
	Denied bool `json:"denied,omitempty"`
}

// Read serves req in this process.
func Read(req ReadRequest) ReadResult {
	fs, err := OpenRootfs(req.Layers)
	if err != nil {
		return ReadResult{Error: err.Error()}
	}
	defer fs.Close()
	var last error = errors.New("no candidate")
	denied := false
	for _, c := range req.Candidates {
		if req.Exec {
			ok, err := fs.executable(c)
			if ok {
				return ReadResult{Path: c}
			}
			denied = denied || errors.Is(err, unix.EACCES)
			continue
		}
		b, err := fs.ReadFile(c, req.Max)
		if err == nil {
			return ReadResult{Path: c, Data: b}
		}
		denied = denied || errors.Is(err, unix.EACCES)
		last = err
	}
	return ReadResult{Error: last.Error(), Denied: denied}
}

// ReadMain is the StageRead stage: a ReadRequest on stdin, the
// ReadResult as JSON on fd 3.
func ReadMain() int {
	var req ReadRequest
	out := os.NewFile(3, "result")
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "devbox export-read:", err)
		return 125
	}
	if err := json.NewEncoder(out).Encode(Read(req)); err != nil {
		return 125
	}
	return 0
}
