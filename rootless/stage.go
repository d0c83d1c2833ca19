package rootless

import (
	"github.com/devbox-dev/devbox/internal/self"
	"os"
	"strings"
)

// Environment keys used between devbox's own processes. They never reach a
// user command: ScrubEnv removes them.
const (
	envStage = self.StageEnv
	envNFDs  = "_DEVBOX_NFDS"
	envStart = "_DEVBOX_START" // "FD,keep" or "FD,detach": see enter
)

// CurrentStage reports which devbox process this is. The empty string is the
// host CLI.
func CurrentStage() string { return os.Getenv(envStage) }

// ScrubEnv returns env without devbox's private keys.
func ScrubEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, "_DEVBOX_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// ExtraFiles returns the descriptors passed with Spec.ExtraFiles, in order, as
// seen by the target stage (fd 3, 4, …).
func ExtraFiles() []*os.File {
	n := 0
	for _, c := range os.Getenv(envNFDs) {
		if c < '0' || c > '9' {
			return nil
		}
		n = n*10 + int(c-'0')
	}
	files := make([]*os.File, n)
	for i := range files {
		files[i] = os.NewFile(uintptr(3+i), "extra")
	}
	return files
}
