#!/usr/bin/env bash
# Builds the kvorum container image (docker/Dockerfile): a static release build of `kvorum` and
# `kvorum-operator`, then `docker build` FROM scratch. Prints the image's size; the last line
# of stdout is the image reference, so callers can do IMAGE=$(./scripts/build-image.sh | tail -1).
#
#   KVORUM_IMAGE=name:tag   image reference (default kvorum:<workspace version>)
#   KVORUM_IMAGE_MAX_MB=N   fail when the image is larger than N MB (default 30, the target)
#
# Static glibc, not musl: the musl target is not installed here and cannot be downloaded.
# A separate target dir (target/static) keeps the +crt-static flags from invalidating the
# ordinary target/ build cache.
set -euo pipefail
cd "$(dirname "$0")/.."

triple=x86_64-unknown-linux-gnu
target_dir=target/static
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
image=${KVORUM_IMAGE:-kvorum:${version}}
max_mb=${KVORUM_IMAGE_MAX_MB:-30}
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null | head -1)" ]; then revision="${revision}-dirty"; fi

echo "--- cargo build --release (static, ${triple})" >&2
# --target makes RUSTFLAGS apply to the binaries only, not to build scripts and proc macros
# (a static proc macro cannot be loaded by rustc).
CARGO_TARGET_DIR=$target_dir RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --release --locked --target "$triple" -p kvorum -p kvorum-operator >&2

# Stage a minimal build context: the Docker daemon would otherwise receive the whole target/.
ctx=$target_dir/image-context
rm -rf "$ctx"
mkdir -p "$ctx/bin" "$ctx/data"
cp -R docker/rootfs "$ctx/rootfs"
for bin in kvorum kvorum-operator; do
  src=$target_dir/$triple/release/$bin
  # A dynamic binary would fail at start in a FROM-scratch image (no loader, no libc).
  if readelf -l "$src" | grep -q 'Requesting program interpreter'; then
    echo "error: $src is dynamically linked; a FROM-scratch image needs a static binary" >&2
    exit 1
  fi
  # Symbols and debug info are half of each binary; panics still print (unsymbolized) traces.
  strip --strip-all -o "$ctx/bin/$bin" "$src"
done
chmod 0755 "$ctx/data" "$ctx/bin"/*

echo "--- docker build ${image}" >&2
# The legacy builder: BuildKit needs the buildx plugin, which this Docker does not ship.
DOCKER_BUILDKIT=0 docker build --quiet \
  --file docker/Dockerfile \
  --build-arg "VERSION=${version}" --build-arg "REVISION=${revision}" \
  --tag "$image" "$ctx" >&2

bytes=$(docker image inspect --format '{{.Size}}' "$image")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1000000 }')
for bin in kvorum kvorum-operator; do
  echo "    $bin: $(awk -v b="$(stat -c %s "$ctx/bin/$bin")" 'BEGIN { printf "%.1f MB", b / 1000000 }')" >&2
done
echo "image ${image}: ${mb} MB (${bytes} bytes; target < ${max_mb} MB)" >&2
if [ "$bytes" -gt $((max_mb * 1000000)) ]; then
  echo "error: image is larger than ${max_mb} MB" >&2
  exit 1
fi
echo "$image"
