#!/usr/bin/env bash
# Build the native tracer's CO-RE BPF object (sharklib/trace/bpf/tracer.bpf.o) when clang, bpftool
# and the kernel's BTF are here. Idempotent: rebuilds only when the source is newer than the object.
# Skips quietly when it cannot build (the committed object is then used as shipped).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$here/sharklib/trace/bpf"
src="$dir/tracer.bpf.c"
obj="$dir/tracer.bpf.o"
btf=/sys/kernel/btf/vmlinux
bpftool="$(command -v bpftool || ls /usr/sbin/bpftool 2>/dev/null || true)"
if ! command -v clang >/dev/null || [ -z "$bpftool" ] || [ ! -r "$btf" ]; then
  exit 0
fi
if [ -f "$obj" ] && [ "$obj" -nt "$src" ] && [ "${SHARKLIB_BPF_REBUILD:-0}" != 1 ]; then
  exit 0
fi
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
"$bpftool" btf dump file "$btf" format c > "$build/vmlinux.h" || exit 0
arch="$(uname -m)"
case "$arch" in
  x86_64) target=x86 ;;
  aarch64) target=arm64 ;;
  *) echo "10-bpf.sh: unsupported architecture $arch; not building the BPF object" >&2; exit 0 ;;
esac
if clang -g -O2 -target bpf -D__TARGET_ARCH_"$target" -I"$build" -c "$src" -o "$build/tracer.bpf.o"; then
  if command -v llvm-strip >/dev/null; then llvm-strip -g "$build/tracer.bpf.o"; fi
  mv -f "$build/tracer.bpf.o" "$obj.tmp" && mv -f "$obj.tmp" "$obj"
  echo "10-bpf.sh: built $obj"
else
  echo "10-bpf.sh: clang could not build $src; keeping the shipped object" >&2
fi
exit 0
