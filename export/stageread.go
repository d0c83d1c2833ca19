package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/devbox-dev/devbox/rootless"
)

// StageReader reads a box's files in this process, and when its layers
// let only the box's own ids in (an image whose root directory is 0700),
// again in the export-read stage, as root of the box's user namespace
// (mapping gives the caller's id mapping).
func StageReader(mapping func() (rootless.Mapping, error)) func(ReadRequest) (ReadResult, error) {
	return func(req ReadRequest) (ReadResult, error) {
		res := Read(req)
		if res.Path != "" || !res.Denied {
			return res, nil
		}
		m, err := mapping()
		if err != nil {
			return res, err
		}
		body, err := json.Marshal(req)
		if err != nil {
			return res, err
		}
		r, w, err := os.Pipe()
		if err != nil {
			return res, err
		}
		defer r.Close()
		var stderr bytes.Buffer
		p, err := rootless.Start(rootless.Spec{
			Stage:      StageRead,
			Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
			Mapping:    m,
			Stdin:      bytes.NewReader(body),
			Stderr:     &stderr,
			ExtraFiles: []*os.File{w},
		})
		w.Close()
		if err != nil {
			return res, fmt.Errorf("reading the box's files: %w", err)
		}
		answer, _ := io.ReadAll(io.LimitReader(r, 64<<20))
		if code, err := p.Wait(); err != nil || code != 0 {
			return res, fmt.Errorf("reading the box's files: exit %d %v %s", code, err, strings.TrimSpace(stderr.String()))
		}
		var out ReadResult
		if err := json.Unmarshal(answer, &out); err != nil {
			return res, fmt.Errorf("reading the box's files: %w", err)
		}
		return out, nil
	}
}
