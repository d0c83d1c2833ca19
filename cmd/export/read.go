package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/devbox-dev/devbox/cmd/cmdutil"
	dexport "github.com/devbox-dev/devbox/export"
	"github.com/devbox-dev/devbox/rootless"
)

// stageReader reads a box's files in this process, and when its layers
// let only the box's own ids in (an image whose root directory is 0700),
// again in the export-read stage, as root of the box's user namespace.
func stageReader(f *cmdutil.Factory) func(dexport.ReadRequest) (dexport.ReadResult, error) {
	return func(req dexport.ReadRequest) (dexport.ReadResult, error) {
		res := dexport.Read(req)
		if res.Path != "" || !res.Denied {
			return res, nil
		}
		m, err := f.Mapping()
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
			Stage:      dexport.StageRead,
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
		var out dexport.ReadResult
		if err := json.Unmarshal(answer, &out); err != nil {
			return res, fmt.Errorf("reading the box's files: %w", err)
		}
		return out, nil
	}
}
