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
	"testing"
	"time"

	"github.com/devbox-dev/devbox/rootless"
	"github.com/devbox-dev/devbox/test/testutil"
)

// The test binary is its own stages: echo answers its request with its
// uid in the namespace, the data that followed it and an environment
// variable, fail says why on stderr, flood answers without
// end.
func TestMain(m *testing.M) {
	switch rootless.CurrentStage() {
	case "test-echo":
		var req map[string]string
		dec := json.NewDecoder(os.Stdin)
		if err := dec.Decode(&req); err != nil {
			fmt.Fprintln(os.Stderr, "devbox test-echo:", err)
			os.Exit(125)
		}
		data, _ := io.ReadAll(io.MultiReader(dec.Buffered(), os.Stdin))
		req["uid"] = fmt.Sprint(os.Getuid())
		req["data"] = strings.TrimSpace(string(data))
		req["env"] = os.Getenv("STAGECALL_TEST")
		json.NewEncoder(os.NewFile(3, "answer")).Encode(req)
		os.Exit(0)
	case "test-fail":
		fmt.Fprintln(os.Stderr, "devbox test-fail: the layer is not there")
		os.Exit(3)
	case "test-flood":
		out := os.NewFile(3, "answer")
		b := bytes.Repeat([]byte("x"), 1<<16)
		for {
			if _, err := out.Write(b); err != nil {
				os.Exit(1)
			}
		}
	}
	os.Exit(m.Run())
}

func mapping(t *testing.T) rootless.Mapping {
	m, err := rootless.Detect()
	if err != nil {
		t.Fatal(err)
	}
	testutil.RequireUnprivilegedUserns(t, !m.Single())
	return m
}

func TestRun(t *testing.T) {
	m := mapping(t)
	// The request in, the answer out, as root of the namespace.
	var out bytes.Buffer
	call := Call{Stage: "test-echo", Mapping: m, Request: map[string]string{"path": "/etc/x"}, Max: 1 << 10,
		Data: strings.NewReader("the stream"), Env: []string{"STAGECALL_TEST=set"}}
	if err := Run(context.Background(), call, &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != `{"data":"the stream","env":"set","path":"/etc/x","uid":"0"}` {
		t.Errorf("answer %q", got)
	}
	// A failing stage: what it said, without its prefix.
	err := Run(context.Background(), Call{Stage: "test-fail", Mapping: m, Request: struct{}{}}, io.Discard)
	if err == nil || err.Error() != "the layer is not there" {
		t.Errorf("a failing stage: %v", err)
	}
	// An answer over Max stops the stage: the error says so.
	start := time.Now()
	err = Run(context.Background(), Call{Stage: "test-flood", Mapping: m, Request: struct{}{}, Max: 1 << 20}, io.Discard)
	if !errors.Is(err, errTooLarge) || time.Since(start) > 30*time.Second {
		t.Errorf("an endless answer with Max: %v after %v", err, time.Since(start))
	}
	// A cancelled context stops it too.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = Run(ctx, Call{Stage: "test-flood", Mapping: m, Request: struct{}{}}, io.Discard)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("an endless answer, cancelled: %v", err)
	}
}
