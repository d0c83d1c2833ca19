package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/devbox-dev/devbox/internal/stagecall"
	"github.com/devbox-dev/devbox/rootless"
)

// maxAnswer bounds what the export-read stage may answer.
const maxAnswer = 64 << 20

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
		var answer bytes.Buffer
		call := stagecall.Call{Stage: StageRead, Mapping: m, Request: req, Max: maxAnswer}
		if err := stagecall.Run(context.Background(), call, &answer); err != nil {
			return res, fmt.Errorf("reading the box's files: %w", err)
		}
		var out ReadResult
		if err := json.Unmarshal(answer.Bytes(), &out); err != nil {
			return res, fmt.Errorf("reading the box's files: %w", err)
		}
		return out, nil
	}
}
