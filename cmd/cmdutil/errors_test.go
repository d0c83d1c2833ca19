package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 125},
		{FlagErrorf("bad flag"), 125},
		{&ExitError{Code: 3}, 3},
		{fmt.Errorf("wrapped: %w", &ExitError{Code: 137}), 137},
		{fmt.Errorf("wrapped: %w", &StatusError{Code: ExitStepFailed, Err: errors.New("hook")}), 1},
		{SilentError, 125},
		{context.Canceled, 125},
	}
	for _, c := range cases {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
