//go:build mips || mipsle || mips64 || mips64le

package prestart

// sysCloseRange: MIPS numbers syscalls per ABI; devbox is not released for
// it, and starts no warm holder there.
const sysCloseRange = 0
