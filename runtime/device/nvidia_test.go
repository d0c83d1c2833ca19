package device

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// nvidiaFixture lays out what a driver install leaves on a host (this
// machine has no GPU): the version file, 64- and 32-bit libraries with
// their soname links, programs, device nodes (plain files here), data
// files and firmware, and unrelated libraries that must not be taken.
func nvidiaFixture(t *testing.T) (root, ldcache string) {
	root = t.TempDir()
	file := func(p string) {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(p, target string) {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	file("proc/driver/nvidia/version")
	os.WriteFile(filepath.Join(root, "proc/driver/nvidia/version"),
		[]byte("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.54.03  Tue Jun  6 22:20:39 UTC 2023\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"), 0o444)
	const lib = "/usr/lib/x86_64-linux-gnu/"
	for _, l := range []string{"libcuda.so.535.54.03", "libnvidia-ml.so.535.54.03", "libnvidia-ptxjitcompiler.so.535.54.03",
		"libEGL_nvidia.so.535.54.03", "libGLX_nvidia.so.535.54.03", "libnvidia-pkcs11-openssl3.so.535.54.03", "libfoo.so.1.0"} {
		file(lib + l)
	}
	link(lib+"libcuda.so.1", "libcuda.so.535.54.03")
	link(lib+"libcuda.so", "libcuda.so.1")
	link(lib+"libnvidia-ml.so.1", lib+"libnvidia-ml.so.535.54.03")
	link(lib+"libEGL_nvidia.so.0", "libEGL_nvidia.so.535.54.03")
	link(lib+"libGLX_nvidia.so.0", "libGLX_nvidia.so.535.54.03")
	file("/usr/lib/i386-linux-gnu/libcuda.so.535.54.03")
	link("/usr/lib/i386-linux-gnu/libcuda.so.1", "libcuda.so.535.54.03")
	// The cache names a library whose link leaves the root: not followed out.
	link(lib+"libnvidia-cfg.so.1", "../../../../../../../../etc/passwd")
	for _, p := range []string{"/usr/bin/nvidia-smi", "/usr/bin/nvidia-persistenced", "/usr/bin/nvidia-cuda-mps-control",
		"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-caps/nvidia-cap1",
		"/usr/share/vulkan/icd.d/nvidia_icd.json", "/usr/share/glvnd/egl_vendor.d/10_nvidia.json",
		"/lib/firmware/nvidia/535.54.03/gsp_tu10x.bin"} {
		file(p)
	}
	ldcache = `1234 libs found in cache ` + "`/etc/ld.so.cache'" + `
	libnvidia-ptxjitcompiler.so.1 (libc6,x86-64) => ` + lib + `libnvidia-ptxjitcompiler.so.535.54.03
	libnvidia-ml.so.1 (libc6,x86-64) => ` + lib + `libnvidia-ml.so.1
	libnvidia-cfg.so.1 (libc6,x86-64) => ` + lib + `libnvidia-cfg.so.1
	libfoo.so.1 (libc6,x86-64) => ` + lib + `libfoo.so.1.0
	libcuda.so.1 (libc6,x86-64) => ` + lib + `libcuda.so.1
	libcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1
	libcuda.so (libc6,x86-64) => ` + lib + `libcuda.so
	libEGL_nvidia.so.0 (libc6,x86-64) => ` + lib + `libEGL_nvidia.so.0
`
	return root, ldcache
}

func TestFindNVIDIA(t *testing.T) {
	if cacheArch() != "x86-64" {
		t.Skip("the fixture is an x86-64 install")
	}
	root, ldcache := nvidiaFixture(t)
	const lib = "/usr/lib/x86_64-linux-gnu/"
	want := &NVIDIA{
		Root:    root,
		Version: "535.54.03",
		Devices: []string{"/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-caps/nvidia-cap1"},
		// In the toolkit's order; from the cache where it names them,
		// else from the library directory (GLX, pkcs11-openssl3).
		Libraries: []string{lib + "libnvidia-ml.so.535.54.03", lib + "libcuda.so.535.54.03", lib + "libnvidia-ptxjitcompiler.so.535.54.03",
			lib + "libnvidia-pkcs11-openssl3.so.535.54.03", lib + "libGLX_nvidia.so.535.54.03", lib + "libEGL_nvidia.so.535.54.03"},
		Programs: []string{"/usr/bin/nvidia-smi", "/usr/bin/nvidia-persistenced", "/usr/bin/nvidia-cuda-mps-control"},
		Files:    []string{"/usr/share/vulkan/icd.d/nvidia_icd.json", "/usr/share/glvnd/egl_vendor.d/10_nvidia.json", "/lib/firmware/nvidia/535.54.03"},
		LibDirs:  []string{"/usr/lib/x86_64-linux-gnu"},
	}
	got, err := FindNVIDIA(root, ldcache)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// Without a linker cache the library directories are searched.
	got, err = FindNVIDIA(root, "")
	if err != nil || len(got.Libraries) != 6 || strings.Contains(strings.Join(got.Libraries, " "), "i386") {
		t.Errorf("without ldconfig: %v %q", err, got.Libraries)
	}
	if s := got.Summary(); !strings.Contains(s, "535.54.03") || !strings.Contains(s, "nvidia-smi") {
		t.Errorf("summary %q", s)
	}
	// No driver loaded: nothing.
	if n, err := FindNVIDIA(t.TempDir(), ldcache); n != nil || err != nil {
		t.Errorf("without a driver: %+v, %v", n, err)
	}
}
