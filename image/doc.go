// Package image pulls OCI and Docker images into devbox's store.
//
// Resolve turns what the user typed (an alias such as "centos", a short
// Docker-style name, a full reference, a digest) into a fully qualified
// reference. Pull fetches the manifest for the host platform (or the one
// asked for) and downloads the config and layer blobs in parallel into the
// store, verifying every digest; while they download, their bytes are
// streamed to an Unpacker, which the caller runs inside the keep-id user
// namespace and which keeps a layer only once its blob is verified. The
// package knows
// nothing about namespaces and never prints: progress goes to a callback.
package image
