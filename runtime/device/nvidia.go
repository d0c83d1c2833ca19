package device

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
)

// NVIDIA is the host's NVIDIA driver as dev boxes get it: its device
// nodes (read-write), and its user-space libraries, programs and data
// files (read-only, at the host's paths). LibDirs are the directories of
// Libraries, for the box's linker cache (ldconfig DIR…).
type NVIDIA struct {
	// Root is the tree the paths are in ("/" on the host): a bind's
	// source is Root + path, its target path.
	Root      string   `json:"-"`
	Version   string   `json:"version"`
	Devices   []string `json:"devices"`
	Libraries []string `json:"libraries"`
	Programs  []string `json:"programs"`
	Files     []string `json:"files,omitempty"`
	LibDirs   []string `json:"libDirs"`
}

// nvidiaLibraries are the driver's user-space libraries a container gets,
// by the name before ".so" (the list NVIDIA's container toolkit binds for
// its utility, compute, video and graphics capabilities).
var nvidiaLibraries = []string{
	// utility
	"libnvidia-ml", "libnvidia-cfg", "libnvidia-nscq",
	// compute
	"libcuda", "libcudadebugger", "libnvidia-opencl", "libnvidia-gpucomp", "libnvidia-ptxjitcompiler",
	"libnvidia-fatbinaryloader", "libnvidia-allocator", "libnvidia-compiler", "libnvidia-pkcs11",
	"libnvidia-pkcs11-openssl3", "libnvidia-nvvm",
	// video
	"libvdpau_nvidia", "libnvidia-encode", "libnvidia-opticalflow", "libnvcuvid",
	// graphics
	"libnvidia-eglcore", "libnvidia-glcore", "libnvidia-tls", "libnvidia-glsi", "libnvidia-fbc", "libnvidia-ifr",
	"libnvidia-rtcore", "libnvoptix", "libGLX_nvidia", "libEGL_nvidia", "libGLESv2_nvidia", "libGLESv1_CM_nvidia",
	"libnvidia-glvkspirv", "libnvidia-cbl", "libnvidia-egl-gbm", "libnvidia-egl-wayland",
}

// nvidiaPrograms are the driver's programs a container gets.
var nvidiaPrograms = []string{"nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server"}

// nvidiaFiles are data files of the driver the graphics stacks look for.
var nvidiaFiles = []string{
	"/usr/share/vulkan/icd.d/nvidia_icd.json", "/etc/vulkan/icd.d/nvidia_icd.json",
	"/usr/share/glvnd/egl_vendor.d/10_nvidia.json", "/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json",
	"/usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json", "/usr/share/nvidia/nvoptix.bin",
}

// binDirs are searched for the programs, in order.
var binDirs = []string{"/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"}

// libDirs are searched for libraries when the linker cache names none.
var libDirs = []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64", "/lib"}

// cacheArch is the tag `ldconfig -p` gives libraries of this machine's
// ABI (32-bit libraries have none and are not bound).
func cacheArch() string {
	switch goruntime.GOARCH {
	case "arm64":
		return "AArch64"
	case "ppc64le":
		return "64bit"
	}
	return "x86-64"
}

// FindNVIDIA finds the driver below root ("/" on the host; a fixture tree
// in tests): nil when root/proc/driver/nvidia/version does not exist (no
// driver loaded). ldcache is the output of `ldconfig -p` for that root;
// libraries it names are resolved to their files (symbolic links followed
// inside root); without it, the usual library directories are searched.
// Returned paths are as seen from root.
func FindNVIDIA(root, ldcache string) (*NVIDIA, error) {
	ver, err := os.ReadFile(filepath.Join(root, "proc/driver/nvidia/version"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the NVIDIA driver's version: %w", err)
	}
	n := &NVIDIA{Root: root, Version: driverVersion(string(ver))}
	in := func(p string) string { return filepath.Join(root, p) }
	devs, _ := filepath.Glob(in("/dev/nvidia*"))
	caps, _ := filepath.Glob(in("/dev/nvidia-caps/*"))
	for _, d := range append(devs, caps...) {
		if fi, err := os.Stat(d); err == nil && !fi.IsDir() {
			n.Devices = append(n.Devices, strings.TrimPrefix(d, filepath.Clean(root)))
		}
	}
	seen := map[string]bool{}
	addLib := func(p string) {
		real, err := resolveIn(root, p)
		if err != nil || seen[real] {
			return
		}
		seen[real] = true
		n.Libraries = append(n.Libraries, real)
	}
	for _, name := range nvidiaLibraries {
		found := false
		for _, e := range parseLdcache(ldcache) {
			if strings.HasPrefix(e.name, name+".so") && e.arch == cacheArch() {
				addLib(e.path)
				found = true
			}
		}
		if found {
			continue
		}
		for _, d := range libDirs {
			ms, _ := filepath.Glob(in(filepath.Join(d, name+".so.*")))
			for _, m := range ms {
				addLib(strings.TrimPrefix(m, filepath.Clean(root)))
			}
			if len(ms) > 0 {
				break
			}
		}
	}
	for _, prog := range nvidiaPrograms {
		for _, d := range binDirs {
			p := filepath.Join(d, prog)
			if fi, err := os.Stat(in(p)); err == nil && fi.Mode().IsRegular() {
				n.Programs = append(n.Programs, p)
				break
			}
		}
	}
	for _, f := range nvidiaFiles {
		if fi, err := os.Stat(in(f)); err == nil && fi.Mode().IsRegular() {
			n.Files = append(n.Files, f)
		}
	}
	if n.Version != "" {
		fw := "/lib/firmware/nvidia/" + n.Version
		if fi, err := os.Stat(in(fw)); err == nil && fi.IsDir() {
			n.Files = append(n.Files, fw)
		}
	}
	dirs := map[string]bool{}
	for _, l := range n.Libraries {
		dirs[filepath.Dir(l)] = true
	}
	for d := range dirs {
		n.LibDirs = append(n.LibDirs, d)
	}
	sort.Strings(n.LibDirs)
	return n, nil
}

// resolveIn resolves the symbolic links of p (absolute, as seen from
// root) without leaving root, and returns the regular file's path as seen
// from root.
func resolveIn(root, p string) (string, error) {
	cur := filepath.Clean(p)
	for range 16 {
		fi, err := os.Lstat(filepath.Join(root, cur))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !fi.Mode().IsRegular() {
				return "", fmt.Errorf("%s is not a regular file", cur)
			}
			return cur, nil
		}
		t, err := os.Readlink(filepath.Join(root, cur))
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(cur), t)
		}
		cur = filepath.Clean(t)
	}
	return "", fmt.Errorf("%s: too many symbolic links", p)
}

// driverVersion extracts "535.54.03" from /proc/driver/nvidia/version's
// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.54.03  Tue …".
func driverVersion(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	_, rest, ok := strings.Cut(line, "Kernel Module")
	if !ok {
		return ""
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

type cacheEntry struct{ name, arch, path string }

// parseLdcache reads `ldconfig -p` lines: "\tNAME (libc6,x86-64) => PATH".
func parseLdcache(out string) []cacheEntry {
	var es []cacheEntry
	for line := range strings.Lines(out) {
		lhs, path, ok := strings.Cut(strings.TrimSpace(line), " => ")
		if !ok {
			continue
		}
		name, flags, ok := strings.Cut(lhs, " (")
		if !ok {
			continue
		}
		flags = strings.TrimSuffix(flags, ")")
		arch := ""
		for _, f := range strings.Split(flags, ",") {
			if f == "x86-64" || f == "AArch64" || f == "64bit" {
				arch = f
			}
		}
		es = append(es, cacheEntry{name: name, arch: arch, path: strings.TrimSpace(path)})
	}
	return es
}

// Source is the host path of p, one of n's paths.
func (n *NVIDIA) Source(p string) string { return filepath.Join(n.Root, p) }

// RootEnv names a directory to look for the NVIDIA driver in instead of
// "/": the tests' fixture of a driver install (this machine has no GPU).
const RootEnv = "DEVBOX_NVIDIA_ROOT"

// FindHost finds the NVIDIA driver of this host (below $DEVBOX_NVIDIA_ROOT
// when set, without the host's linker cache then); nil without one.
func FindHost() (*NVIDIA, error) {
	root := os.Getenv(RootEnv)
	if root == "" || !filepath.IsAbs(root) {
		root = "/"
	}
	if _, err := os.Stat(filepath.Join(root, "proc/driver/nvidia/version")); err != nil {
		return nil, nil
	}
	cache := ""
	if root == "/" {
		cache = HostLdcache()
	}
	return FindNVIDIA(root, cache)
}

// HostLdcache is the host's `ldconfig -p` ("" when there is no ldconfig).
func HostLdcache() string {
	for _, p := range []string{"/sbin/ldconfig", "/usr/sbin/ldconfig"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		var out bytes.Buffer
		c := exec.Command(p, "-p")
		c.Stdout = &out
		if c.Run() == nil {
			return out.String()
		}
	}
	return ""
}

// Summary is one line for devbox doctor.
func (n *NVIDIA) Summary() string {
	return fmt.Sprintf("NVIDIA driver %s: %d device nodes, %d libraries, %d programs (%s) bound into dev boxes",
		n.Version, len(n.Devices), len(n.Libraries), len(n.Programs), strings.Join(progNames(n.Programs), ", "))
}

func progNames(ps []string) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, filepath.Base(p))
	}
	return out
}
