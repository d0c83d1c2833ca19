#!/bin/busybox sh
# PID 1 of the VM test rig's guest (see rig.sh and docs/cgroups.md). It
# mounts the basics and pure cgroup v2, delegates a cgroup to the
# unprivileged user "dev" the way systemd delegates user@.service, runs the
# cgroup suite as that user, prints VMRIG lines on the serial console and
# powers off.
export PATH=/usr/bin:/bin
say() { echo "VMRIG $*"; }

# pivot_root (which the box init uses) refuses to move the initramfs's
# rootfs: first copy everything to a tmpfs and switch_root into it.
if [ ! -e /.switched ]; then
	/bin/busybox mkdir -p /newroot
	/bin/busybox mount -t tmpfs -o mode=0755 tmpfs /newroot
	for e in /*; do
		[ "$e" = /newroot ] || /bin/busybox cp -a "$e" /newroot/
	done
	/bin/busybox touch /newroot/.switched
	exec /bin/busybox switch_root /newroot /init
fi
/bin/busybox --install -s /bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
say "boot $(cut -d' ' -f1 /proc/uptime)s kernel $(uname -r)"

for m in /lib/modules/*.ko; do
	[ -e "$m" ] && insmod "$m"
done
ip link set lo up

# Pure cgroup v2: nothing else mounts v1 here.
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
C=/sys/fs/cgroup
ctrls="+cpu +io +memory +pids"
echo "$ctrls" >$C/cgroup.subtree_control
mkdir -p $C/user.slice/user-1000
echo "$ctrls" >$C/user.slice/cgroup.subtree_control
D=$C/user.slice/user-1000
# What systemd does for Delegate=yes: the directory and the files that
# make up the delegation boundary belong to the user.
chown 1000:1000 $D $D/cgroup.procs $D/cgroup.subtree_control $D/cgroup.threads
say "cgroup2 $(cat $C/cgroup.controllers | tr ' ' ,) delegated $D: $(cat $D/cgroup.controllers | tr ' ' ,)"
say "userns $(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo n/a) overlay $(grep -c overlay /proc/filesystems)"

say "start $(cut -d' ' -f1 /proc/uptime)s"
VMTEST_AS=1000:1000 VMTEST_CGROUP=$D HOME=/home/dev USER=dev LOGNAME=dev \
	/vm.test -test.v -test.timeout 6m -test.count 1 -test.skip '^TestSystemd' $(cat /testflags 2>/dev/null)
rc=$?
say "exit $rc"
say "done $(cut -d' ' -f1 /proc/uptime)s"
sync
poweroff -f
