// Package stagecall runs one of devbox's stages as root of the caller's
// user namespace (rootless.Start) the way its readers call them: a JSON
// request on the stage's stdin, its answer read from the pipe it sees as
// fd 3, its stderr kept for the error. The stage is the one that touches
// the box's files; the caller only reads what comes out of the pipe.
package stagecall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/devbox-dev/devbox/rootless"
)

// Call is one run of a stage.
type Call struct {
	Stage   string
	Mapping rootless.Mapping
	Request any // sent as JSON on the stage's stdin
	// Data, when not nil, follows the request on stdin (a layer's
	// stream for the unpack stage).
	Data io.Reader
	// Env is added to the stage's environment (PATH is set).
	Env []string
	// Max bounds the answer (0: no bound; a stream, such as a layer's
	// tar, that the caller bounds itself).
	Max int64
}

// errTooLarge is the answer going over Call.Max.
var errTooLarge = errors.New("the answer is larger than devbox reads")

// Run runs c and copies the stage's answer (fd 3) to w as it comes. When
// ctx ends, the stage gets SIGINT and the pipe is closed (its writes
// fail), and Run returns ctx's error. A stage that fails is an error naming what it
// said on stderr (without its "devbox STAGE:" prefix), else its exit
// status. An answer w does not take (or one over Max) is an error of
// its own.
func Run(ctx context.Context, c Call, w io.Writer) error {
	body, err := json.Marshal(c.Request)
	if err != nil {
		return err
	}
	var stdin io.Reader = bytes.NewReader(body)
	if c.Data != nil {
		stdin = io.MultiReader(stdin, c.Data)
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	var stderr bytes.Buffer
	p, err := rootless.Start(rootless.Spec{
		Stage:      c.Stage,
		Env:        append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, c.Env...),
		Mapping:    c.Mapping,
		Stdin:      stdin,
		Stderr:     &stderr,
		ExtraFiles: []*os.File{pw},
	})
	pw.Close()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		_ = p.Signal(os.Interrupt)
		r.Close()
	})
	defer stop()
	if c.Max > 0 {
		w = &limited{w: w, n: c.Max}
	}
	_, copyErr := io.Copy(w, r)
	if copyErr != nil {
		r.Close() // the stage's writes fail now
	}
	code, werr := p.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if copyErr != nil {
		return copyErr // the stage then failed because of it
	}
	if werr != nil || code != 0 {
		msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "devbox "+c.Stage+":"))
		switch {
		case msg != "":
		case werr != nil:
			msg = werr.Error()
		default:
			msg = fmt.Sprintf("exit status %d", code)
		}
		return errors.New(msg)
	}
	return nil
}

// limited passes at most n bytes to w, then fails.
type limited struct {
	w io.Writer
	n int64
}

func (l *limited) Write(b []byte) (int, error) {
	if int64(len(b)) > l.n {
		return 0, errTooLarge
	}
	l.n -= int64(len(b))
	return l.w.Write(b)
}
