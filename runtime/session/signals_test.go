package session

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// The session client's signals are caught in the background from before
// the request (watchSignals), and let go in the background after the exit
// reply (stop): a signal in between reaches the watch; after stop, none.
func TestSignalWatch(t *testing.T) {
	// A second catcher of SIGUSR2, so that the signal never kills the test
	// once the watch let it go.
	guard := make(chan os.Signal, 8)
	signal.Notify(guard, syscall.SIGUSR2)
	defer signal.Stop(guard)

	w := watchSignals(false)
	select {
	case <-w.ready:
	case <-time.After(5 * time.Second):
		t.Fatal("the signals were not registered")
	}
	syscall.Kill(os.Getpid(), syscall.SIGUSR2)
	select {
	case s := <-w.c:
		if s != syscall.SIGUSR2 {
			t.Fatalf("caught %v, want SIGUSR2", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGUSR2 did not reach the watch")
	}
	<-guard

	w.stop()
	// stop is asynchronous: once the guard sees a signal the watch does
	// not, it has taken effect.
	deadline := time.Now().Add(5 * time.Second)
	for {
		syscall.Kill(os.Getpid(), syscall.SIGUSR2)
		<-guard
		select {
		case <-w.c:
			if time.Now().After(deadline) {
				t.Fatal("the watch still catches SIGUSR2 after stop")
			}
			time.Sleep(10 * time.Millisecond)
			continue
		case <-time.After(100 * time.Millisecond):
		}
		break
	}
}
