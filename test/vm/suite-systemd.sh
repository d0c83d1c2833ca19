#!/bin/sh
# Runs as root in the systemd guest. The user "dev" lingers, so logind
# starts user@1000.service (with its user bus) at boot. The suite then runs
# as dev from this system service's cgroup, which dev does not own: the
# situation of an ssh or console login (session-N.scope), where devbox must
# get a delegated cgroup from the user manager.
say() { echo "VMRIG $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
say "systemd up at $(up)s"
i=0
while [ ! -S /run/user/1000/bus ] && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
U=/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service
say "user bus at $(up)s: $(ls /run/user/1000/bus 2>&1); user@1000 controllers: $(cat $U/cgroup.controllers 2>&1)"
cd /
VMTEST_AS=1000:1000 HOME=/home/dev USER=dev LOGNAME=dev \
	XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus \
	DEVBOX_BIN=/opt/vmtest/devbox VMTEST_WORKLOAD=/opt/vmtest/workload VMTEST_BUSYBOX=/opt/vmtest/busybox \
	PATH=/usr/bin:/bin \
	/opt/vmtest/vm.test -test.v -test.count 1 -test.timeout 5m -test.run '^TestSystemd' $(cat /opt/vmtest/testflags 2>/dev/null)
say "exit $?"
say "done $(up)s"
sync
systemctl poweroff --force --force
