#!/usr/bin/env bash
# Builds berth's test images offline and reproducibly as OCI archives under
# $BERTH_CACHE/images, and writes images.list ("REF ARCHIVE MANIFEST-DIGEST"
# per line) for hack/runtime.sh to import.
#
# There is no registry to pull from, so every image is one layer made from
# Debian's static busybox (busybox-static); the kvmtest image's layer also has
# /usr/local/bin/kvmtest, built from hack/kvmtest. Same inputs give the same
# bytes (sorted tar, fixed owners and mtimes, gzip -n, go build -trimpath), so
# the digests only change when busybox, Go, go.mod/go.sum or these programs
# and scripts do; a key file makes a warm run a no-op.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HACK")
BERTH_CACHE=${BERTH_CACHE:-$HOME/.cache/berth}
OUT=$BERTH_CACHE/images
BUSYBOX=/bin/busybox

# file  layer  reference  cmd...   (layer base: busybox; kvmtest: base + kvmtest)
IMAGES=(
	"busybox base docker.io/library/busybox:1.36 sh"
	"pause base registry.k8s.io/pause:3.10.2 sleep 2147483647"
	"testapp base docker.io/berth/testapp:latest sh"
	"kvmtest kvmtest docker.io/berth/kvmtest:latest kvmtest kvm"
)

log() { echo "images.sh: $*" >&2; }

[[ -x $BUSYBOX ]] || {
	log "$BUSYBOX missing: apt-get install busybox-static (hack/runtime.sh install does)"
	exit 1
}

# Rebuild only when an input changed. kvmtest's binary depends on its source,
# the Go toolchain and the module's dependency versions (golang.org/x/sys).
key=$(cat "$BUSYBOX" "$HACK/images.sh" "$HACK/ociimage/main.go" "$HACK"/kvmtest/*.go \
	"$REPO/go.mod" "$REPO/go.sum" <(cd "$REPO" && go version) <(uname -m) <(printf '%s\n' "${IMAGES[@]}") |
	sha256sum | cut -d' ' -f1)
if [[ -f $OUT/key && $(<"$OUT/key") == "$key" && -f $OUT/images.list ]]; then
	exit 0
fi

log "building test images in $OUT"
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Root filesystem. Modes are set explicitly so the caller's umask cannot
# change the layer digest.
root=$work/rootfs
mkdir -p "$root"/{bin,etc,root,tmp,www}
chmod 0755 "$root"/{bin,etc,www}
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"
install -m 0755 "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
done
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$root/etc/group"
echo 'hello from berth' >"$root/www/index.html"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/www/index.html"

# Reproducible layer: sorted names, epoch mtimes, root owner, no gzip name/time.
# make_layer NAME DIR ENTRY...: $work/NAME.tar.gz from those entries of DIR.
make_layer() {
	local name=$1 dir=$2
	shift 2
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
		-C "$dir" -cf "$work/$name.tar" "$@"
	gzip -n -9 <"$work/$name.tar" >"$work/$name.tar.gz"
}
make_layer base "$root" bin etc root tmp www

# kvmtest: the same files plus a static kvmtest (see hack/kvmtest). Built in
# the module for golang.org/x/sys; -trimpath and -buildvcs=false keep paths
# and git state out of the binary, so it is reproducible.
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -buildvcs=false -o "$work/kvmtest" ./hack/kvmtest)
cp -a "$root" "$work/rootfs-kvmtest"
mkdir -p "$work/rootfs-kvmtest/usr/local/bin"
chmod 0755 "$work/rootfs-kvmtest/usr" "$work/rootfs-kvmtest/usr/local" "$work/rootfs-kvmtest/usr/local/bin"
install -m 0755 "$work/kvmtest" "$work/rootfs-kvmtest/usr/local/bin/kvmtest"
make_layer kvmtest "$work/rootfs-kvmtest" bin etc root tmp usr www

# The JSON documents and the archive are written by a stdlib-only Go program;
# building it from the file path works with or without a go.mod around it.
go build -o "$work/ociimage" "$HACK/ociimage/main.go"

: >"$work/images.list"
for spec in "${IMAGES[@]}"; do
	read -r file layer ref cmd <<<"$spec"
	# shellcheck disable=SC2086 # cmd is split into the image's Cmd on purpose
	digest=$("$work/ociimage" -layer "$work/$layer.tar.gz" -name "$ref" -o "$OUT/$file.oci.tar" -- $cmd)
	echo "$ref $OUT/$file.oci.tar $digest" >>"$work/images.list"
done
mv "$work/images.list" "$OUT/images.list"
echo "$key" >"$OUT/key"
log "built: $(cut -d' ' -f1 "$OUT/images.list" | tr '\n' ' ')"
