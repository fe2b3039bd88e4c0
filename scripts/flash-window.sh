#!/usr/bin/env bash
# flash-window.sh: writes a downloaded ewindow image to an SD card or a USB stick, for people
# without the Rust toolchain (with it: `cargo xtask flash`). See docs/flash.md.

# run by sh (dash)? bash it is: the rest needs arrays and pipefail
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: flash-window.sh [--dd] [--force] [--yes] [--dry-run] IMAGE DEVICE

Writes an ewindow image to DEVICE, a whole disk. Everything on DEVICE is lost.

  IMAGE      ewindow-rpi-arm64.img.zst (a Raspberry Pi's SD card) or
             ewindow-qemu-x86_64.img.zst (a PC's USB stick or disk), or the .img;
             its .bmap beside it (ewindow-<target>.img.bmap), and the SHA256SUMS
             beside it is checked when it is there
  DEVICE     the whole disk: /dev/sdX or /dev/mmcblkN (not /dev/sdX1). Run
             `lsblk -d -o NAME,SIZE,MODEL,TRAN,RM` before and after plugging the
             card in: the new line is it

  --dd       write with dd instead of bmaptool (every block, not only the used
             ones), then read it back and compare its sha256 with the image's;
             also what happens when bmaptool is not installed
  --force    write even to a disk that says it is not removable, is mounted or
             holds swap, to a partition, or into a regular file. Never to the
             disk / is on
  --yes      do not ask before writing
  --dry-run  check and show everything, write nothing
  -h, --help this text

Refused: the disk / is on (always), a mounted disk or partition, swap, a disk
that is not removable, a partition, a read-only, empty or too small device.
Writing a disk needs root: the script runs itself again with sudo.
Tools: lsblk and findmnt (util-linux, mount), zstd, sha256sum; bmaptool from
Debian's bmap-tools (apt-get install bmap-tools zstd).
EOF
}

say() { printf 'flash-window: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}
need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (apt-get install $2)"
}

orig=("$@")
dd_mode=0 force=0 yes=0 dry=0
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--dd) dd_mode=1 ;;
	--force) force=1 ;;
	--yes) yes=1 ;;
	--dry-run) dry=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		args+=("$@")
		break
		;;
	-*) die "unknown option $1 (see --help)" ;;
	*) args+=("$1") ;;
	esac
	shift
done
if [ ${#args[@]} -ne 2 ]; then
	usage >&2
	exit 2
fi
image=${args[0]}
device=${args[1]}

need lsblk util-linux
need findmnt mount
need sha256sum coreutils

[ -f "$image" ] || die "$image: no such file"
case $image in
*.zst)
	need zstd zstd
	decompress() { zstd -dc -- "$image"; }
	;;
*) decompress() { cat -- "$image"; } ;;
esac
bmap=
for b in "$image.bmap" "${image%.zst}.bmap"; do
	if [ -f "$b" ]; then
		bmap=$b
		break
	fi
done
use_bmaptool=0
if [ $dd_mode = 0 ]; then
	if command -v bmaptool >/dev/null 2>&1; then
		[ -n "$bmap" ] || die "no bmap beside $image (${image%.zst}.bmap): put the one that came with it there, or add --dd to write every block with dd"
		use_bmaptool=1
	else
		say "bmaptool is not installed (apt-get install bmap-tools): writing every block with dd"
	fi
fi
image_size=
if [ -n "$bmap" ]; then
	image_size=$(sed -n 's:.*<ImageSize> *\([0-9][0-9]*\) *</ImageSize>.*:\1:p' "$bmap" | head -n 1)
	[ -n "$image_size" ] || die "$bmap is not a bmap file (no <ImageSize>)"
fi

[ -e "$device" ] || die "$device does not exist (lsblk -d -o NAME,SIZE,MODEL,TRAN,RM lists the disks)"
dev=$(readlink -f -- "$device")

# a disk needs root; the checks below run as root too
if [ -b "$dev" ] && [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || die "writing $dev needs root: run this as root"
	say "writing $dev needs root: running again with sudo"
	exec sudo -- "$BASH" "$0" "${orig[@]}"
fi

# check: fills refused (why not) and forced (what --force overrides); disk: the whole disk
refused=()
forced=()
disk=$dev
problem() { # FORCEABLE(0|1) MESSAGE
	if [ "$1" = 1 ] && [ $force = 1 ]; then
		forced+=("$2")
	else
		refused+=("$2")
	fi
}
check() {
	refused=()
	forced=()
	disk=$dev
	if [ ! -b "$dev" ]; then
		if [ -f "$dev" ]; then
			problem 1 "$dev is a regular file, not a disk (disks are /dev/sdX, /dev/mmcblkN); --force writes the image into the file"
		else
			problem 0 "$dev is neither a disk nor a file (disks are /dev/sdX, /dev/mmcblkN)"
		fi
		return 0
	fi
	local type
	type=$(lsblk -dno TYPE -- "$dev" 2>/dev/null || true)
	if [ -z "$type" ]; then
		problem 0 "lsblk does not know $dev (an unused loop device? a reader without a card?)"
		return 0
	fi
	if [ "$type" = part ]; then
		local parent
		parent=/dev/$(lsblk -dno PKNAME -- "$dev")
		problem 1 "$dev is a partition of $parent: the image is a whole disk, give $parent"
		disk=$parent
	fi
	local kname removable ro size dtype path point mm src
	kname=$(lsblk -dno KNAME -- "$disk")
	removable=$(lsblk -dno RM -- "$disk" | tr -d ' ')
	ro=$(lsblk -dno RO -- "$disk" | tr -d ' ')
	size=$(lsblk -dbno SIZE -- "$disk" | tr -d ' ')
	dtype=$(cat "/sys/class/block/$kname/device/type" 2>/dev/null || true)

	# `/`: by device number, by mount point, by source (btrfs has no real number)
	local holds_root=0
	while read -r mm; do
		if [ -n "$mm" ] && lsblk -nro MAJ:MIN -- "$disk" | grep -qxF -- "$mm"; then holds_root=1; fi
	done < <(findmnt -nro MAJ:MIN / || true)
	while read -r src; do
		case $src in
		/dev/*)
			src=$(readlink -f -- "$src" || echo "$src")
			if lsblk -nro PATH -- "$disk" | xargs -r readlink -f -- | grep -qxF -- "$src"; then holds_root=1; fi
			;;
		esac
	done < <(findmnt -nro SOURCE / | sed 's/\[.*//' || true)
	# what is mounted from it, its partitions and what sits on them (LUKS, LVM, RAID)
	local mounts=() mounted=() swaps=()
	while read -r path point; do
		[ -n "${point:-}" ] || continue
		point=$(printf '%b' "$point") # lsblk -r writes a space as \x20
		if [ "$point" = "[SWAP]" ]; then
			swaps+=("$path")
		else
			mounts+=("$path on $point")
			mounted+=("$path")
			if [ "$point" = / ]; then holds_root=1; fi
		fi
	done < <(lsblk -nro PATH,MOUNTPOINT -- "$disk")

	if [ $holds_root = 1 ]; then
		problem 0 "$disk holds this machine's root filesystem /: it is the disk this system runs from (never written, not even with --force)"
	fi
	if [ ${#mounts[@]} -gt 0 ]; then
		problem 1 "mounted: $(printf '%s, ' "${mounts[@]}" | sed 's/, $//'); unmount first: sudo umount ${mounted[*]}"
	fi
	if [ ${#swaps[@]} -gt 0 ]; then
		problem 1 "swap is on ${swaps[*]}: sudo swapoff ${swaps[*]} first"
	fi
	# an SD card in a built-in reader (mmcblk) says RM 0 but is one
	if [ "$removable" != 1 ] && [ "$dtype" != SD ]; then
		problem 1 "$disk does not say it is removable (lsblk RM is $removable): it looks like a fixed disk. If it is the one to overwrite (check its model and size below), add --force"
	fi
	if [ "$ro" = 1 ]; then
		problem 0 "$disk is read-only: an SD card's lock switch (slide it toward the contacts) or a write-protected reader"
	fi
	if [ "${size:-0}" = 0 ]; then
		problem 0 "$disk has no space at all: is the card in the reader?"
	elif [ -n "$image_size" ] && [ "$size" -lt "$image_size" ]; then
		problem 0 "$disk has $size bytes, the image needs $image_size: use a bigger card or stick"
	fi
	return 0
}
# refuse: stop when check found reasons; SAY=1: print what --force overrides
refuse() {
	if [ ${#refused[@]} -gt 0 ]; then
		say "error: not writing $disk:"
		printf '  - %s\n' "${refused[@]}" >&2
		if [ -b "$disk" ]; then lsblk -o NAME,SIZE,TYPE,MOUNTPOINT,MODEL,TRAN,RM -- "$disk" >&2 || true; fi
		exit 1
	fi
	if [ "$1" = 1 ] && [ ${#forced[@]} -gt 0 ]; then
		printf 'flash-window: --force: writing although %s\n' "${forced[@]}" >&2
	fi
}

check
refuse 1

# the downloaded files against the SHA256SUMS beside them
sums=$(dirname -- "$image")/SHA256SUMS
if [ -f "$sums" ]; then
	for f in "$image" ${bmap:+"$bmap"}; do
		name=$(basename -- "$f")
		want=$(awk -v n="$name" '$2 == n || $2 == "*" n { print tolower($1); exit }' "$sums")
		[ -n "$want" ] || die "$sums does not list $name: not the SHA256SUMS of this image (take both from the same place)"
		got=$(sha256sum <"$f" | cut -d ' ' -f 1)
		[ "$got" = "$want" ] || die "$f: sha256 $got, but $sums says $want: a damaged or different file (download it again)"
		say "sha256 ok: $f"
	done
else
	say "warning: no SHA256SUMS beside $image: its sha256 is not checked"
fi

say "about to overwrite:"
if [ -b "$disk" ]; then
	lsblk -o NAME,SIZE,TYPE,FSTYPE,LABEL,MOUNTPOINT,MODEL,TRAN,RM -- "$disk" >&2 || true
else
	ls -l -- "$disk" >&2
fi
say "with $image${image_size:+ ($image_size bytes written)}"

if [ $dry = 1 ]; then
	say "--dry-run: nothing written"
	exit 0
fi
if [ $yes = 0 ]; then
	[ -t 0 ] || die "no terminal to ask on: check the device above and add --yes to write without asking"
	printf 'Everything on %s will be overwritten. Type yes to go on: ' "$disk" >&2
	answer=
	read -r answer || true
	[ "$answer" = yes ] || die "nothing written (the answer was not 'yes')"
fi
# again: a desktop mounts a card's partitions as soon as it sees them
check
refuse 0

if [ $use_bmaptool = 1 ]; then
	say "bmaptool copy --bmap $bmap $image $dev"
	bmaptool copy --bmap "$bmap" "$image" "$dev" ||
		die "bmaptool copy failed (see above); the device is not usable as it is. A checksum mismatch: the image and its bmap differ (take both from the same place); an I/O error: a failing card, stick or reader (try another)"
else
	case $image in
	*.zst) say "zstd -dc $image | dd of=$dev bs=4M conv=fsync status=progress" ;;
	*) say "dd if=$image of=$dev bs=4M conv=fsync status=progress" ;;
	esac
	decompress | dd of="$dev" bs=4M conv=fsync status=progress ||
		die "writing $dev failed (see above)"
	say "reading it back to compare"
	want=$(decompress | sha256sum | cut -d ' ' -f 1)
	len=$(decompress | wc -c | tr -d ' ')
	# read the card, not what the kernel still holds of it in memory
	if [ -b "$dev" ] && command -v blockdev >/dev/null 2>&1; then blockdev --flushbufs "$dev" || true; fi
	got=$(head -c "$len" -- "$dev" | sha256sum | cut -d ' ' -f 1)
	[ "$got" = "$want" ] || die "what $dev holds now differs from the image (sha256 $got, not $want): a failing card, stick or reader; try another"
	say "read back: the first $len bytes of $dev have the image's sha256 $want"
fi
sync
if [ -b "$dev" ] && command -v blockdev >/dev/null 2>&1; then
	blockdev --rereadpt "$dev" 2>/dev/null ||
		say "note: the kernel did not re-read the partition table (harmless: unplugging the device does it)"
fi
say "$dev is written. Put it in the window and switch it on: docs/flash.md says what the first boot does."
