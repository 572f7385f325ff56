#!/usr/bin/env bash
# bench/gpu_bundle.sh OUT.run PROGRAM... [FOLDER/...]: the gpu-check bundle (cmake/GpuCheck.cmake's target).
#
# A FOLDER (an argument that is a directory, e.g. aot-cuda: the kilnc --target=cuda program and
# its data) is copied whole to the top of the bundle, as it is.
# Copies each PROGRAM into bin/ and every shared library they load (ldd) into lib/, except
# glibc's own and the CUDA driver (the GPU machine's), strips them, and writes OUT.run: a sh
# header that unpacks the xz tarball after it into a folder (its first argument, default
# ./kiln-gpu-check) and prints that folder. bench/gpu_check.sh runs the programs from there
# with LD_LIBRARY_PATH=<folder>/lib.
set -euo pipefail
out="$1"
shift
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
folders=""
for p in "$@"; do
  if [ -d "$p" ]; then
    cp -R "$p" "$stage/"
    folders="$folders $(basename "$p")"
    continue
  fi
  cp "$p" "$stage/bin/"
  # "libfoo.so.1 => /path/libfoo.so.1 (0x...)": the resolved path of each dependency.
  ldd "$p" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libcuda.so*|libnvidia*) ;;
      *) [ -e "$stage/lib/$(basename "$lib")" ] || cp -L "$lib" "$stage/lib/" ;;
    esac
  done
done
chmod u+w "$stage"/bin/* "$stage"/lib/*
strip --strip-unneeded "$stage"/bin/* "$stage"/lib/* 2>/dev/null || true
payload="$stage/payload.tar.xz"
# shellcheck disable=SC2086
tar -C "$stage" -cf - bin lib $folders | xz -T2 -6 > "$payload"
cat > "$out" <<'EOF'
#!/bin/sh
# kiln gpu-check bundle: unpacks bin/, lib/ (and its folders) into $1 (default ./kiln-gpu-check), prints it.
dest="${1:-./kiln-gpu-check}"
mkdir -p "$dest" || exit 1
line=$(awk '/^__PAYLOAD__$/ { print NR + 1; exit }' "$0")
tail -n +"$line" "$0" | xz -d | tar -x -C "$dest" || exit 1
cd "$dest" && pwd
exit 0
__PAYLOAD__
EOF
cat "$payload" >> "$out"
chmod +x "$out"
echo "gpu-check bundle: $out ($(du -k "$out" | cut -f1) KiB; unpacked $(du -sk "$stage/bin" | cut -f1) KiB bin, $(du -sk "$stage/lib" | cut -f1) KiB lib: $(ls "$stage/lib" | tr '\n' ' '))"
