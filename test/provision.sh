#!/usr/bin/env bash
# Provision a Debian host for devbox's integration tests (run as root).
#
# Idempotent: a second run changes nothing and takes about a second. Prints one
# line per step; verbose output of long steps goes to $STATE/logs/.
# See test/README.md for what it sets up.
#
# Environment overrides (all optional):
#   DEVBOX_TEST_USER          unprivileged test user        (devboxtest)
#   DEVBOX_TEST_STATE         state dir                     (/var/lib/devbox-test)
#   DEVBOX_TEST_CACHE         cache dir for the rootfs tar  (/var/cache/devbox-test)
#   DEVBOX_TEST_MIRROR        Debian mirror for debootstrap (http://deb.debian.org/debian)
#   DEVBOX_TEST_NO_CHECK_GPG  1: debootstrap without signature checks if no trixie key
#   DEVBOX_TEST_FORCE_IMAGES  1: rebuild and push the images even if up to date
set -Eeuo pipefail
trap 'printf "[provision] ERROR: line %s: %s failed\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin:${PATH:-}"
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
TEST_USER=${DEVBOX_TEST_USER:-devboxtest}
STATE=${DEVBOX_TEST_STATE:-/var/lib/devbox-test}
CACHE=${DEVBOX_TEST_CACHE:-/var/cache/devbox-test}
MIRROR=${DEVBOX_TEST_MIRROR:-http://deb.debian.org/debian}
REG_ADDR=127.0.0.1:5000
REG_URL="http://$REG_ADDR"
SUBID_COUNT=65536
SUBID_PREFERRED=200000
PACKAGES=(
	uidmap docker-registry busybox-static debootstrap skopeo umoci podman crun runc
	bubblewrap slirp4netns passt iperf3 hyperfine fuse-overlayfs iproute2
	util-linux procps
	# peak RSS of a pull (test/integration/hostile_pull_test.go)
	time
	# the VM test rig (test/vm/rig.sh): QEMU under TCG
	qemu-system-x86
	# shells whose completion the completions/ tests drive
	bash-completion zsh fish
	# devbox export's tests (desktop-file-validate) and bench (distrobox-export's launcher)
	desktop-file-utils distrobox
	# the documentation test runs the docs' examples, some piped to jq
	jq
	# needed by the steps below
	ca-certificates curl debian-archive-keyring gpg gpgv passwd tar gzip coreutils
	# the local apt repository of the provisioning tests (dpkg-scanpackages);
	# gcc: go test -race, and the NVIDIA fixture's ELF library (device_test.go)
	dpkg-dev gcc
)

step() { printf '[provision] %-9s %s\n' "$1" "$2"; }
die() {
	printf '[provision] ERROR: %s\n' "$*" >&2
	exit 1
}
# show_log FILE: print the tail of a step's log to stderr.
show_log() { [ -f "$1" ] && tail -n 30 "$1" | sed 's/^/    | /' >&2 || true; }

[ "$(id -u)" = 0 ] || die "run as root"
mkdir -p "$STATE/logs" "$CACHE"
chmod 0755 "$STATE" "$CACHE"

# One provisioning at a time.
exec 9>>"$STATE/.lock"
flock -w 1800 9 || die "another provision.sh holds $STATE/.lock"

step repo "$REPO"

# --- packages -------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)" = "ii " ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	step packages "all ${#PACKAGES[@]} installed"
else
	log="$STATE/logs/apt.log"
	: >"$log"
	# apt-get update only if the lists are absent or do not know a package.
	need_update=0
	if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
		need_update=1
	else
		for p in "${missing[@]}"; do
			# (no "| grep -q" under pipefail: an early exit of grep fails the pipe)
			if [[ "$(apt-cache policy "$p" 2>/dev/null)" != *"Candidate: "[0-9]* ]]; then
				need_update=1
				break
			fi
		done
	fi
	updated=""
	if [ $need_update = 1 ]; then
		apt-get update >>"$log" 2>&1 || { show_log "$log"; die "apt-get update failed"; }
		updated="apt-get update, "
	fi
	# Debian's docker-registry package would start its own registry on :5000
	# (with htpasswd auth); keep maintainer scripts from starting services.
	policy_rc=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		policy_rc=/usr/sbin/policy-rc.d
	fi
	apt_install() {
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			-o Dpkg::Options::=--force-confold "${missing[@]}" >>"$log" 2>&1
	}
	rc=0
	apt_install || rc=$?
	if [ $rc != 0 ] && [ -z "$updated" ]; then
		# Stale lists (404 on .debs): update once and retry.
		rc=0
		{ apt-get update >>"$log" 2>&1 && apt_install; } || rc=$?
		updated="apt-get update, "
	fi
	[ -n "$policy_rc" ] && rm -f "$policy_rc"
	[ $rc = 0 ] || { show_log "$log"; die "apt-get install ${missing[*]} failed"; }
	step packages "${updated}installed ${missing[*]}"
fi

command -v go >/dev/null || die "go not found (expected in PATH or /usr/local/go/bin)"

# --- test user ------------------------------------------------------------
if id -u "$TEST_USER" >/dev/null 2>&1; then
	changes=""
	if [ "$(getent passwd "$TEST_USER" | cut -d: -f7)" != /bin/bash ]; then
		usermod -s /bin/bash "$TEST_USER"
		changes+=" shell"
	fi
	home=$(getent passwd "$TEST_USER" | cut -d: -f6)
	if [ ! -d "$home" ]; then
		install -d -m 0750 -o "$TEST_USER" -g "$(id -g "$TEST_USER")" "$home"
		changes+=" home"
	fi
	step user "$TEST_USER exists (uid $(id -u "$TEST_USER"))${changes:+, fixed:$changes}"
else
	# SUB_*_COUNT=0: no automatic subordinate ids, we pick the range below.
	useradd --create-home --home-dir "/home/$TEST_USER" --shell /bin/bash --user-group \
		-K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$TEST_USER"
	step user "created $TEST_USER (uid $(id -u "$TEST_USER"))"
fi
TEST_UID=$(id -u "$TEST_USER")
TEST_GID=$(id -g "$TEST_USER")

# --- a second local user ------------------------------------------------------
# The escape tests (escape_store_test.go) need what another user left: a
# world-writable directory of theirs and a store they made first under a
# sticky directory. devboxtest2 has no login and no subordinate ids.
OTHER_USER=${TEST_USER}2
if ! id "$OTHER_USER" >/dev/null 2>&1; then
	useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group \
		-K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$OTHER_USER"
fi
install -d -m 0777 -o "$OTHER_USER" -g "$OTHER_USER" "$STATE/other-user/shared"
chmod 0777 "$STATE/other-user/shared"
chmod 0755 "$STATE/other-user"
install -d -m 1777 -o root -g root "$STATE/other-user/sticky"
install -d -m 0755 -o "$OTHER_USER" -g "$OTHER_USER" "$STATE/other-user/sticky/store"
step user2 "$OTHER_USER exists (uid $(id -u "$OTHER_USER")); $STATE/other-user/{shared,sticky/store} are theirs"

# --- subordinate ids --------------------------------------------------------
# Print "start count" of the user's first range of at least $SUBID_COUNT ids
# in FILE, if that range overlaps no other entry of FILE.
own_range() {
	awk -F: -v u="$TEST_USER" -v id="$TEST_UID" -v n="$SUBID_COUNT" '
		{ s[NR] = $2 + 0; c[NR] = $3 + 0; mine[NR] = ($1 == u || $1 == id) }
		END {
			for (i = 1; i <= NR; i++) {
				if (!mine[i] || c[i] < n) continue
				ok = 1
				for (j = 1; j <= NR; j++)
					if (!mine[j] && s[j] < s[i] + c[i] && s[i] < s[j] + c[j]) ok = 0
				if (ok) { print s[i], c[i]; exit }
			}
		}' "$1"
}
# Lowest start >= $SUBID_PREFERRED (multiple of 65536 above it) free in both files.
free_start() {
	cat /etc/subuid /etc/subgid | awk -F: -v u="$TEST_USER" -v id="$TEST_UID" \
		-v want="$SUBID_PREFERRED" -v n="$SUBID_COUNT" '
		$1 != u && $1 != id && NF >= 3 { k++; s[k] = $2 + 0; c[k] = $3 + 0 }
		END {
			start = want
			do {
				moved = 0
				for (i = 1; i <= k; i++)
					if (s[i] < start + n && start < s[i] + c[i]) {
						start = s[i] + c[i]
						if ((start - want) % 65536) start += 65536 - (start - want) % 65536
						moved = 1
					}
			} while (moved)
			print start
		}'
}
for f in /etc/subuid /etc/subgid; do [ -e "$f" ] || install -m 0644 /dev/null "$f"; done
uid_range=$(own_range /etc/subuid)
gid_range=$(own_range /etc/subgid)
if [ -n "$uid_range" ] && [ -n "$gid_range" ]; then
	step subids "$TEST_USER has subuid ${uid_range/ /+} subgid ${gid_range/ /+}"
else
	start=$(free_start)
	for f in /etc/subuid /etc/subgid; do
		# Drop stale or overlapping entries of the test user, then add ours.
		awk -F: -v u="$TEST_USER" -v id="$TEST_UID" '$1 != u && $1 != id' "$f" >"$f.devbox-tmp"
		echo "$TEST_USER:$start:$SUBID_COUNT" >>"$f.devbox-tmp"
		chmod 0644 "$f.devbox-tmp"
		mv "$f.devbox-tmp" "$f"
	done
	uid_range="$start $SUBID_COUNT"
	step subids "$TEST_USER gets subuid/subgid $start+$SUBID_COUNT"
fi
SUBID_START=${uid_range% *}

# --- XDG runtime dir --------------------------------------------------------
rundir="/run/user/$TEST_UID"
if [ -d "$rundir" ] && [ "$(stat -c '%u:%g %a' "$rundir")" = "$TEST_UID:$TEST_GID 700" ]; then
	step rundir "$rundir ok"
else
	mkdir -p "$rundir"
	chown "$TEST_UID:$TEST_GID" "$rundir"
	chmod 0700 "$rundir"
	step rundir "$rundir created/fixed"
fi

# --- devices ------------------------------------------------------------------
changes=""
if [ ! -c /dev/net/tun ]; then
	mkdir -p /dev/net
	mknod /dev/net/tun c 10 200
	changes+=" mknod:/dev/net/tun"
fi
if [ ! -c /dev/fuse ]; then
	mknod /dev/fuse c 10 229
	changes+=" mknod:/dev/fuse"
fi
for d in /dev/net/tun /dev/fuse; do
	if [ "$(stat -c %a "$d")" != 666 ]; then
		chmod 0666 "$d"
		changes+=" chmod:$d"
	fi
done
step devices "/dev/net/tun /dev/fuse 0666${changes:+ (changed:$changes)}"

# --- mount propagation --------------------------------------------------------
prop=$(findmnt -no PROPAGATION / 2>/dev/null || echo unknown)
case "$prop" in
shared*) step mounts "/ already $prop" ;;
*)
	if mount --make-rshared / 2>"$STATE/logs/mount.log"; then
		step mounts "/ was $prop, now rshared"
	else
		step mounts "WARNING: mount --make-rshared / failed: $(head -n1 "$STATE/logs/mount.log")"
	fi
	;;
esac

# --- user namespaces ----------------------------------------------------------
notes=""
if [ -e /proc/sys/kernel/unprivileged_userns_clone ] && [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 0 ]; then
	echo 1 >/proc/sys/kernel/unprivileged_userns_clone && notes+=" enabled unprivileged_userns_clone"
fi
if [ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 1)" = 0 ]; then
	echo 15000 >/proc/sys/user/max_user_namespaces && notes+=" raised max_user_namespaces"
fi
if setpriv --reuid="$TEST_UID" --regid="$TEST_GID" --clear-groups unshare --user --map-root-user true 2>/dev/null; then
	step userns "unprivileged user namespaces work${notes:+ (}${notes# }${notes:+)}"
else
	step userns "WARNING: $TEST_USER cannot create a user namespace${notes:+ (}${notes# }${notes:+)}"
fi

# --- registry -------------------------------------------------------------------
REG_DIR="$STATE/registry"
REG_PID="$STATE/registry.pid"
REG_CFG="$REG_DIR/config.yml"
REG_LOG="$STATE/logs/registry.log"
registry_up() { curl -fsS --noproxy '*' -m 2 -o /dev/null "$REG_URL/v2/" 2>/dev/null; }
our_pid() {
	local pid
	pid=$(cat "$REG_PID" 2>/dev/null || true)
	[ -n "$pid" ] && [ -d "/proc/$pid" ] &&
		[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$(command -v docker-registry)")" ] &&
		echo "$pid"
}
mkdir -p "$REG_DIR/data"
cfg=$(
	cat <<EOF
# devbox test registry (written by test/provision.sh)
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REG_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
EOF
)
[ "$(cat "$REG_CFG" 2>/dev/null || true)" = "$cfg" ] || printf '%s\n' "$cfg" >"$REG_CFG"
if registry_up; then
	if pid=$(our_pid); then who="pid $pid, started by provision.sh"; else who="not started by provision.sh"; fi
	step registry "$REG_ADDR already answering ($who)"
else
	pid=$(our_pid || true)
	if [ -n "$pid" ]; then
		# Ours but not answering: give it a moment, then restart it.
		for _ in $(seq 20); do registry_up && break || sleep 0.5; done
		registry_up || { kill "$pid" 2>/dev/null || true; sleep 1; pid=""; }
	fi
	if [ -z "$pid" ]; then
		if curl -s --noproxy '*' -m 2 -o /dev/null "$REG_URL/v2/" 2>/dev/null; then
			die "something else answers on $REG_URL/v2/ but not with 200 (auth?); stop it (systemctl disable --now docker-registry?)"
		fi
		# setsid: own session, survives this script; stdio and the lock fd detached.
		setsid docker-registry serve "$REG_CFG" >>"$REG_LOG" 2>&1 </dev/null 9>&- &
		pid=$!
		echo "$pid" >"$REG_PID"
	fi
	for _ in $(seq 60); do
		registry_up && break
		[ -d "/proc/$pid" ] || { show_log "$REG_LOG"; die "docker-registry exited"; }
		sleep 0.5
	done
	registry_up || { show_log "$REG_LOG"; die "registry on $REG_ADDR not ready after 30s"; }
	step registry "started docker-registry on $REG_ADDR (pid $pid, data $REG_DIR/data)"
fi

# --- Debian trixie rootfs ------------------------------------------------------
ARCH=$(dpkg --print-architecture)
TRIXIE_TAR="$CACHE/debian-trixie-minbase-$ARCH.tar"
if [ -s "$TRIXIE_TAR" ] && [ -s "$TRIXIE_TAR.sha256" ]; then
	step rootfs "cached $TRIXIE_TAR"
else
	log="$STATE/logs/debootstrap.log"
	: >"$log"
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	gpgopt=(--keyring="$keyring")
	has_trixie_key() {
		local home rc=0
		home=$(mktemp -d)
		[[ "$(GNUPGHOME="$home" gpg --batch --show-keys --with-colons "$1" 2>/dev/null)" == *13/trixie* ]] || rc=1
		rm -rf "$home"
		return $rc
	}
	if ! has_trixie_key "$keyring"; then
		extra=$(compgen -G '/usr/share/keyrings/debian-archive-trixie-*.gpg' || true)
		if [ -n "$extra" ]; then
			# Binary keyrings concatenate.
			# shellcheck disable=SC2086
			cat "$keyring" $extra >"$CACHE/trixie-keyring.gpg"
			gpgopt=(--keyring="$CACHE/trixie-keyring.gpg")
		elif [ "${DEVBOX_TEST_NO_CHECK_GPG:-}" = 1 ]; then
			gpgopt=(--no-check-gpg)
		else
			die "no trixie archive key in $keyring (upgrade debian-archive-keyring or set DEVBOX_TEST_NO_CHECK_GPG=1)"
		fi
	fi
	build=$(mktemp -d "$CACHE/build.XXXXXX")
	rootfs="$build/rootfs"
	cleanup_build() {
		# debootstrap mounts proc/sys inside the target; never leave them behind.
		findmnt -rno TARGET | { grep -F "$build/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
		rm -rf --one-file-system "$build"
	}
	trap cleanup_build EXIT
	t0=$(date +%s)
	debootstrap --variant=minbase --arch="$ARCH" "${gpgopt[@]}" trixie "$rootfs" "$MIRROR" >>"$log" 2>&1 ||
		{ show_log "$log"; die "debootstrap failed (log: $log)"; }
	# Image hygiene: no device nodes, no host identity, no package caches.
	rm -rf "${rootfs:?}"/dev/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/lib/apt/lists/* "$rootfs"/debootstrap "$rootfs"/run/* "$rootfs"/tmp/*
	mkdir -p "$rootfs/var/lib/apt/lists/partial"
	echo localhost >"$rootfs/etc/hostname"
	: >"$rootfs/etc/resolv.conf"
	tar --create --file="$TRIXIE_TAR.tmp" --directory="$rootfs" --numeric-owner --xattrs \
		--xattrs-include='*' --sort=name --format=posix \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime . >>"$log" 2>&1 ||
		{ show_log "$log"; die "tar failed"; }
	sha256sum "$TRIXIE_TAR.tmp" | cut -d' ' -f1 >"$TRIXIE_TAR.sha256"
	chmod 0644 "$TRIXIE_TAR.tmp" "$TRIXIE_TAR.sha256"
	mv "$TRIXIE_TAR.tmp" "$TRIXIE_TAR"
	cleanup_build
	trap - EXIT
	step rootfs "debootstrapped trixie ($ARCH, ${gpgopt[*]}) in $(($(date +%s) - t0))s -> $TRIXIE_TAR ($(du -m "$TRIXIE_TAR" | cut -f1) MiB)"
fi

# --- images -------------------------------------------------------------------------
EXPECT="$STATE/expect"
DIGESTS="$STATE/images.digests"
STAMP="$STATE/images.stamp"
BUSYBOX=$(readlink -f /bin/busybox)
stamp=$(
	{
		cd "$REPO/test/mkimages" && sha256sum -- *.go
		# Compressed bytes depend on the compression library's version.
		grep -E 'go-containerregistry|klauspost/compress' "$REPO/go.mod" || true
		sha256sum "$BUSYBOX"
		cat "$TRIXIE_TAR.sha256"
		echo "$REG_ADDR $EXPECT"
	} | sha256sum | cut -d' ' -f1
)
# up_to_date: the stamp matches and every recorded reference is in the
# registry with the recorded digest, and its expectation file exists.
up_to_date() {
	[ "$(cat "$STAMP" 2>/dev/null || true)" = "$stamp" ] && [ -s "$DIGESTS" ] || return 1
	local ref digest repo tag got
	while read -r ref digest; do
		repo=${ref#"$REG_ADDR"/}
		tag=${repo##*:}
		repo=${repo%:*}
		[ -s "$EXPECT/${repo//\//_}_$tag.json" ] || return 1
		got=$(curl -fsS --noproxy '*' -m 10 -o /dev/null -I -w '%header{docker-content-digest}' \
			-H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json' \
			"$REG_URL/v2/$repo/manifests/$tag" 2>/dev/null) || return 1
		[ "$got" = "$digest" ] || return 1
	done <"$DIGESTS"
}
if [ "${DEVBOX_TEST_FORCE_IMAGES:-}" != 1 ] && up_to_date; then
	step images "$(wc -l <"$DIGESTS") references up to date in $REG_ADDR"
else
	log="$STATE/logs/mkimages.log"
	mkdir -p "$STATE/bin" "$EXPECT"
	t0=$(date +%s)
	(cd "$REPO" && go build -o "$STATE/bin/mkimages" ./test/mkimages) >"$log" 2>&1 ||
		{ show_log "$log"; die "building test/mkimages failed"; }
	force=()
	[ "${DEVBOX_TEST_FORCE_IMAGES:-}" = 1 ] && force=(-force)
	"$STATE/bin/mkimages" -registry "$REG_ADDR" -busybox "$BUSYBOX" -trixie-tar "$TRIXIE_TAR" \
		-expect-dir "$EXPECT" -digests "$STATE/images.json" "${force[@]}" >>"$log" 2>&1 ||
		{ show_log "$log"; die "test/mkimages failed (log: $log)"; }
	awk '$1 == "pushed" || $1 == "present" { print $2, $3 }' "$log" >"$DIGESTS.tmp"
	mv "$DIGESTS.tmp" "$DIGESTS"
	echo "$stamp" >"$STAMP"
	step images "$(grep -c '^pushed' "$log" || true) pushed, $(grep -c '^present' "$log" || true) already present ($(($(date +%s) - t0))s); expectations in $EXPECT"
fi

# --- a small filesystem (disk-full tests) ---------------------------------------
# TestDiskFull (test/integration/gc_test.go) keeps a store on a filesystem too
# small for the Debian image: a 64 MiB ext4 image, loop-mounted at $STATE/small,
# whose root belongs to the test user.
SMALL="$STATE/small"
if mountpoint -q "$SMALL"; then
	step smallfs "$SMALL mounted ($(df -h --output=size "$SMALL" | tail -1 | tr -d ' '))"
else
	mkdir -p "$SMALL"
	[ -f "$STATE/small.img" ] || { truncate -s 64M "$STATE/small.img" && mkfs.ext4 -q -F "$STATE/small.img"; } ||
		die "creating $STATE/small.img"
	mount -o loop,nosuid,nodev "$STATE/small.img" "$SMALL" || die "mounting $STATE/small.img on $SMALL (loop devices?)"
	step smallfs "mounted a 64 MiB ext4 at $SMALL"
fi
chown "$TEST_UID:$TEST_GID" "$SMALL"
chmod 0755 "$SMALL"
# --- local apt repository (first-start provisioning tests) -------------------------------
# Debian trixie .debs of what devbox's first-start provisioning installs into
# the trixie test image — sudo, locales, less, procps and whatever of their
# dependencies the image lacks (apt resolves against the image's own dpkg
# status) — in a flat, unsigned repository served by busybox httpd on
# 127.0.0.1:5080. Boxes reach it as http://host.devbox.internal:5080/.
APTREPO_ADDR=127.0.0.1:5080
APTREPO="$STATE/aptrepo"
APTREPO_DIR="$APTREPO/repo"
APTREPO_PID="$STATE/aptrepo.pid"
APTREPO_PKGS="sudo locales less procps"
aptrepo_up() { curl -fsS --noproxy '*' -m 2 -o /dev/null "http://$APTREPO_ADDR/Packages" 2>/dev/null; }
aptrepo_stamp=$(printf '%s %s\n' "$APTREPO_PKGS" "$(cat "$TRIXIE_TAR.sha256")" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$APTREPO/stamp" 2>/dev/null || true)" = "$aptrepo_stamp" ] && [ -s "$APTREPO_DIR/Packages" ]; then
	step aptrepo "$(find "$APTREPO_DIR" -name '*.deb' | wc -l) trixie packages in $APTREPO_DIR"
else
	log="$STATE/logs/aptrepo.log"
	: >"$log"
	a="$APTREPO/apt"
	rm -rf "$a" "$APTREPO_DIR.tmp"
	mkdir -p "$a/lists/partial" "$a/archives/partial" "$a/etc/preferences.d" "$a/etc/sources.list.d" "$APTREPO_DIR.tmp"
	# The image's own dpkg status: apt downloads exactly what the image lacks.
	tar -xOf "$TRIXIE_TAR" ./var/lib/dpkg/status >"$a/status"
	if [ "${DEVBOX_TEST_NO_CHECK_GPG:-}" = 1 ]; then
		echo "deb [trusted=yes] $MIRROR trixie main" >"$a/sources.list"
	else
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" >"$a/sources.list"
	fi
	printf '%s\n' "Dir::State::lists \"$a/lists\";" "Dir::State::status \"$a/status\";" \
		"Dir::Cache \"$a\";" "Dir::Cache::archives \"$a/archives\";" \
		"Dir::Etc::SourceList \"$a/sources.list\";" "Dir::Etc::SourceParts \"$a/etc/sources.list.d\";" \
		"Dir::Etc::PreferencesParts \"$a/etc/preferences.d\";" "APT::Architecture \"$ARCH\";" \
		'Acquire::Languages "none";' >"$a/apt.conf"
	# shellcheck disable=SC2086
	{ APT_CONFIG="$a/apt.conf" apt-get update && APT_CONFIG="$a/apt.conf" apt-get install -y --download-only \
		--no-install-recommends $APTREPO_PKGS; } >>"$log" 2>&1 || { show_log "$log"; die "downloading trixie packages failed (log: $log)"; }
	mv "$a"/archives/*.deb "$APTREPO_DIR.tmp/"
	(cd "$APTREPO_DIR.tmp" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>>"$log" && gzip -9nk Packages) ||
		{ show_log "$log"; die "dpkg-scanpackages failed"; }
	chmod -R a+rX "$APTREPO_DIR.tmp"
	rm -rf "$APTREPO_DIR" "$a"
	mv "$APTREPO_DIR.tmp" "$APTREPO_DIR"
	echo "$aptrepo_stamp" >"$APTREPO/stamp"
	step aptrepo "downloaded $(find "$APTREPO_DIR" -name '*.deb' | wc -l) trixie packages ($APTREPO_PKGS and what they need) into $APTREPO_DIR"
fi
if aptrepo_up; then
	step aptsrv "http://$APTREPO_ADDR/ already answering"
else
	pid=$(cat "$APTREPO_PID" 2>/dev/null || true)
	if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$BUSYBOX" ]; then kill "$pid" 2>/dev/null || true; fi
	# busybox httpd -f: in the foreground of its own session, like the registry.
	setsid "$BUSYBOX" httpd -f -p "$APTREPO_ADDR" -h "$APTREPO_DIR" >>"$STATE/logs/aptsrv.log" 2>&1 </dev/null 9>&- &
	pid=$!
	echo "$pid" >"$APTREPO_PID"
	for _ in $(seq 20); do aptrepo_up && break || sleep 0.25; done
	aptrepo_up || { show_log "$STATE/logs/aptsrv.log"; die "busybox httpd on $APTREPO_ADDR not answering"; }
	step aptsrv "started busybox httpd on $APTREPO_ADDR (pid $pid, $APTREPO_DIR)"
fi
# A desktop's udev makes /dev/kvm 0666 (systemd's 50-udev-default.rules);
# the --device test opens it as the test user.
if [ -c /dev/kvm ]; then
	chmod 0666 /dev/kvm
	step kvm "/dev/kvm 0666"
else
	step kvm "no /dev/kvm: the --device test uses /dev/net/tun"
fi

# --- env file for the test runner ----------------------------------------------------
envfile=$(
	cat <<EOF
DEVBOX_TEST_USER=$TEST_USER
DEVBOX_TEST_UID=$TEST_UID
DEVBOX_TEST_SUBID_START=$SUBID_START
DEVBOX_TEST_SUBID_COUNT=$SUBID_COUNT
DEVBOX_TEST_REGISTRY=$REG_ADDR
DEVBOX_TEST_TRIXIE_TAR=$TRIXIE_TAR
DEVBOX_TEST_EXPECT_DIR=$EXPECT
DEVBOX_TEST_APTREPO=$APTREPO_ADDR
EOF
)
if [ "$(cat "$STATE/env" 2>/dev/null || true)" = "$envfile" ]; then
	step env "$STATE/env unchanged"
else
	printf '%s\n' "$envfile" >"$STATE/env.tmp"
	chmod 0644 "$STATE/env.tmp"
	mv "$STATE/env.tmp" "$STATE/env"
	step env "wrote $STATE/env"
fi
