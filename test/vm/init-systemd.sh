#!/bin/busybox sh
# First stage of the VM rig's systemd guest (see rig.sh): loads the virtio
# and overlay modules, mounts the Debian root disk (booted with QEMU's
# -snapshot, so the cached image never changes), copies the payload (devbox,
# the suite, the suite's unit) into it and hands over to systemd.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "VMRIG boot $(cut -d' ' -f1 /proc/uptime)s kernel $(uname -r) (systemd guest)"
for m in $(cat /lib/modules/order); do
	insmod "/lib/modules/$m" || echo "VMRIG insmod $m failed"
done
# The guest has no udev: the tap device gets the mode distributions give it
# (the default network of the integration tests and the benchmark).
[ ! -c /dev/net/tun ] || chmod 0666 /dev/net/tun
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot || { echo "VMRIG exit 2"; poweroff -f; }
mkdir -p /newroot/opt/vmtest
cp -a /payload/. /newroot/opt/vmtest/
cp /payload/devbox-suite.service /newroot/etc/systemd/system/
mkdir -p /newroot/etc/systemd/system/multi-user.target.wants
ln -sf ../devbox-suite.service /newroot/etc/systemd/system/multi-user.target.wants/devbox-suite.service
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
