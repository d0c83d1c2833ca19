#!/usr/bin/env bash
# make try DISTRO=debian: the main job on a fresh machine of this kind, which
# has no internet. As root it provisions the offline rig (test/provision.sh:
# a registry mirror on 127.0.0.1:5000 with debian and busybox images, the
# unprivileged user devboxtest), builds devbox, points devboxtest's devbox at
# the mirror, and runs `devbox shell DISTRO` as that user. On a laptop with
# internet just run: make build && bin/devbox shell debian
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DISTRO="${DISTRO:-debian}"
GO="${GO:-go}"; command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go
cd "$REPO"
if [ "$(id -u)" != 0 ]; then
	make -s build GO="$GO"
	exec bin/devbox shell "$DISTRO" "$@"
fi
bash test/provision.sh
# shellcheck disable=SC1091
. /var/lib/devbox-test/env
U="$DEVBOX_TEST_USER"
H="$(getent passwd "$U" | cut -d: -f6)"
make -s build GO="$GO" BIN=/usr/local/bin/devbox
install -d -o "$U" -g "$U" "$H/.config" "$H/.config/devbox"
cat >"$H/.config/devbox/config.toml" <<CFG
[registries]
insecure = ["$DEVBOX_TEST_REGISTRY"]
[registries.mirrors]
"docker.io" = ["$DEVBOX_TEST_REGISTRY"]
# First-start provisioning (sudo, your locale, less, ps) from the local trixie
# repository of test/provision.sh instead of the image's own.
[provision.repos]
apt = "deb [trusted=yes] http://host.devbox.internal:${DEVBOX_TEST_APTREPO##*:}/ ./"
CFG
chown "$U:$U" "$H/.config/devbox/config.toml"
args=("$@")
if [ ! -t 0 ] && [ ${#args[@]} -eq 0 ]; then
	args=(-- sh -c 'echo "in $(. /etc/os-release; echo "$PRETTY_NAME") as $(id -un) (uid $(id -u)) in $PWD"')
fi
cd "$H"
exec runuser -u "$U" -- env -i HOME="$H" USER="$U" LOGNAME="$U" TERM="${TERM:-xterm}" LANG="${LANG:-C.UTF-8}" \
	PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR="/run/user/$(id -u "$U")" \
	devbox shell "$DISTRO" "${args[@]}"
