#!/usr/bin/env bash
# A private containerd (CRI) for berth's tests and demos.
#
#   hack/runtime.sh install  apt packages + pinned containerd/runc into $BERTH_CACHE/bin
#   hack/runtime.sh up       install, start containerd under $BERTH_RUNTIME_DIR, import test images
#   hack/runtime.sh down     remove all pods through CRI, stop containerd, clean up the host
#   hack/runtime.sh images   build the test images, import them if the runtime is up
#   hack/runtime.sh restart  stop the containerd daemon alone and start it again (containers keep running)
#
# Every subcommand is idempotent and fast when there is nothing to do, and
# works without stdin (CI=true). After `up`, `source $BERTH_RUNTIME_DIR/env`.
# BERTH_STATS_PERIOD (default 1s, containerd's) sets how often CRI reads
# every container's CPU; BENCHMARKS.md says which runs set 10s.
# Nothing is shared with a system containerd: own root, state, sockets, runc
# root, shim socket dir, CNI config; NRI is off.
set -euo pipefail

CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.2
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2
# The test network. Fixed names: one private runtime per machine.
CNI_NET=berth-test
CNI_BRIDGE=berthtest0
CNI_SUBNET=10.213.0.0/16
APT_PACKAGES=(libseccomp-dev pkg-config gcc libc6-dev containernetworking-plugins iptables iproute2 busybox-static git openssh-client)

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HACK")
BERTH_CACHE=${BERTH_CACHE:-$HOME/.cache/berth}
BERTH_RUNTIME_DIR=${BERTH_RUNTIME_DIR:-/tmp/berth-runtime}
BERTH_RUNTIME_DIR=${BERTH_RUNTIME_DIR%/}
STATS_PERIOD=${BERTH_STATS_PERIOD:-1s}
[[ $STATS_PERIOD =~ ^[0-9]+(ms|s|m)$ ]] || { echo "runtime.sh: BERTH_STATS_PERIOD=$STATS_PERIOD: give a duration such as 10s" >&2; exit 2; }
BIN=$BERTH_CACHE/bin
DIR=$BERTH_RUNTIME_DIR
SOCK=$DIR/containerd.sock
PIDFILE=$DIR/containerd.pid

# Shim sockets must live in a directory of at most 42 characters (containerd
# refuses longer socket_dir values); fall back to a short path for long DIRs.
SHIM_DIR=$DIR/s
if ((${#SHIM_DIR} > 42)); then
	SHIM_DIR=/tmp/berth-s-$(printf '%s' "$DIR" | sha256sum | cut -c1-12)
fi

log() { echo "runtime.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}
# ctr would print the server's cgroup v1 deprecation warning on every call.
ctr_() { CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1 "$BIN/ctr" --address "$SOCK" --connect-timeout 2s "$@"; }

# ---------------------------------------------------------------- install

install_apt() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# version_of BINARY: the bare version ("2.4.2") the binary reports, or "".
version_of() {
	local out
	out=$("$BIN/$1" --version 2>/dev/null) || return 0
	case $1 in
	runc) grep -q '^libseccomp:' <<<"$out" && awk 'NR == 1 {print $3}' <<<"$out" ;; # only a seccomp build counts
	containerd-shim-runc-v2) awk '/Version:/ {print $2}' <<<"$out" ;;
	*) awk 'NR == 1 {print $3}' <<<"$out" ;;
	esac | sed 's/^v//; s/+.*//'
}

install_bins() {
	local b want=${CONTAINERD_VERSION#v} build=()
	command -v go >/dev/null || die "go is required to build containerd and runc"
	for b in containerd containerd-shim-runc-v2 ctr; do
		[[ $(version_of "$b") == "$want" ]] || build+=("github.com/containerd/containerd/v2/cmd/$b@$CONTAINERD_VERSION")
	done
	if ((${#build[@]})); then
		log "go install containerd $CONTAINERD_VERSION (a few minutes on a cold cache)"
		# Static pure-Go build; the tags drop snapshotters we never use (btrfs would need cgo).
		CGO_ENABLED=0 GOBIN=$BIN go install -tags "no_btrfs no_zfs no_devmapper" "${build[@]}"
	fi
	if [[ $(version_of runc) != "${RUNC_VERSION#v}" ]]; then
		log "go install runc $RUNC_VERSION"
		# cgo + libseccomp: without seccomp runc cannot apply the default profile.
		CGO_ENABLED=1 GOBIN=$BIN go install -tags seccomp "github.com/opencontainers/runc@$RUNC_VERSION"
	fi
}

cmd_install() {
	((EUID == 0)) || die "must run as root (containerd, CNI and mounts need it)"
	install_apt
	install_bins
}

# ---------------------------------------------------------------- images

# import_images loads every image of images.list that is missing or stale
# (different manifest digest) into the k8s.io namespace, where CRI looks.
import_images() {
	local have ref file digest
	have=$(ctr_ -n k8s.io images ls | awk 'NR > 1 {print $1, $3}')
	while read -r ref file digest; do
		grep -qxF "$ref $digest" <<<"$have" && continue
		log "importing $ref"
		# --base-name keeps the full name from the archive's annotation (without
		# it ctr invents "import-DATE"); unpacking (the default) is needed as
		# CRI runs from overlayfs snapshots.
		ctr_ -n k8s.io images import --base-name "${ref%:*}" "$file" >/dev/null
		# Looked for a few times: a listing right after the import has been
		# seen to miss it once, on a loaded machine.
		local try
		for try in 1 2 3 4 5; do
			ctr_ -n k8s.io images ls -q | grep -qxF "$ref" && break
			[ "$try" = 5 ] && die "import of $ref did not create it"
			sleep 1
		done
	done <"$BERTH_CACHE/images/images.list"
}

cmd_images() {
	BERTH_CACHE=$BERTH_CACHE "$HACK/images.sh"
	if is_up; then import_images; else log "runtime not up: images built, not imported"; fi
}

# ---------------------------------------------------------------- up

# containerd_pid prints the recorded PID if that process is our containerd.
containerd_pid() {
	local pid
	[[ -f $PIDFILE ]] || return 1
	pid=$(<"$PIDFILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# Guard against PID reuse: it must be containerd run with our config.
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "--config $DIR/config.toml" || return 1
	echo "$pid"
}

is_up() { containerd_pid >/dev/null && ctr_ version >/dev/null 2>&1; }

# CRI can only lower a pod's oom_score_adj with CAP_SYS_RESOURCE (bit 24).
has_cap_sys_resource() {
	local eff
	eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
	(((16#$eff >> 24) & 1))
}

write_config() {
	local restrict=false
	has_cap_sys_resource || restrict=true
	cat >"$DIR/config.toml" <<EOF
# Generated by hack/runtime.sh; edits are lost on the next "up".
version = 3
root = "$DIR/root"
state = "$DIR/state"
# Ignore the host's /etc/containerd/conf.d drop-ins (imported by default).
imports = []
# Not needed to run here (they skip or sit idle); off so they do not probe the host.
disabled_plugins = [
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.differ.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
# [debug] and [metrics] addresses stay empty: no extra listeners.

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  # exec/attach/port-forward streaming server: loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    # Imported by this script; there is nothing to pull it from.
    sandbox = "$PAUSE_IMAGE"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$DIR/certs.d"

[plugins."io.containerd.cri.v1.runtime"]
  # true when we lack CAP_SYS_RESOURCE, else every sandbox fails with
  # "failed to update /proc/self/oom_score_adj: Permission denied".
  restrict_oom_score_adj = $restrict
  # Pod netns mounts under our state dir instead of /var/run/netns.
  netns_mounts_under_state_dir = true
  # This kernel mounts cgroup v1; keep CRI's Status conditions clean anyway.
  ignore_deprecation_warnings = ["io.containerd.deprecation/cgroup-v1"]
  # CRI reads every container's and sandbox's CPU through its shim this
  # often, for the CPU rates stats report: containerd's 1s unless
  # BERTH_STATS_PERIOD says otherwise. With 500 pods on 2 CPUs, 1,000
  # reads a second keep a whole CPU busy while nothing else runs.
  stats_collect_period = "$STATS_PERIOD"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$DIR/cni/net.d"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      # Our runc (Debian's 1.1.5 cannot start sandboxes), with a private root.
      BinaryName = "$BIN/runc"
      Root = "$DIR/runc"

[plugins."io.containerd.nri.v1.nri"]
  # NRI's socket is host-global (/var/run/nri); a test runtime needs none.
  disable = true
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "$SHIM_DIR"
EOF
}

write_cni() {
	mkdir -p "$DIR/cni/net.d"
	# Debian's plugins are v1.1.1: cniVersion 1.0.0 is the newest they speak.
	# CRI adds the loopback plugin itself. IPAM state stays under $DIR.
	cat >"$DIR/cni/net.d/10-$CNI_NET.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$CNI_SUBNET"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

start_containerd() {
	local pid i
	mkdir -p "$DIR/certs.d" "$SHIM_DIR"
	write_config
	write_cni
	log "starting containerd in $DIR"
	# Own session so the caller's job control or CI cannot signal it; our bin
	# dir first on PATH so the shim and anything it spawns find our runc; fd 9
	# (the lock) closed, or containerd would hold the lock forever.
	(cd / && PATH=$BIN:$PATH exec setsid "$BIN/containerd" --config "$DIR/config.toml" \
		</dev/null >>"$DIR/containerd.log" 2>&1 9>&-) &
	pid=$!
	echo "$pid" >"$PIDFILE"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			tail -n 20 "$DIR/containerd.log" >&2
			die "containerd exited; log: $DIR/containerd.log"
		}
		ctr_ version >/dev/null 2>&1 && break
		sleep 0.1
	done
	is_up || die "containerd did not answer on $SOCK within 30s; log: $DIR/containerd.log"
	# A config mistake usually shows as a CRI plugin that did not load.
	ctr_ plugins ls | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" && $4 == "ok" {ok = 1} END {exit !ok}' ||
		die "CRI plugin not loaded; see $DIR/containerd.log"
}

cmd_up() {
	cmd_install
	BERTH_CACHE=$BERTH_CACHE "$HACK/images.sh"
	if ! is_up; then
		# Leftovers of a crashed or half-started runtime: clean, start fresh.
		if [[ -e $DIR ]]; then cmd_down; fi
		mkdir -p "$DIR"
		start_containerd
	fi
	import_images
	# berth's lock files and host key for this runtime live in its dir, so
	# that down leaves nothing behind.
	printf 'export BERTH_ADDRESS=unix://%s\nexport BERTH_RUNTIME_DIR=%s\nexport BERTH_LOCK_DIR=%s\nexport BERTH_STATE_DIR=%s\n' \
		"$SOCK" "$DIR" "$DIR/berth/locks" "$DIR/berth/state" >"$DIR/env"
	log "up: source $DIR/env"
}

# restart stops the containerd daemon alone and starts it again on the same
# state, as a package upgrade or a crash would: containers and their shims
# keep running. Tests use it to check that berth outlives a runtime restart.
cmd_restart() {
	local pid i
	pid=$(containerd_pid) || die "not up; run: $0 up"
	log "restarting containerd ($pid); containers keep running"
	kill -TERM "$pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	start_containerd
}

# ---------------------------------------------------------------- down

# Processes whose command line mentions our socket: the shims (-address SOCK).
our_shims() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -F -- "-address $SOCK " | grep -q containerd-shim &&
			echo "${p#/proc/}"
	done
	return 0
}

# stop_pids PID...: SIGTERM, wait up to 10s, then SIGKILL.
stop_pids() {
	local i
	(($#)) || return 0
	kill -TERM "$@" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$@" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$@" 2>/dev/null || true
}

# Deletes from the nat table (1) rules the bridge (ipMasq) and portmap
# plugins tagged with our network name, and the per-pod chains they jump to:
# a safety net for when CNI DEL did not run (containerd crashed, cleanup
# failed); (2) portmap's shared CNI-HOSTPORT-* chains, which outlive the last
# pod, but only when no other network's pods use them.
purge_iptables() {
	local nat ours='name: \"'$CNI_NET'\"' del chains c
	command -v iptables-save >/dev/null || return 0
	nat=$(iptables-save -t nat 2>/dev/null) || return 0
	del=$(grep '^-A ' <<<"$nat" | grep -F "$ours") || true
	[[ -z $del ]] || log "removing leftover iptables rules of $CNI_NET"
	chains=$(grep -oE -- '-j CNI-(DN-)?[0-9a-f]+$' <<<"$del" | cut -d' ' -f2) || true
	if grep -q '^:CNI-HOSTPORT-DNAT ' <<<"$nat" &&
		! grep '^-A CNI-HOSTPORT-DNAT ' <<<"$nat" | grep -qvF "$ours"; then
		del+=$'\n'$(grep -E -- '^-A [A-Z]+ .*-j CNI-HOSTPORT-(DNAT|MASQ)$' <<<"$nat") || true
		chains+=$'\n'$(grep -oE '^:CNI-HOSTPORT-[A-Z]+' <<<"$nat" | cut -c2-) || true
	fi
	[[ -n ${del//[[:space:]]/} ]] || return 0
	chains=$(sort -u <<<"$chains")
	{
		echo '*nat'
		# shellcheck disable=SC2001 # per-line anchored rewrite
		grep . <<<"$del" | sort -u | sed 's/^-A /-D /'
		for c in $chains; do echo "-F $c"; done
		for c in $chains; do echo "-X $c"; done
		echo COMMIT
	} | iptables-restore --noflush || log "warning: iptables cleanup failed"
}

cmd_down() {
	local pid root id m _ sandboxes=()
	# Sandbox IDs, for the host-global CNI cache cleanup below.
	for id in "$DIR"/state/io.containerd.grpc.v1.cri/sandboxes/*; do
		if [[ -d $id ]]; then sandboxes+=("${id##*/}"); fi
	done
	if is_up; then
		# CRI removal runs CNI DEL: frees IPs, iptables and portmap rules.
		(cd "$REPO" && go run ./hack/cricleanup -address "unix://$SOCK") ||
			log "warning: CRI cleanup failed, falling back to a forced cleanup"
	fi
	if pid=$(containerd_pid); then
		log "stopping containerd ($pid)"
		stop_pids "$pid"
	fi
	# Containers that survived (no CRI cleanup): kill and delete them with our runc.
	for root in "$DIR"/runc/*/; do
		[[ -d $root ]] || continue
		for id in $("$BIN/runc" --root "$root" list -q 2>/dev/null); do
			"$BIN/runc" --root "$root" delete -f "$id" || true
		done
	done
	# shellcheck disable=SC2046 # one PID per word
	stop_pids $(our_shims)
	# Deepest mounts first (rootfs overlays, netns bind mounts, shm).
	for _ in 1 2 3; do
		while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done < <(awk -v d="$DIR" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
	done
	purge_iptables
	if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then ip link del "$CNI_BRIDGE"; fi
	# libcni's result cache is host-global (/var/lib/cni); drop our entries
	# ("NETWORK-SANDBOXID-IFACE"; CRI's loopback network is "cni-loopback").
	for id in "${sandboxes[@]}"; do rm -f /var/lib/cni/results/*-"$id"-*; done
	rm -f /var/lib/cni/results/"$CNI_NET"-*
	rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
	# The pods' parent cgroup (cgroupfs driver); rmdir only succeeds when empty.
	rmdir /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/k8s.io 2>/dev/null || true
	# berth's own directories under /run, once the tests' tmpfs mounts are gone.
	rmdir /run/berth/tmpfs /run/berth 2>/dev/null || true
	rm -rf "$DIR" "$SHIM_DIR"
	# The lock this call holds goes too: nothing of the runtime is left.
	rm -f "$DIR.lock"
	log "down"
}

# ---------------------------------------------------------------- main

usage() {
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[[ $# -eq 1 ]] || usage
# down unmounts and deletes everything under DIR: refuse "/" and the like.
[[ $DIR =~ ^/[^/]+/[^/]+ ]] || die "BERTH_RUNTIME_DIR must be an absolute path two levels deep, not '$DIR'"
mkdir -p "$(dirname "$DIR")"
# Serialise concurrent calls (parallel test packages may all run "up").
exec 9>"$DIR.lock"
flock 9
case $1 in
install) cmd_install ;;
up) cmd_up ;;
down) cmd_down ;;
restart) cmd_restart ;;
images) cmd_images ;;
*) usage ;;
esac
