#!/bin/sh
# The `linklocal` service: an IPv4 link-local address (RFC 3927, 169.254.0.0/16) on eth0,
# beside whatever DHCP gives. Two windows joined by a cable, or on a LAN without a DHCP
# server, still reach each other: the overlay's invitations fall back to this address when
# the window has no other (overlay/src/link.rs, lan_endpoint). Debian's busybox has no zcip,
# so this is its core in sh: a candidate derived from the MAC (the same address at every
# boot), ARP duplicate detection with `arping -D` (exit 0: nobody has it), the next candidate
# on a conflict, then an announcement. udhcpc's script flushes only global addresses.
i=eth0
until [ -e /sys/class/net/$i ]; do sleep 1; done
ip link set $i up
# the MAC's last two bytes: a in 1..254, b in 0..255 (169.254.0.x and .255.x are reserved)
set -- $(tr ':' ' ' < /sys/class/net/$i/address)
a=$((0x$5 % 254 + 1))
b=$((0x$6))
# the carrier may take a moment; a probe on a link that is down proves nothing
n=0
while [ "$(cat /sys/class/net/$i/carrier 2>/dev/null)" != 1 ] && [ $n -lt 30 ]; do
  sleep 1; n=$((n + 1))
done
while ! arping -D -q -I $i -c 2 -w 3 169.254.$a.$b; do
  echo "linklocal: 169.254.$a.$b is taken, trying another"
  a=$(((a + 36) % 254 + 1))
  b=$(((b + 101) % 256))
  sleep 1
done
ip addr add 169.254.$a.$b/16 broadcast 169.254.255.255 dev $i scope link
arping -U -q -I $i -c 2 169.254.$a.$b
echo "linklocal: $i 169.254.$a.$b/16"
# the address stays while the service runs
exec sleep 2147483647
