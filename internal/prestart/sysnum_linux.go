//go:build !mips && !mipsle && !mips64 && !mips64le

package prestart

// sysCloseRange is close_range(2)'s number: 436 wherever the kernel's
// generic syscall table numbers it.
const sysCloseRange = 436
