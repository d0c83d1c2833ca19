package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// buildsDir holds what devbox build made: builds/<key> holds the digest
// of the image a build of that key stored. A label on an image is only a
// claim (anyone who has the box file can compute the key and commit,
// load or pull an image that carries it); this record is devbox's own.
const buildsDir = "builds"

// maxBuildRecord bounds what is read of a record ("sha256:" and 64 hex
// digits, a newline).
const maxBuildRecord = 128

// validBuildKey: a build key is 64 lower-case hex digits (it names a file).
func validBuildKey(key string) bool {
	return len(key) == 64 && strings.Trim(key, "0123456789abcdef") == ""
}

// validImageID: a stored image's id is its manifest's sha256 digest.
func validImageID(id string) bool {
	h, ok := strings.CutPrefix(id, "sha256:")
	return ok && validBuildKey(h)
}

// RecordBuild records that devbox build stored image id for build key.
// It is written beside the store's other state without following a link:
// builds/ and the record are opened beneath the store root, and the
// record is replaced by a rename.
func (s *Store) RecordBuild(key, id string) error {
	if !validBuildKey(key) || !validImageID(id) {
		return fmt.Errorf("recording build %q: not a build key and an image digest (this is a bug)", key)
	}
	r, err := openRoot(s.Root)
	if err != nil {
		return err
	}
	defer r.close()
	if err := unix.Mkdirat(r.fd, buildsDir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return storeErr("recording the build", err, s.Root)
	}
	dir, err := r.openDir(buildsDir)
	if err != nil {
		return storeErr("recording the build", fmt.Errorf("%s: %w", buildsDir, err), s.Root)
	}
	defer unix.Close(dir)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := "." + key + "-" + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(dir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return storeErr("recording the build", err, s.Root)
	}
	b := []byte(id + "\n")
	n, err := unix.Write(fd, b)
	if err == nil && n != len(b) {
		err = errors.New("short write")
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dir, tmp, dir, key)
	}
	if err != nil {
		_ = unix.Unlinkat(dir, tmp, 0)
		return storeErr("recording the build", err, s.Root)
	}
	return nil
}

// BuiltImage returns the digest of the image devbox build stored for key,
// and whether there is a record. The record is input (anything that can
// write the store, a dev box sharing a home the store is under, could plant
// one): it is read beneath the store root, not through a link, only as a
// small regular file, and anything but one image digest counts as none.
func (s *Store) BuiltImage(key string) (string, bool) {
	if !validBuildKey(key) {
		return "", false
	}
	r, err := openRoot(s.Root)
	if err != nil {
		return "", false
	}
	defer r.close()
	return r.buildRecord(key)
}

// buildRecord reads record builds/key beneath r as input: not through a
// link, only a small regular file, one image digest and a newline.
func (r *rootDir) buildRecord(key string) (string, bool) {
	b, err := r.readFile(buildsDir+"/"+key, maxBuildRecord)
	if err != nil {
		return "", false
	}
	id, ok := strings.CutSuffix(string(b), "\n")
	if !ok || !validImageID(id) {
		return "", false
	}
	return id, true
}

// staleTmpBuild is how old a record's temporary must be to be a dead
// writer's: RecordBuild holds no lock, and renames it within
// milliseconds.
const staleTmpBuild = time.Hour

// staleBuilds lists the entries of builds/ the collector removes: records
// whose image is no longer stored (not among images, the index's manifest
// digests) and anything that is not a record — a name that is not a build
// key, a link, a fifo, an oversized file, content that is not one digest —
// read as input, as BuiltImage does; and temporaries of writers that died.
// A directory there is listed too (only an empty one goes).
func staleBuilds(r *rootDir, images map[string]bool) []string {
	names, err := r.names(buildsDir)
	if err != nil || len(names) == 0 {
		return nil
	}
	dir, err := r.openDir(buildsDir)
	if err != nil {
		return nil
	}
	defer unix.Close(dir)
	var out []string
	for _, name := range names {
		if strings.HasPrefix(name, ".") {
			var st unix.Stat_t
			err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
			if err == nil && time.Since(time.Unix(st.Mtim.Unix())) > staleTmpBuild {
				out = append(out, name)
			}
			continue
		}
		if validBuildKey(name) {
			if id, ok := r.buildRecord(name); ok && images[id] {
				continue
			}
		}
		out = append(out, name)
	}
	return out
}
