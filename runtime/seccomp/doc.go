// Package seccomp builds and installs the seccomp filter of the processes in a
// box: Docker's default profile (the data of github.com/moby/profiles/seccomp)
// for a given capability bounding set, plus a TIOCSTI/TIOCLINUX ioctl denial,
// compiled to classic BPF by a small compiler of its own, in pure Go.
//
// The filter covers every ABI a process can enter the kernel through on the
// host: x86_64, x32 and i386 on amd64; aarch64 and arm on arm64. Any other
// audit architecture kills the process. The profile's default action is
// ERRNO(EPERM). The profile is kept as a generated table (zprofile.go) and
// the filter for DefaultCaps is precompiled (zprogram.go); a test keeps both
// equal to their sources, and go generate rewrites them. Other capability
// sets compile at run time.
//
// Lifecycle: the box init calls Program once per command and Install on the
// locked OS thread that then forks the command; the filter stays on that
// thread only and is inherited by whatever it forks. docs/security.md
// ("Seccomp") has the policy and the measured cost.
package seccomp

//go:generate go run ./internal/mksyscalls -o zsyscalls.go
//go:generate go test -run ^TestGeneratedProgram$ . -args -update
