#!/usr/bin/env bash
# Emulated Raspberry Pi OS check: install this checkout on a Debian bookworm root
# filesystem of the Pi's architecture (what Raspberry Pi OS is built on), run it there under
# qemu-user, and compare every result with the same commands on this machine.
#
#   sudo tools/pi-check.sh [--arch arm64|armhf] [--cache DIR] [--models SET] [--report FILE]
#
# arm64 = Raspberry Pi OS 64-bit (the base profile: ai-edge-litert, opencv-python, numpy 2
# from the package index). armhf = Raspberry Pi OS 32-bit: numpy and OpenCV from Debian's
# packages in a venv that sees them, tflite-runtime 2.14 from the index, and a model set
# converted with --target tflite-runtime-2.14.
#
# Needs root (debootstrap, chroot, mounts), debootstrap, qemu-user-static and binfmt_misc
# (Debian: apt-get install qemu-user-static debootstrap binfmt-support), network access to
# the configured Debian mirror and the package index, and PYTHON: a Python of this
# checkout with the workstation extra (default .venv/bin/python), which builds the model
# set, the media and the wheel. The root filesystem, pip cache and model set are kept in
# the cache folder (default ~/.cache/hemiface-pi-check); a second run reuses them.
# Exit status: 0 when every required match holds, 1 when one fails, 2 on a setup error.
set -euo pipefail

ARCH=arm64
CACHE="${PI_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hemiface-pi-check}"
MODELS=""
REPORT=""
SUITE=bookworm
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$HERE/.venv/bin/python}"

die() { echo "pi-check: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH="$2"; shift 2 ;;
    --cache) CACHE="$2"; shift 2 ;;
    --models) MODELS="$(realpath "$2")"; shift 2 ;;
    --report) REPORT="$(realpath -m "$2")"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

case "$ARCH" in
  # Raspberry Pi 4/5 cores; qemu's default "max" CPU gave wrong int8 results on arm64.
  arm64) BINFMT=qemu-aarch64; CPU="${QEMU_CPU:-cortex-a72}"; EXTRA="" ;;
  # qemu-arm has no Cortex-A72; the A15 has the same 32-bit NEON/VFPv4 feature set.
  armhf) BINFMT=qemu-arm; CPU="${QEMU_CPU:-cortex-a15}"; EXTRA="[pi32]" ;;
  *) die "--arch must be arm64 or armhf" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and mounts need it)"
for tool in debootstrap chroot mount; do
  command -v "$tool" >/dev/null || die "$tool not found: apt-get install debootstrap qemu-user-static binfmt-support"
done
[ -x "$PYTHON" ] || die "$PYTHON not found: set PYTHON to a Python with hemiface[workstation]"

ROOTFS="$CACHE/$ARCH/rootfs"
RUN="$CACHE/$ARCH/run"
STAGE="$RUN/check"            # host copy of what both sides run on: set/ and media/
INSIDE=/opt/pi-check           # where the chroot sees it
REPORT="${REPORT:-$HERE/benchmarks/results/pi-check-$ARCH.md}"
mkdir -p "$CACHE/$ARCH" "$RUN"
TIMINGS="$RUN/timings.tsv"
: > "$TIMINGS"

step() {  # step NAME COMMAND...: run, time, log
  local name="$1"; shift
  local start end
  start=$(date +%s.%N)
  echo "== $name" >&2
  "$@"
  end=$(date +%s.%N)
  awk -v n="$name" -v a="$start" -v b="$end" 'BEGIN { printf "%s\t%.1f\n", n, b - a }' >> "$TIMINGS"
}

# --- binfmt: the kernel hands the Pi's binaries to qemu -------------------------------
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
    || die "cannot mount binfmt_misc (a container without that privilege?)"
fi
if ! grep -q enabled "/proc/sys/fs/binfmt_misc/$BINFMT" 2>/dev/null; then
  update-binfmts --enable "$BINFMT" 2>/dev/null || true
fi
grep -q enabled "/proc/sys/fs/binfmt_misc/$BINFMT" 2>/dev/null \
  || die "binfmt_misc has no $BINFMT entry: apt-get install qemu-user-static binfmt-support"

configured_mirror() {  # the first Debian (not security) URI this machine's apt uses
  { grep -sh '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -sh '^deb ' /etc/apt/sources.list | awk '{print $2}'; } | grep -v security | head -1
}
MIRROR="${PI_CHECK_MIRROR:-$(configured_mirror || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

# --- the root filesystem (cached) ------------------------------------------------------
if [ ! -f "$ROOTFS/.pi-check-rootfs" ]; then
  rm -rf "$ROOTFS"
  # minbase + python3: about what a Raspberry Pi OS Lite image has for Python.
  step "debootstrap $SUITE $ARCH ($MIRROR)" \
    debootstrap --arch="$ARCH" --variant=minbase --include=python3,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" > "$CACHE/$ARCH/debootstrap.log"
  touch "$ROOTFS/.pi-check-rootfs"
fi

MOUNTS=()
cleanup() {
  local i
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {  # bind SRC DEST [ro]
  mount --bind "$1" "$2"; MOUNTS+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

# qemu-user shows the host's x86 /proc/cpuinfo; the CPU detection inside LiteRT's XNNPACK
# then crashes (exit 139 in Interpreter()). Give the chroot an Arm cpuinfo like a Pi 4's.
# /sys is bound read-only so that nothing inside can write the host's (LiteRT also ran
# with an empty /sys).
CPUINFO="$CACHE/$ARCH/cpuinfo"
NPROC=$(nproc)
{
  for ((i=0; i<NPROC; i++)); do
    echo "processor	: $i"
    if [ "$ARCH" = armhf ]; then
      echo "model name	: ARMv7 Processor rev 3 (v7l)"
      echo "BogoMIPS	: 108.00"
      echo "Features	: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32"
      echo "CPU implementer	: 0x41"; echo "CPU architecture: 7"
    else
      echo "BogoMIPS	: 108.00"
      echo "Features	: fp asimd evtstrm crc32 cpuid"
      echo "CPU implementer	: 0x41"; echo "CPU architecture: 8"
    fi
    echo "CPU variant	: 0x0"; echo "CPU part	: 0xd08"; echo "CPU revision	: 3"; echo
  done
  echo "Hardware	: BCM2835"
  echo "Revision	: c03114"
  echo "Model		: Raspberry Pi 4 Model B (emulated by qemu-user, $CPU, for hemiface pi-check)"
} > "$CPUINFO"

mount -t proc proc "$ROOTFS/proc"; MOUNTS+=("$ROOTFS/proc")
bind "$CPUINFO" "$ROOTFS/proc/cpuinfo" ro
bind /sys "$ROOTFS/sys" ro
bind /dev "$ROOTFS/dev"
cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# Behind a TLS-inspecting proxy pip needs this machine's CA bundle (PIP_CERT) inside too.
PI_ENV=()
HOST_CA="${PIP_CERT:-${SSL_CERT_FILE:-}}"
if [ -n "$HOST_CA" ] && [ -f "$HOST_CA" ]; then
  cp "$HOST_CA" "$ROOTFS/etc/ssl/host-ca.pem"
  PI_ENV+=(PIP_CERT=/etc/ssl/host-ca.pem)
fi
in_pi() {  # run a shell command inside the emulated system
  QEMU_CPU="$CPU" chroot "$ROOTFS" /usr/bin/env -i QEMU_CPU="$CPU" HOME=/root LANG=C.UTF-8 \
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "${PI_ENV[@]}" /bin/sh -c "$1"
}

# --- system packages a Lite image needs (cached) ----------------------------------------
if [ "$ARCH" = armhf ]; then
  # No numpy, OpenCV or LiteRT wheels for 32-bit Arm on the package index: numpy and OpenCV
  # from Debian (the cascades are in opencv-data), tflite-runtime from the index.
  PACKAGES="python3-venv python3-numpy python3-opencv opencv-data"
else
  # opencv-python's wheel links libGL and GLib, which a minimal system lacks.
  PACKAGES="python3-venv libgl1 libglib2.0-0"
fi
if [ "$(cat "$ROOTFS/.pi-check-apt" 2>/dev/null)" != "$PACKAGES" ]; then
  step "apt-get install $PACKAGES" in_pi \
    "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES" \
    > "$CACHE/$ARCH/apt.log"
  echo "$PACKAGES" > "$ROOTFS/.pi-check-apt"
fi

# --- the wheel, the model set and the media (host) ---------------------------------------
rm -rf "$RUN/wheel"
step "build the wheel" "$PYTHON" -m pip wheel -q --no-deps -w "$RUN/wheel" "$HERE" >/dev/null
WHEEL="$(ls "$RUN/wheel"/hemiface-*.whl)"
SET="$MODELS"
if [ -z "$SET" ]; then
  SET="$CACHE/$ARCH/set"
  if [ ! -f "$SET/hemiface.json" ]; then
    TARGET=""; [ "$ARCH" = armhf ] && TARGET="--target tflite-runtime-2.14"
    # shellcheck disable=SC2086
    step "make the model set" "$PYTHON" "$HERE/tools/pi_check.py" make-set "$SET" $TARGET > "$CACHE/$ARCH/set.log"
  fi
fi
if [ ! -f "$CACHE/media/video_ffv1.avi" ]; then
  step "make the media" "$PYTHON" "$HERE/tools/pi_check.py" make-media "$CACHE/media"
fi
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -r "$SET" "$STAGE/set" && cp -r "$CACHE/media" "$STAGE/media"
rm -rf "$ROOTFS$INSIDE" && mkdir -p "$ROOTFS$INSIDE"
cp -r "$STAGE" "$ROOTFS$INSIDE/check" && cp "$WHEEL" "$ROOTFS$INSIDE/"

# --- install in the emulated system: the base profile from the wheel ---------------------
VENV_FLAGS=""; [ "$ARCH" = armhf ] && VENV_FLAGS="--system-site-packages"
if [ ! -x "$ROOTFS/opt/venv/bin/python" ]; then
  step "python3 -m venv $VENV_FLAGS (emulated)" in_pi "python3 -m venv $VENV_FLAGS /opt/venv"
fi
# The wheel's version does not change between checkouts: reinstall hemiface itself every
# run, its dependencies only when missing.
step "pip install hemiface$EXTRA from the wheel (emulated)" in_pi \
  "/opt/venv/bin/pip install -q --disable-pip-version-check '$INSIDE/$(basename "$WHEEL")$EXTRA' \
   && /opt/venv/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps '$INSIDE/$(basename "$WHEEL")'"

# --- the same commands on both sides ------------------------------------------------------
suite() {  # suite SIDE RUNNER: RUNNER runs a shell command line in the check folder
  local side="$1" runner="$2" h="hemiface" out="results"
  $runner "mkdir -p $out && rm -rf .hemiface-cache"
  step "$side: info --models (first use: times the formats)" \
    $runner "HEMIFACE_CACHE_DIR=.hemiface-cache $h info --models set --json > $out/info.json"
  step "$side: info --models (cached)" \
    $runner "HEMIFACE_CACHE_DIR=.hemiface-cache $h info --models set > $out/info-cached.txt"
  for fmt in float32 int8; do
    for kind in png jpeg; do
      step "$side: predict --format $fmt ($kind)" \
        $runner "$h predict media/$kind --models set --format $fmt --json > $out/predict-$fmt-$kind.jsonl"
    done
  done
  step "$side: predict small faces (the face search)" \
    $runner "$h predict media/far --models set --crop face --format float32 --json > $out/predict-float32-far.jsonl"
  step "$side: predict small faces --detector full" \
    $runner "$h predict media/far --models set --crop face --detector full --format int8 --json > $out/predict-int8-far-full.jsonl"
  step "$side: predict (format chosen here)" \
    $runner "HEMIFACE_CACHE_DIR=.hemiface-cache $h predict media/png --models set > $out/predict-default.txt"
  for fmt in float32 int8; do
    step "$side: run --video FFV1 --format $fmt" \
      $runner "$h run --models set --video media/video_ffv1.avi --headless --format $fmt > $out/run-blazeface-$fmt-ffv1.jsonl"
  done
  step "$side: run --video FFV1 --detector haar" \
    $runner "$h run --models set --video media/video_ffv1.avi --headless --format float32 --detector haar > $out/run-haar-float32-ffv1.jsonl"
  step "$side: run --video mp4v" \
    $runner "$h run --models set --video media/video_mp4v.mp4 --headless --format float32 > $out/run-blazeface-float32-mp4v.jsonl"
  step "$side: run --video mp4v --detector haar" \
    $runner "$h run --models set --video media/video_mp4v.mp4 --headless --format float32 --detector haar > $out/run-haar-float32-mp4v.jsonl"
}
on_host() { (cd "$STAGE" && PATH="$(dirname "$PYTHON"):$PATH" sh -c "$1"); }
on_pi() { in_pi "cd $INSIDE/check && PATH=/opt/venv/bin:\$PATH && $1"; }
suite host on_host
suite "emulated $ARCH" on_pi
rm -rf "$RUN/host" "$RUN/pi"
cp -r "$STAGE/results" "$RUN/host" && cp -r "$ROOTFS$INSIDE/check/results" "$RUN/pi"

# --- compare and report ------------------------------------------------------------------
mkdir -p "$(dirname "$REPORT")"
QEMU_VERSION="$(qemu-"${BINFMT#qemu-}"-static --version 2>/dev/null | head -1 | sed 's/ version / /')"
status=0
"$PYTHON" "$HERE/tools/pi_check.py" compare "$RUN/host" "$RUN/pi" --report "$REPORT" \
  --timings "$TIMINGS" --title "Emulated Raspberry Pi OS $ARCH ($SUITE, $QEMU_VERSION, $CPU) vs this machine" \
  || status=$?
cat "$REPORT"
exit "$status"
