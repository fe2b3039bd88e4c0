#!/bin/bash
# Prototype of `cargo xtask image --target qemu-x86_64` (issue 7).
#
#   build.sh lock                 resolve the Debian package set, write ewindow-qemu-x86_64.lock
#   build.sh build OUT            build the image from the lock into OUT/
#   build.sh floor OUT            same kernel, busybox-only initramfs (/init prints a marker, powers off)
#   build.sh check                build twice in two directories, compare every output byte
#   build.sh boot IMG [SECONDS]   boot IMG under QEMU TCG, timestamped serial log, then a clean
#                                 shutdown (Ctrl-Alt-Del -> ewindow-init) and e2fsck -fn of /data
#
# Environment: REPO (default /work/main), CACHE (default ./cache: .debs and unpacked trees,
# shared by builds), BINDIR (our release binaries, default $REPO/target/release).
set -euo pipefail
shopt -s nullglob lastpipe

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${REPO:-/work/main}
CACHE=${CACHE:-$HERE/cache}
BINDIR=${BINDIR:-$REPO/target/release}
LOCK=$HERE/ewindow-qemu-x86_64.lock
ROOTS=${ROOTS:-$HERE/roots.txt}
TARGET=qemu-x86_64
ARCH=amd64
TRIPLET=x86_64-linux-gnu
OUR_BINS=(ewindow-init ewindow-phone ewindow-overlay ewindow-console ewindowctl)
CMDLINE="console=ttyS0 quiet"

# Kernel modules a window loads (ewindow-init [system] modules; there is no udev, so nothing
# is loaded by modalias: every driver is listed). Their modules.dep closure goes in the image.
MODULES=(
  # disk and filesystem for /data (ext4's crc32c is a soft dependency: list it)
  virtio_pci virtio_blk virtio_scsi sd_mod crc32c_generic crc32c_intel ext4
  # network: virtio, common PC NICs, the overlay
  virtio_net e1000 e1000e r8169 igb wireguard
  # USB: host controllers, HID (the button), audio, cameras, roster sticks
  xhci_pci ehci_pci uhci_hcd usbhid hid_generic evdev snd_usb_audio uvcvideo
  usb_storage uas vfat nls_cp437 nls_iso8859_1 nls_utf8
  # PC audio (HDA), watchdogs
  snd_hda_intel i6300esb iTCO_wdt
  # DRM for kmssink: QEMU std VGA, virtio-gpu, Intel
  bochs virtio_gpu i915
)
# Modules ewindow-init loads at boot, in this order (the services file's [system] modules).
BOOT_MODULES=(virtio_pci virtio_blk crc32c_generic ext4 virtio_net e1000 e1000e r8169 wireguard
  xhci_pci ehci_pci usbhid hid_generic evdev snd_hda_intel snd_usb_audio uvcvideo i6300esb bochs)

# Fixed identifiers (reproducible; the same on every window).
DISK_GUID=6f2c6b8e-1d3a-4b7e-9a51-0e77696e646f
ESP_GUID=c0ffee00-e1e1-4a11-8d2e-0e77696e0001
DATA_GUID=c0ffee00-e1e1-4a11-8d2e-0e77696e0002
ESP_VOLID=0E1D0001
ESP_MIN_MIB=32
DATA_MIB=256

export LC_ALL=C TZ=UTC
umask 022

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
step() { CURRENT_STEP=$1; log "[$SECONDS s] $1"; }
trap 'rc=$?; [ $rc = 0 ] || printf "error: step \"%s\" failed (exit %s)\n" "${CURRENT_STEP:-?}" "$rc" >&2' EXIT

need_tools() {
  local t missing=()
  for t in apt-get apt-cache dpkg-deb readelf objcopy objdump sfdisk mkfs.vfat mmd mcopy cpio zstd depmod modinfo bmaptool sha256sum; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  [ ${#missing[@]} = 0 ] || die "missing host tools: ${missing[*]} (apt-get install fdisk dosfstools mtools cpio zstd kmod bmap-tools binutils)"
}

# ---------------------------------------------------------------------------------------
# Packages: download into the cache, verify, unpack

deb_file() { # PKG VERSION ARCH -> file name apt-get download writes
  local v=${2//:/%3a}
  echo "${1}_${v}_${3}.deb"
}

fetch() { # PKG VERSION -> prints the path of the .deb in the cache
  local pkg=$1 ver=$2 arch f
  mkdir -p "$CACHE/debs"
  for arch in $ARCH all; do
    f=$CACHE/debs/$(deb_file "$pkg" "$ver" $arch)
    [ -s "$f" ] && { echo "$f"; return; }
  done
  (cd "$CACHE/debs" && apt-get -q -o APT::Sandbox::User=root download "$pkg=$ver" >&2) ||
    die "apt-get download $pkg=$ver failed (a version gone from the archive needs snapshot.debian.org)"
  for arch in $ARCH all; do
    f=$CACHE/debs/$(deb_file "$pkg" "$ver" $arch)
    [ -s "$f" ] && { echo "$f"; return; }
  done
  die "apt-get download $pkg=$ver wrote no .deb I recognise"
}

candidate_version() { # PKG -> version apt would download (empty for virtual packages)
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}' | grep -v '(none)' || true
}

unpack() { # PKG VERSION DEB -> directory; also writes the file index
  local pkg=$1 ver=$2 deb=$3 dir=$CACHE/unpacked/${1}_${2//:/%3a}
  if [ ! -e "$dir/.done" ]; then
    rm -rf "$dir"; mkdir -p "$dir/root"
    dpkg-deb -x "$deb" "$dir/root"
    # type, path as shipped, path merged into /usr, link target
    (cd "$dir/root" && find . -mindepth 1 \( -type f -o -type l \) -printf '%y\t%P\t%l\n') |
      awk -F'\t' -v OFS='\t' '{n=$2; sub(/^(bin|sbin|lib|lib64)\//, "usr/&", n); print $1, $2, n, $3}' |
      sort -t$'\t' -k3,3 > "$dir/index"
    touch "$dir/.done"
  fi
  echo "$dir"
}

# ---------------------------------------------------------------------------------------
# The file index over a package set and the ELF closure

declare -A F_DIR F_ORIG F_TYPE F_LINK F_PKG F_BASE SEL UNRES ALT_LINK
declare -a PKGS_IN_SET

load_index() { # "pkg ver dir" lines on stdin
  F_DIR=(); F_ORIG=(); F_TYPE=(); F_LINK=(); F_PKG=(); F_BASE=(); PKGS_IN_SET=()
  local pkg ver dir t orig norm link
  while read -r pkg ver dir; do
    PKGS_IN_SET+=("$pkg")
    while IFS=$'\t' read -r t orig norm link; do
      [ -n "${F_PKG[$norm]:-}" ] && continue   # first package wins
      F_DIR[$norm]=$dir/root; F_ORIG[$norm]=$orig; F_TYPE[$norm]=$t; F_LINK[$norm]=$link; F_PKG[$norm]=$pkg
      # libraries in subdirectories (alternatives: blas/, lapack/): found by name as a last resort
      case $norm in usr/lib/$TRIPLET/*/*.so.*) : "${F_BASE[${norm##*/}]:=$norm}" ;; esac
    done < "$dir/index"
  done
}

canon() { # a path relative to / -> canonical (no ., .., //), merged into /usr; no subprocess
  local IFS=/ part; local -a in out=()
  read -ra in <<<"$1"
  for part in "${in[@]}"; do
    case $part in ''|.) ;; ..) [ ${#out[@]} -gt 0 ] && unset 'out[-1]' ;; *) out+=("$part") ;; esac
  done
  local p="${out[*]}"
  case $p in bin/*|sbin/*|lib/*|lib64/*) p=usr/$p ;; esac
  echo "$p"
}

closure() { # root paths (normalized) on stdin; fills SEL and UNRES
  SEL=(); UNRES=(); ALT_LINK=()
  local -a work; mapfile -t work
  local p src tgt d so found rp dir pkg line
  while [ ${#work[@]} -gt 0 ]; do
    p=${work[-1]}; unset 'work[-1]'
    [ -n "${SEL[$p]:-}" ] && continue
    [ -n "${F_PKG[$p]:-}" ] || die "closure: $p is in no package of the set"
    SEL[$p]=1
    src=${F_DIR[$p]}/${F_ORIG[$p]}
    if [ "${F_TYPE[$p]}" = l ]; then
      tgt=${F_LINK[$p]}
      case $tgt in /*) tgt=$(canon "$tgt") ;; *) tgt=$(canon "$(dirname "$p")/$tgt") ;; esac
      work+=("$tgt"); continue
    fi
    local magic=''
    IFS= read -r -n4 magic < "$src" || true
    [ "$magic" = $'\x7fELF' ] || continue
    local interp
    interp=$(readelf -lW "$src" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    if [ -n "$interp" ]; then
      d=$(canon "$interp")
      if [ -n "${F_PKG[$d]:-}" ]; then work+=("$d"); else UNRES[$(basename "$interp")]="${F_PKG[$p]} $p"; fi
    fi
    local -a runpath=()
    while read -r line; do
      line=${line//\$ORIGIN/\/$(dirname "$p")}
      IFS=: read -ra rp <<<"$line"; runpath+=("${rp[@]}")
    done < <(readelf -dW "$src" | sed -n 's/.*(R\(UN\)\?PATH).*: \[\(.*\)\]/\2/p')
    while read -r so; do
      found=
      for dir in "${runpath[@]}" /usr/lib/$TRIPLET /usr/lib; do
        d=$(canon "$dir/$so")
        if [ -n "${F_PKG[$d]:-}" ]; then found=$d; break; fi
      done
      if [ -z "$found" ] && [ -n "${F_BASE[$so]:-}" ]; then
        # what update-alternatives would link at install time (libblas.so.3 -> blas/libblas.so.3)
        found=${F_BASE[$so]}; ALT_LINK[usr/lib/$TRIPLET/$so]=${found#usr/lib/$TRIPLET/}
      fi
      if [ -n "$found" ]; then work+=("$found"); else UNRES[$so]="${F_PKG[$p]} $p"; fi
    done < <(readelf -dW "$src" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  done
}

# roots.txt -> normalized root paths for the rootfs (and, with "+", build-only inputs)
root_paths() { # MODE: rootfs|build
  local mode=$1 pkg re plus dir
  while read -r pkg re; do
    case $pkg in ''|'#'*) continue ;; esac
    plus=; [ "${pkg#+}" != "$pkg" ] && { plus=1; pkg=${pkg#+}; }
    [ "$pkg" = @KERNEL ] && pkg=$KPKG
    if [ "$mode" != build ] && [ -n "$plus" ]; then continue; fi
    if [ "$mode" = build ] && [ -z "$plus" ]; then continue; fi
    dir=${PKG_DIR[$pkg]:-}; [ -n "$dir" ] || die "roots.txt names $pkg, which is not in the package set"
    local n
    n=$(awk -F'\t' -v re="^($re)\$" '$2 ~ re {print $3}' "$dir/index")
    [ -n "$n" ] || die "roots.txt: nothing in $pkg matches $re"
    echo "$n"
  done < <(if [ "${WITH_LIBAV:-0}" = 1 ] || [ "$mode" = lock ]; then sed 's/^#libav //' "$ROOTS"; else cat "$ROOTS"; fi)
}

declare -A PKG_DIR PKG_VER PKG_DEB

# ---------------------------------------------------------------------------------------
# lock: resolve the package set (roots + whatever the ELF closure needs)

kernel_pkg() { apt-cache depends linux-image-$ARCH | awk '/Depends:/ {print $2; exit}'; }

add_pkg() { # PKG [VERSION]
  local pkg=$1 ver=${2:-} deb
  [ -n "${PKG_DIR[$pkg]:-}" ] && return 0
  [ -n "$ver" ] || ver=$(candidate_version "$pkg")
  [ -n "$ver" ] || die "no version of $pkg in the archive (virtual package?)"
  deb=$(fetch "$pkg" "$ver")
  PKG_VER[$pkg]=$ver; PKG_DEB[$pkg]=$deb
  PKG_DIR[$pkg]=$(unpack "$pkg" "$ver" "$deb")
  log "  + $pkg $ver"
}

deps_of() { # PKG -> its Depends and Pre-Depends alternatives, one name a line
  dpkg-deb -f "${PKG_DEB[$1]}" Pre-Depends Depends | sed 's/^[A-Za-z-]*: //' | tr ',|' '\n\n' |
    sed 's/([^)]*)//; s/:any//; s/^ *//; s/ *$//' | grep -v '^$' | sort -u
}

provider_of() { # SONAME NEEDER_PKG -> the package shipping SONAME among NEEDER's dependencies
  local so=$1 needer=$2 stem c v deb
  local -a cands
  if [ "$needer" = ewindow ]; then
    # Our binaries were linked on this host: like dpkg-shlibdeps, ask dpkg which package
    # holds the library we linked against.
    mapfile -t cands < <(dpkg -S "*/$so" 2>/dev/null | sed 's/[:,].*//' | sort -u)
  else
    # Debian's shlibs guarantee the provider is a direct dependency of the needer.
    stem=$(echo "$so" | sed 's/\.so.*//; s/^lib//; s/[^a-zA-Z0-9]//g' | tr A-Z a-z)
    mapfile -t cands < <(deps_of "$needer" | awk -v s="$stem" '{n=$0; gsub(/[^a-z0-9]/,"",n); sub(/^lib/,"",n); print (index(n,s)==1 ? 0 : 1), length($0), $0}' | sort -n | awk '{print $3}')
  fi
  for c in "${cands[@]}"; do
    v=$(candidate_version "$c"); [ -n "$v" ] || continue
    deb=$(fetch "$c" "$v")
    if dpkg-deb -c "$deb" | awk -v so="$so" '{n = split($6, a, "/"); if (a[n] == so) f = 1} END {exit !f}'; then
      echo "$c"; return
    fi
  done
  return 1
}

cmd_lock() {
  need_tools
  step "resolving the package set"
  KPKG=$(kernel_pkg)
  local pkg re
  while read -r pkg re; do
    case $pkg in ''|'#'*) continue ;; esac
    pkg=${pkg#+}; [ "$pkg" = @KERNEL ] && pkg=$KPKG
    add_pkg "$pkg"
  done < <(sed 's/^#libav //' "$ROOTS")
  stage_ours
  local round=0 so needer prov
  while :; do
    round=$((round + 1))
    step "ELF closure, round $round"
    { for pkg in "${!PKG_DIR[@]}"; do echo "$pkg ${PKG_VER[$pkg]} ${PKG_DIR[$pkg]}"; done | sort
      echo "ewindow 0 $OURS"; } | load_index
    { root_paths lock; ours_paths; } | closure
    [ ${#UNRES[@]} = 0 ] && break
    declare -A fresh=()
    for so in "${!UNRES[@]}"; do
      needer=${UNRES[$so]%% *}
      prov=$(provider_of "$so" "$needer") || die "$so (needed by ${UNRES[$so]#* }) is in none of $needer's dependencies"
      [ -n "${PKG_DIR[$prov]:-}" ] && [ -z "${fresh[$prov]:-}" ] && die "$so (needed by ${UNRES[$so]#* }) is in $prov, but not where the loader looks: $(awk -F'\t' -v s="$so" '$3 ~ "/" s "$" {print $3}' "${PKG_DIR[$prov]}/index")"
      [ -n "${PKG_DIR[$prov]:-}" ] || { add_pkg "$prov"; fresh[$prov]=1; }
    done
  done
  # Keep only the packages the closure uses (plus build inputs), pinned with their sha256.
  declare -A used=()
  local p
  for p in "${!SEL[@]}"; do used[${F_PKG[$p]}]=1; done
  while read -r pkg re; do
    case $pkg in +*) pkg=${pkg#+}; [ "$pkg" = @KERNEL ] && pkg=$KPKG; used[$pkg]=1 ;; esac
  done < "$ROOTS"
  {
    echo "# ewindow image lock ($TARGET): package version sha256. Refresh: image/build.sh lock"
    echo "# kernel $KPKG"
    for pkg in "${!used[@]}"; do
      [ "$pkg" = ewindow ] && continue
      echo "$pkg ${PKG_VER[$pkg]} $(sha256sum < "${PKG_DEB[$pkg]}" | cut -d' ' -f1)"
    done | sort
  } > "$LOCK"
  log "wrote $LOCK ($(grep -vc '^#' "$LOCK") packages)"
}

# ---------------------------------------------------------------------------------------
# build

OURS=
stage_ours() { # our release binaries as a pseudo-package "ewindow"
  OURS=$CACHE/ewindow-bins
  rm -rf "$OURS"; mkdir -p "$OURS/root/usr/bin"
  local b
  for b in "${OUR_BINS[@]}"; do
    [ -x "$BINDIR/$b" ] || die "$BINDIR/$b is missing: cargo build --release --workspace --bins"
    strip --strip-all -o "$OURS/root/usr/bin/$b" "$BINDIR/$b"   # symbols: 23.5 -> 18.8 MB
  done
  (cd "$OURS/root" && find . -mindepth 1 -type f -printf 'f\t%P\t%P\t\n' | sort) > "$OURS/index"
}
ours_paths() { local b; for b in "${OUR_BINS[@]}"; do echo "usr/bin/$b"; done; }

read_lock() {
  [ -s "$LOCK" ] || die "no lock file $LOCK: run build.sh lock"
  KPKG=$(sed -n 's/^# kernel //p' "$LOCK")
  local pkg ver sum deb got
  while read -r pkg ver sum; do
    case $pkg in ''|'#'*) continue ;; esac
    deb=$(fetch "$pkg" "$ver")
    got=$(sha256sum < "$deb" | cut -d' ' -f1)
    [ "$got" = "$sum" ] || die "$deb: sha256 $got, the lock says $sum"
    PKG_VER[$pkg]=$ver; PKG_DEB[$pkg]=$deb; PKG_DIR[$pkg]=$(unpack "$pkg" "$ver" "$deb")
  done < "$LOCK"
}

module_closure() { # KDIR(lib/modules/KVER in the unpacked kernel) -> relative .ko paths
  local kdir=$1 m path
  declare -A bypath=() done=()
  while read -r path; do
    m=$(basename "$path" .ko); m=${m//-/_}; bypath[$m]=$path
  done < "$kdir/modules.order"
  declare -A builtin=()
  while read -r path; do m=$(basename "$path" .ko); builtin[${m//-/_}]=1; done < "$kdir/modules.builtin"
  local -a work=("${MODULES[@]}")
  while [ ${#work[@]} -gt 0 ]; do
    m=${work[-1]//-/_}; unset 'work[-1]'
    [ -n "${done[$m]:-}" ] && continue; done[$m]=1
    [ -n "${builtin[$m]:-}" ] && continue
    path=${bypath[$m]:-}; [ -n "$path" ] || die "kernel module $m not in $KPKG"
    echo "$path"
    local deps
    deps=$(modinfo -F depends "$kdir/$path")
    [ -n "$deps" ] && IFS=, read -ra more <<<"$deps" && work+=("${more[@]}")
  done | sort -u
}

services_file() { # the image's services file: the repo's, adapted to the image
  local mods
  mods=$(printf '"%s", ' "${BOOT_MODULES[@]}"); mods=${mods%, }
  awk -v mods="$mods" '
    # split into blocks at [[service]]; wireguard-go (and its comment) is not in the image:
    # the kernel has WireGuard
    function flush() { if (!skip) printf "%s", buf; buf = ""; skip = 0 }
    /^(# Userspace WireGuard|\[\[service\]\])/ && !inblock { flush(); inblock = 1 }
    /^\[\[service\]\]/ { inblock = 0 }
    /^name = "wireguard-go"/ { skip = 1 }
    /^name = / { name = $3; gsub(/"/, "", name) }
    /^modules = / { $0 = "modules = [" mods "]" }
    /^device = "\/dev\/disk\/by-partlabel\/ewindow-data"/ {
      $0 = "# no udev, so no /dev/disk/by-partlabel links: the kernel name under QEMU virtio\ndevice = \"/dev/vda2\"" }
    /^after = \["wireguard-go"\]/ { next }
    # a serial line reports 0x0 characters: give the console a size
    /^exec = / && name == "serial" { $0 = "exec = [\"/bin/sh\", \"-c\", \"stty rows 24 cols 80; exec /usr/bin/ewindow-console\"]" }
    { buf = buf $0 "\n" }
    # GStreamer: registry in /run (rebuilt at each boot), PATH for the tools services run
    /^exec = / && (name == "phone" || name == "console" || name == "serial") {
      buf = buf "env = { PATH = \"/usr/sbin:/usr/bin\", GST_REGISTRY = \"/run/gstreamer-1.0/registry.bin\", XDG_CACHE_HOME = \"/run/cache\" }\n" }
    END { flush() }' "$REPO/overlays/etc/ewindow/services.toml"
}

etc_files() { # ROOTFS: the few files a root filesystem needs that no package provides
  local r=$1 commit=$2
  mkdir -p "$r/etc" "$r/root" "$r/usr/lib" "$r/usr/share/udhcpc"
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
  printf 'root:x:0:\n' > "$r/etc/group"
  printf 'root:*:0:0:99999:7:::\n' > "$r/etc/shadow"; chmod 600 "$r/etc/shadow"
  printf '/bin/sh\n' > "$r/etc/shells"
  printf 'ewindow\n' > "$r/etc/hostname"
  printf 'export PATH=/usr/sbin:/usr/bin\nexport PS1='"'"'\\h:\\w\\$ '"'"'\n' > "$r/etc/profile"
  printf 'hosts: files dns\npasswd: files\ngroup: files\nshadow: files\n' > "$r/etc/nsswitch.conf"
  printf '127.0.0.1 localhost\n::1 localhost\n' > "$r/etc/hosts"
  cat > "$r/usr/lib/os-release" <<EOF
NAME="ewindow"
ID=ewindow
PRETTY_NAME="ewindow ($commit)"
VERSION_ID=$commit
EOF
  ln -s ../usr/lib/os-release "$r/etc/os-release"
  ln -s /proc/self/mounts "$r/etc/mtab"
  ln -s /run/resolv.conf "$r/etc/resolv.conf"
  # SSH: keys and host keys live on /data (made on the device)
  mkdir -p "$r/root/.ssh"; chmod 700 "$r/root" "$r/root/.ssh"
  ln -s /data/ewindow/authorized_keys "$r/root/.ssh/authorized_keys"
  ln -s /data/ewindow/dropbear "$r/etc/dropbear"
}

make_rootfs() { # R: assemble the root filesystem from the lock
  local r=$1 p n=0 dst src
  rm -rf "$r"; mkdir -p "$r"/usr/{bin,sbin,lib,lib64} "$r"/{dev,proc,sys,run,tmp,data,mnt,var}
  ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
  ln -s /tmp "$r/var/tmp"; ln -s /run "$r/var/run"
  for p in "${!SEL[@]}"; do
    src=${F_DIR[$p]}/${F_ORIG[$p]}; dst=$r/$p
    mkdir -p "$(dirname "$dst")"
    if [ "${F_TYPE[$p]}" = l ]; then ln -sfn "${F_LINK[$p]}" "$dst"; else cp --preserve=mode "$src" "$dst"; fi
    n=$((n + 1))
  done
  for p in "${!ALT_LINK[@]}"; do ln -s "${ALT_LINK[$p]}" "$r/$p"; done
  log "  $n files from the ELF closure, ${#ALT_LINK[@]} alternatives links"
  # busybox applets for whatever no package provides (sh, udhcpc, ntpd, mount, ...)
  local a
  while read -r a; do
    a=$(canon "$a")
    case $a in usr/sbin/init|usr/linuxrc|linuxrc) continue ;; esac
    [ -e "$r/$a" ] || [ -L "$r/$a" ] || ln -s /usr/bin/busybox "$r/$a"
  done < <("$r/usr/bin/busybox" --list-full)
  # the kernel modules
  local kdir=${PKG_DIR[$KPKG]}/root/lib/modules/$KVER m
  mkdir -p "$r/usr/lib/modules/$KVER"
  while read -r m; do
    mkdir -p "$(dirname "$r/usr/lib/modules/$KVER/$m")"
    cp "$kdir/$m" "$r/usr/lib/modules/$KVER/$m"
  done < <(module_closure "$kdir")
  cp "$kdir"/modules.{order,builtin,builtin.modinfo} "$r/usr/lib/modules/$KVER/"
  depmod -b "$r" "$KVER"
  # overlays/ of the repo, then the adapted services file
  cp -a "$REPO/overlays/." "$r/"
  rm -f "$r/README.md"
  services_file > "$r/etc/ewindow/services.toml"
  etc_files "$r" "$COMMIT"
  ln -s usr/bin/ewindow-init "$r/init"
  mknod -m 600 "$r/dev/console" c 5 1   # the kernel opens it before /init: no devtmpfs yet
  # nothing of the docs/headers/locales: only closure files were copied
}

pack_initramfs() { # ROOTFS OUT(.cpio.zst)
  find "$1" -depth -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  (cd "$1" && find . -mindepth 1 -print0 | sort -z |
     cpio --null --create --format=newc --reproducible -R 0:0 --quiet) |
    zstd -q -19 -T1 > "$2"
}

make_uki() { # KERNEL INITRD CMDLINE OSREL OUT
  local stub=${BUILD_DIR[systemd-boot-efi]}/usr/lib/systemd/boot/efi/linuxx64.efi.stub
  local kernel=$1 initrd=$2 cmdline=$3 osrel=$4 out=$5 tmp
  tmp=$(dirname "$out")
  printf '%s' "$cmdline" > "$tmp/cmdline.txt"
  printf '%s' "$KVER" > "$tmp/uname.txt"
  # systemd UKI: sections after the stub's last one, each at a SectionAlignment boundary
  local align end off args=() s f
  align=$((16#$(objdump -p "$stub" | awk '$1 == "SectionAlignment" {print $2}')))
  local size vma
  read -r size vma < <(objdump -h "$stub" | awk 'NF == 7 && $1 ~ /^[0-9]+$/ {s = $3; v = $4} END {print s, v}')
  end=$(( 16#$size + 16#$vma ))
  off=$(( (end + align - 1) / align * align ))
  for s in osrel:$osrel cmdline:$tmp/cmdline.txt uname:$tmp/uname.txt linux:$kernel initrd:$initrd; do
    f=${s#*:}
    args+=(--add-section ".${s%%:*}=$f" --change-section-vma ".${s%%:*}=$(printf 0x%x $off)")
    off=$(( (off + $(stat -Lc%s "$f") + align - 1) / align * align ))
  done
  objcopy "${args[@]}" "$stub" "$out"
}

make_disk() { # UKI OUT.img
  local uki=$1 img=$2 esp=$2.esp
  local uki_mib=$(( ($(stat -c%s "$uki") + 1048575) / 1048576 ))
  local esp_mib=$(( (uki_mib + 4 + 3) / 4 * 4 )); [ $esp_mib -ge $ESP_MIN_MIB ] || esp_mib=$ESP_MIN_MIB
  rm -f "$esp" "$img"
  mkfs.vfat --invariant -i $ESP_VOLID -n EWINDOW-EFI -C "$esp" $((esp_mib * 1024)) >/dev/null
  export MTOOLS_SKIP_CHECK=1
  mmd -i "$esp" ::EFI ::EFI/BOOT
  touch -d "@$SOURCE_DATE_EPOCH" "$uki"
  mcopy -m -i "$esp" "$uki" ::EFI/BOOT/BOOTX64.EFI
  local total_mib=$((1 + esp_mib + DATA_MIB + 1))
  truncate -s ${total_mib}M "$img"
  sfdisk -q --no-reread --no-tell-kernel "$img" <<EOF
label: gpt
label-id: $DISK_GUID
unit: sectors
first-lba: 2048
start=2048, size=$((esp_mib * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$ESP_GUID, name="EFI system"
start=$(( (1 + esp_mib) * 2048 )), size=$((DATA_MIB * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$DATA_GUID, name="ewindow-data"
EOF
  dd if="$esp" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
  rm -f "$esp"
}

declare -A BUILD_DIR
prepare() { # common to build and floor: lock, packages, kernel, closure
  need_tools
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct)}
  COMMIT=$(git -C "$REPO" rev-parse --short=12 HEAD)
  step "packages from the lock (apt-get download, sha256, dpkg-deb -x)"
  read_lock
  BUILD_DIR[systemd-boot-efi]=${PKG_DIR[systemd-boot-efi]}/root
  KVER=$(cd "${PKG_DIR[$KPKG]}/root/lib/modules" && echo *)
}

cmd_build() {
  local out=${1:?build OUT}
  out=$(realpath -m "$out"); mkdir -p "$out"; local w=$out/work
  rm -rf "$w"; mkdir -p "$w"
  prepare
  stage_ours
  step "ELF closure"
  { for pkg in $(printf '%s\n' "${!PKG_DIR[@]}" | sort); do echo "$pkg ${PKG_VER[$pkg]} ${PKG_DIR[$pkg]}"; done
    echo "ewindow 0 $OURS"; } | load_index
  { root_paths rootfs; ours_paths; } | closure
  if [ ${#UNRES[@]} -gt 0 ]; then
    for so in "${!UNRES[@]}"; do echo "unresolved: $so needed by ${UNRES[$so]#* }" >&2; done
    die "the lock does not cover the ELF closure: run build.sh lock"
  fi
  step "root filesystem"
  make_rootfs "$w/rootfs"
  sizes_report "$w/rootfs" > "$out/sizes.txt"
  step "initramfs (sorted newc cpio, zstd -19)"
  pack_initramfs "$w/rootfs" "$w/initrd.cpio.zst"
  step "unified kernel image"
  make_uki "${PKG_DIR[$KPKG]}/root/boot/vmlinuz-$KVER" "$w/initrd.cpio.zst" "$CMDLINE" \
    "$w/rootfs/usr/lib/os-release" "$w/BOOTX64.EFI"
  step "disk image (GPT: ESP + data)"
  local img=$out/ewindow-$TARGET.img
  make_disk "$w/BOOTX64.EFI" "$img"
  outputs "$out" "$img"
}

outputs() { # OUT IMG
  local out=$1 img=$2 name; name=$(basename "$img")
  step "outputs"
  zstd -q -19 -T1 -f "$img" -o "$img.zst"
  bmaptool -q create -o "$img.bmap" "$img"
  {
    echo "ewindow $TARGET commit $COMMIT SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH kernel $KVER"
    echo "# packages in the image (files from the closure) and build inputs (+)"
    local p; declare -A used=()
    for p in "${!SEL[@]}"; do used[${F_PKG[$p]}]=1; done
    for p in "${!used[@]}"; do [ "$p" = ewindow ] || echo "$p ${PKG_VER[$p]}"; done | sort
    echo "+$KPKG ${PKG_VER[$KPKG]}"; echo "+systemd-boot-efi ${PKG_VER[systemd-boot-efi]}"
  } > "$out/manifest.txt"
  (cd "$out" && sha256sum "$name" "$name.zst" "$name.bmap" manifest.txt > SHA256SUMS)
  ls -l "$out" | sed 1d >&2
}

sizes_report() { # ROOTFS -> bytes per package and per directory
  local r=$1 p
  echo "# rootfs bytes by package"
  for p in "${!SEL[@]}"; do
    [ "${F_TYPE[$p]}" = f ] && echo "${F_PKG[$p]} $(stat -c%s "$r/$p")"
  done | awk '{s[$1] += $2; t += $2} END {for (k in s) printf "%10d %s\n", s[k], k; printf "%10d TOTAL(closure)\n", t}' | sort -rn
  echo "# rootfs bytes by directory (du -b, depth 4)"
  (cd "$r" && du -b --max-depth=4 usr | sort -rn | head -25)
}

cmd_floor() { # same kernel, /init = busybox sh: the floor for boot time
  local out=${1:?floor OUT}
  out=$(realpath -m "$out"); mkdir -p "$out"; local w=$out/work r
  rm -rf "$w"; mkdir -p "$w"; r=$w/rootfs
  prepare
  mkdir -p "$r"/{bin,dev,proc,sys}
  cp "${PKG_DIR[busybox-static]}/root/bin/busybox" "$r/bin/busybox"
  mknod -m 600 "$r/dev/console" c 5 1
  cat > "$r/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "FLOOR: busybox /init running, uptime $(/bin/busybox cut -d' ' -f1 /proc/uptime)"
/bin/busybox poweroff -f
EOF
  chmod 755 "$r/init"
  step "floor initramfs and UKI"
  pack_initramfs "$r" "$w/initrd.cpio.zst"
  printf 'NAME="ewindow floor"\nID=ewindow\n' > "$w/os-release"
  make_uki "${PKG_DIR[$KPKG]}/root/boot/vmlinuz-$KVER" "$w/initrd.cpio.zst" "$CMDLINE" "$w/os-release" "$w/BOOTX64.EFI"
  make_disk "$w/BOOTX64.EFI" "$out/floor.img"
  ls -l "$out" >&2
}

cmd_check() { # two builds in different directories, byte for byte
  local a=$HERE/out-check-a b=$HERE/out-check-b f rc=0
  "$0" build "$a"; "$0" build "$b"
  step "comparing"
  for f in ewindow-$TARGET.img ewindow-$TARGET.img.zst ewindow-$TARGET.img.bmap manifest.txt SHA256SUMS work/initrd.cpio.zst work/BOOTX64.EFI; do
    if cmp "$a/$f" "$b/$f"; then echo "same: $f"; else rc=1; fi
  done
  [ $rc = 0 ] && log "reproducible: every output is the same" || die "not reproducible"
}

# ---------------------------------------------------------------------------------------
# boot under QEMU (TCG) with timestamps; clean shutdown through Ctrl-Alt-Del

cmd_boot() {
  local img=${1:?boot IMG} secs=${2:-120} until=${3:-} vars port qpid t0 line
  img=$(realpath "$img")
  local run; run=$(mktemp -d /tmp/ewindow-boot.XXXXXX)
  cp /usr/share/OVMF/OVMF_VARS.fd "$run/vars.fd"
  # a boot writes /data: keep the image as built (REUSE=1 boots IMG itself: a second boot)
  if [ "${REUSE:-0}" = 1 ]; then ln -s "$img" "$run/disk.img"; else cp --sparse=always "$img" "$run/disk.img"; fi
  port=$((20000 + RANDOM % 20000))
  t0=$EPOCHREALTIME
  qemu-system-x86_64 -accel tcg -m 1024 -no-reboot \
      -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd \
      -drive if=pflash,format=raw,file="$run/vars.fd" \
      -drive file="$run/disk.img",if=virtio,format=raw \
      -nographic -serial mon:stdio -monitor tcp:127.0.0.1:$port,server,nowait ${QEMU_EXTRA:-} \
      < /dev/null > "$run/serial.log" 2>&1 &
  qpid=$!
  local qout rc
  exec {qout}< <(tail -n +1 -f --pid=$qpid "$run/serial.log")
  local deadline=$(( ${t0%.*} + secs )) sent= part=
  stamp() { printf '[%7.2f] %s\n' "$(echo "$EPOCHREALTIME - $t0" | bc)" "${1//$'\r'/}"; }
  while :; do
    line=
    if IFS= read -r -t 1 line <&"$qout"; then
      stamp "$part$line"; part=
      if [ -n "$until" ] && [[ $line == *"$until"* ]] && [ -z "$sent" ]; then deadline=$(( $(date +%s) + 5 )); fi
    else
      rc=$?
      # a timeout keeps what was read of an unfinished line (a full-screen console has no \n)
      if [ $rc -gt 128 ]; then [ -n "$line" ] && { stamp "$part$line"; part=; }
      else [ -n "$part$line" ] && stamp "$part$line"; break; fi
    fi
    if [ "$(date +%s)" -ge "$deadline" ] && [ -z "$sent" ]; then
      stamp '--- Ctrl-Alt-Del (QEMU sendkey): ewindow-init shuts down'
      exec 3<>/dev/tcp/127.0.0.1/$port
      # what tty1 shows (the VGA screen), before shutting down
      [ -n "${SCREENDUMP:-}" ] && printf 'screendump %s\n' "$SCREENDUMP" >&3 && sleep 2
      printf 'sendkey ctrl-alt-delete\n' >&3; sleep 1; exec 3>&-
      sent=1; deadline=$(( $(date +%s) + 40 ))
    elif [ "$(date +%s)" -ge "$deadline" ]; then
      stamp "--- QEMU still running 40 s after Ctrl-Alt-Del: killing it"; kill "$qpid"; break
    fi
  done
  exec {qout}<&-
  wait "$qpid" 2>/dev/null || true
  echo "--- e2fsck -fn of the data partition after the boot"
  local start; start=$(sfdisk -J "$run/disk.img" | jq '.partitiontable.partitions[1].start')
  dd if="$run/disk.img" of="$run/data.img" bs=512 skip="$start" status=none
  if cmp -s -n 1048576 "$run/data.img" /dev/zero; then echo "data partition still blank"
  else e2fsck -fn "$run/data.img" && echo "e2fsck: clean" || echo "e2fsck exit $?"; fi
  rm -rf "$run"
}

case ${1:-} in
  lock) shift; cmd_lock "$@" ;;
  build) shift; cmd_build "$@" ;;
  floor) shift; cmd_floor "$@" ;;
  check) shift; cmd_check "$@" ;;
  boot) shift; cmd_boot "$@" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
