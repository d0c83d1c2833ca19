// Command checkrootfs compares an unpacked root filesystem with an
// expectation file written by test/mkimages and prints the differences.
//
//	go run ./test/checkrootfs -expect /var/lib/devbox-test/expect/test_layers_latest.json -rootfs DIR
//
// Exit status: 0 identical, 1 differences, 2 usage or I/O error.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/devbox-dev/devbox/test/expect"
)

func main() {
	file := flag.String("expect", "", "expectation JSON file")
	rootfs := flag.String("rootfs", "", "unpacked root filesystem")
	platform := flag.String("platform", "", "platform of a multi-platform expectation (default: host)")
	uidmap := flag.String("uidmap", "", "inside:outside:count[,...] to map on-disk uids (rootless unpack)")
	gidmap := flag.String("gidmap", "", "same for gids (default: -uidmap)")
	dirMtime := flag.Bool("dir-mtime", false, "also compare directory mtimes")
	noMtime := flag.Bool("no-mtime", false, "do not compare mtimes")
	devices := flag.Bool("allow-devices", false, "accept device nodes that rootless unpackers skip (root unpack)")
	extra := flag.String("allow-extra", "", "comma-separated paths (and their children) allowed on disk without expectation")
	flag.Parse()
	if *file == "" || *rootfs == "" {
		flag.Usage()
		os.Exit(2)
	}
	f, err := expect.Load(*file)
	check(err)
	img, err := f.Image(*platform)
	check(err)
	opts := expect.Options{CheckDirMtime: *dirMtime, IgnoreMtime: *noMtime, SkippedMayExist: *devices}
	if *uidmap != "" {
		opts.MapUID, err = expect.ParseIDMap(*uidmap)
		check(err)
		opts.MapGID = opts.MapUID
	}
	if *gidmap != "" {
		opts.MapGID, err = expect.ParseIDMap(*gidmap)
		check(err)
	}
	if *extra != "" {
		allowed := strings.Split(*extra, ",")
		opts.AllowExtra = func(p string) bool {
			for _, a := range allowed {
				if p == a || strings.HasPrefix(p, strings.TrimSuffix(a, "/")+"/") {
					return true
				}
			}
			return false
		}
	}
	diffs, err := expect.Compare(img, *rootfs, opts)
	check(err)
	for _, d := range diffs {
		fmt.Println(d)
	}
	fmt.Printf("%s %s: %d entries expected, %d differences\n", f.Repository, img.Platform, len(img.Entries), len(diffs))
	if len(diffs) > 0 {
		os.Exit(1)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkrootfs:", err)
		os.Exit(2)
	}
}
