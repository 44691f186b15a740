#!/usr/bin/env bash
# Local container registries for berth's tests, next to the private containerd
# of hack/runtime.sh.
#
#   hack/registry.sh up       install if needed, start three registries, push the test images
#   hack/registry.sh down     stop them (by recorded PID), remove $BERTH_REGISTRY_DIR
#   hack/registry.sh env      print the path of the env file (source it)
#   hack/registry.sh retag NAME:FROM NAME:TO REGISTRY
#                             make NAME:TO point at NAME:FROM's manifest in
#                             REGISTRY (mirror, tls, auth or its host:port)
#
# The registries (Debian's docker-registry, distribution 2.8) listen on
# 127.0.0.1 only: "mirror" plain HTTP without auth, "tls" HTTPS with a
# self-signed CA, "auth" HTTPS with the same CA and htpasswd basic auth.
# Each holds library/busybox:1.36, berth/testapp:v1 (the same image),
# berth/testapp:v2 (a different one) and berth/testapp:latest (v1 when
# created; retag moves it). Every subcommand is idempotent and works
# without stdin (CI=true). Needs root and, for up, a running hack/runtime.sh.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BERTH_CACHE=${BERTH_CACHE:-$HOME/.cache/berth}
BERTH_RUNTIME_DIR=${BERTH_RUNTIME_DIR:-/tmp/berth-runtime}
BERTH_REGISTRY_DIR=${BERTH_REGISTRY_DIR:-/tmp/berth-registry}
BERTH_REGISTRY_DIR=${BERTH_REGISTRY_DIR%/}
MIRROR_PORT=${BERTH_REGISTRY_MIRROR_PORT:-5000}
TLS_PORT=${BERTH_REGISTRY_TLS_PORT:-5443}
AUTH_PORT=${BERTH_REGISTRY_AUTH_PORT:-5444}
DIR=$BERTH_REGISTRY_DIR
# Not REGISTRY_*: start_registry unsets those.
DOCKER_REGISTRY=/usr/bin/docker-registry
APT_PACKAGES=(docker-registry apache2-utils openssl)
NAMES=(mirror tls auth)
REG_USER=berth
CA=$DIR/pki/ca.pem
HOSTS_DIR=$DIR/certs.d
# Namespace for the ctr fallback of retag; never k8s.io.
RETAG_NS=berth-registry-retag

# Images to push: local name in containerd's k8s.io namespace, then the
# repository:tag in every registry. testapp:v2 must differ from v1 (the pause
# image: same busybox layer, Cmd "sleep 2147483647", another digest).
# (berth/fresh:v1, for pull progress tests, is pushed by push_fresh.)
PUSHES=(
	"docker.io/library/busybox:1.36 library/busybox:1.36"
	"docker.io/library/busybox:1.36 berth/testapp:v1"
	"registry.k8s.io/pause:3.10.2 berth/testapp:v2"
)
LATEST="docker.io/library/busybox:1.36 berth/testapp:latest"
# Registries this run started (see push_images).
STARTED=
ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'

log() { echo "registry.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# The containerd socket: BERTH_ADDRESS (unix://PATH) if set, else the runtime dir's.
SOCK=${BERTH_ADDRESS:-unix://$BERTH_RUNTIME_DIR/containerd.sock}
SOCK=${SOCK#unix://}
ctr_() { CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1 "$BERTH_CACHE/bin/ctr" --address "$SOCK" --connect-timeout 2s "$@"; }

have_curl() { command -v curl >/dev/null; }

port_of() {
	case $1 in
	mirror) echo "$MIRROR_PORT" ;;
	tls) echo "$TLS_PORT" ;;
	auth) echo "$AUTH_PORT" ;;
	*) return 1 ;;
	esac
}
hostport() { echo "127.0.0.1:$(port_of "$1")"; }
url_of() {
	if [[ $1 == mirror ]]; then echo "http://$(hostport "$1")"; else echo "https://$(hostport "$1")"; fi
}

# rcurl NAME PATH CURL-ARGS...: curl against registry NAME with its CA and
# credentials (a curl config file, so the password is not on the command line).
rcurl() {
	local name=$1 path=$2 args=(--silent --show-error --noproxy '*' --max-time 30)
	shift 2
	[[ $name == mirror ]] || args+=(--cacert "$CA")
	[[ $name != auth ]] || args+=(--config "$DIR/auth/curlrc")
	curl "${args[@]}" "$@" "$(url_of "$name")$path"
}

# ctr registry options for NAME: the hosts.toml files under certs.d carry the
# scheme and CA (--tlscacert/--skip-verify only work with --local in ctr 2.x).
ctr_reg_opts() {
	CTR_OPTS=(--hosts-dir "$HOSTS_DIR")
	[[ $1 != mirror ]] || CTR_OPTS+=(--plain-http)
	[[ $1 != auth ]] || CTR_OPTS+=(--user "$REG_USER:$(<"$DIR/auth/password")")
}

# ---------------------------------------------------------------- install

install_apt() {
	local missing=() p
	for p in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return
	log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq </dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
}

# ---------------------------------------------------------------- secrets

# make_pki: a CA and a server certificate for 127.0.0.1 and localhost
# (P-256 keys: instant to generate).
make_pki() {
	local d=$DIR/pki
	mkdir -p "$d"
	chmod 0700 "$d"
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$d/ca.key" -out "$d/ca.pem" -days 3650 -subj "/CN=berth test registry CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days 825 -out "$d/server.pem" \
		-extfile <(printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
			"basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage=serverAuth") 2>/dev/null
	rm -f "$d/server.csr"
	chmod 0644 "$d/ca.pem" "$d/server.pem"
}

# make_auth: user berth with a random password; htpasswd needs bcrypt (-B)
# for distribution, and reads the password from stdin (-i).
make_auth() {
	local d=$DIR/auth pass
	mkdir -p "$d"
	chmod 0700 "$d"
	pass=$(openssl rand -hex 16)
	htpasswd -B -i -c "$d/htpasswd" "$REG_USER" <<<"$pass" 2>/dev/null
	printf '%s\n' "$pass" >"$d/password"
	printf 'user = "%s:%s"\n' "$REG_USER" "$pass" >"$d/curlrc"
	chmod 0600 "$d/password" "$d/curlrc"
}

secrets_complete() {
	local f
	for f in pki/ca.pem pki/server.pem pki/server.key auth/htpasswd auth/password auth/curlrc; do
		[[ -s $DIR/$f ]] || return 1
	done
}

# write_hosts: hosts.toml per registry for ctr --hosts-dir, and for CRI
# (copy a directory into $BERTH_RUNTIME_DIR/certs.d).
write_hosts() {
	local name hp
	for name in "${NAMES[@]}"; do
		hp=$(hostport "$name")
		mkdir -p "$HOSTS_DIR/$hp"
		{
			echo "server = \"$(url_of "$name")\""
			echo "[host.\"$(url_of "$name")\"]"
			echo '  capabilities = ["pull", "resolve", "push"]'
			[[ $name == mirror ]] || echo "  ca = \"$CA\""
		} >"$HOSTS_DIR/$hp/hosts.toml"
	done
}

# ---------------------------------------------------------------- processes

# registry_pid NAME prints the recorded PID if that process is our registry.
registry_pid() {
	local pid f=$DIR/$1/registry.pid
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# Guard against PID reuse: it must be serving our config.
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- " serve $DIR/$1/config.yml" || return 1
	echo "$pid"
}

# port_busy PORT: something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# answers NAME: GET /v2/ gives 200, or 401 from the auth registry.
answers() {
	local name=$1 url out
	url=$(url_of "$name")/v2/
	if have_curl; then
		out=$(rcurl "$name" /v2/ --max-time 2 -o /dev/null -w '%{http_code}' 2>/dev/null) || return 1
		[[ $out == 200 || ($name == auth && $out == 401) ]]
	elif [[ $name == mirror ]] && command -v busybox >/dev/null; then
		# Debian's busybox wget segfaults with -T: bound it with timeout.
		out=$(timeout 2 busybox wget -Y off -q -O /dev/null "$url" 2>&1) && return 0
		[[ $out == *" 401 "* ]]
	else
		port_busy "$(port_of "$name")"
	fi
}

write_config() {
	local name=$1 d=$DIR/$1
	mkdir -p "$d/storage"
	{
		cat <<EOF
# Generated by hack/registry.sh; rewritten when the registry is (re)started.
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $d/storage
  delete:
    enabled: true
http:
  addr: $(hostport "$name")
  secret: $(openssl rand -hex 16)
  headers:
    X-Content-Type-Options: [nosniff]
EOF
		if [[ $name != mirror ]]; then
			cat <<EOF
  tls:
    certificate: $DIR/pki/server.pem
    key: $DIR/pki/server.key
EOF
		fi
		if [[ $name == auth ]]; then
			cat <<EOF
auth:
  htpasswd:
    realm: berth-registry
    path: $DIR/auth/htpasswd
EOF
		fi
	} >"$d/config.yml"
}

start_registry() {
	local name=$1 d=$DIR/$1 pid i port
	port=$(port_of "$name")
	port_busy "$port" && die "127.0.0.1:$port is taken by another process (Debian's own docker-registry service listens on :5000); set BERTH_REGISTRY_${name^^}_PORT"
	write_config "$name"
	log "starting $name registry on $(url_of "$name")"
	# Own session (CI job control cannot signal it), no REGISTRY_* variables
	# (they override the config file), fd 9 (the lock) closed.
	(
		cd /
		unset "${!REGISTRY_@}"
		exec setsid "$DOCKER_REGISTRY" serve "$d/config.yml" </dev/null >>"$d/registry.log" 2>&1 9>&-
	) &
	pid=$!
	echo "$pid" >"$d/registry.pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			tail -n 5 "$d/registry.log" >&2
			die "$name registry exited; log: $d/registry.log"
		}
		answers "$name" && return 0
		sleep 0.1
	done
	die "$name registry did not answer GET /v2/ within 10s; log: $d/registry.log"
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

# ---------------------------------------------------------------- images

runtime_up() { [[ -S $SOCK ]] && ctr_ version >/dev/null 2>&1; }

# local_digest REF: the manifest digest of REF in containerd's k8s.io namespace.
local_digest() { ctr_ -n k8s.io images ls "name==$1" | awk 'NR > 1 {print $3}'; }

# remote_digest NAME REPO:TAG: the registry's manifest digest, or "".
remote_digest() {
	local name=$1 repo=${2%:*} tag=${2##*:}
	rcurl "$name" "/v2/$repo/manifests/$tag" --head -H "Accept: $ACCEPT" 2>/dev/null |
		awk -F': +' 'tolower($1) == "docker-content-digest" {sub(/\r$/, "", $2); print $2}' || true
}

# push_images: every PUSHES entry to every registry, straight from the k8s.io
# image (ctr push REMOTE LOCAL: no temporary tag). Skipped when the registry
# already has the same digest (needs curl). berth/testapp:latest starts as v1
# but is only pushed when missing (without curl: when this run started the
# registry), so "up" does not undo a test's retag.
# push_fresh: berth/fresh:v1 in the mirror registry, an image of random data
# whose blobs exist nowhere else, so that pulling it really downloads (for
# pull progress tests; they remove it from the runtime afterwards). Built in
# a scratch namespace that is removed again, blobs and all.
push_fresh() {
	local ns=berth-registry-fresh work
	ctr_reg_opts mirror
	if have_curl && [[ -n $(remote_digest mirror berth/fresh:v1) ]]; then
		return
	fi
	work=$(mktemp -d)
	mkdir -p "$work/root"
	head -c 4M /dev/urandom >"$work/root/noise"
	tar -C "$work/root" --owner=0 --group=0 -cf - noise | gzip -1 >"$work/layer.tar.gz"
	(cd "$REPO" && go run ./hack/ociimage -layer "$work/layer.tar.gz" -name docker.io/berth/fresh:v1 -o "$work/fresh.oci.tar" -- true) >/dev/null
	log "pushing a fresh random image to $(hostport mirror)/berth/fresh:v1"
	ctr_ -n "$ns" images import --no-unpack --base-name docker.io/berth/fresh "$work/fresh.oci.tar" >/dev/null
	ctr_ -n "$ns" images push "${CTR_OPTS[@]}" "$(hostport mirror)/berth/fresh:v1" docker.io/berth/fresh:v1 >/dev/null
	ctr_ -n "$ns" images rm --sync docker.io/berth/fresh:v1 >/dev/null
	ctr_ namespaces rm "$ns" >/dev/null || log "warning: could not remove namespace $ns"
	rm -rf "$work"
}

push_images() {
	local name spec src dst want have
	for name in "${NAMES[@]}"; do
		ctr_reg_opts "$name"
		for spec in "${PUSHES[@]}" "$LATEST"; do
			read -r src dst <<<"$spec"
			want=$(local_digest "$src")
			[[ -n $want ]] || die "$src is not in containerd's k8s.io namespace (hack/runtime.sh up imports it)"
			if have_curl; then
				have=$(remote_digest "$name" "$dst")
				[[ $have != "$want" ]] || continue
				[[ $spec != "$LATEST" || -z $have ]] || continue
			elif [[ $spec == "$LATEST" && " $STARTED " != *" $name "* ]]; then
				continue
			fi
			log "pushing $src to $(hostport "$name")/$dst"
			ctr_ -n k8s.io images push "${CTR_OPTS[@]}" "$(hostport "$name")/$dst" "$src" >/dev/null
		done
	done
}

# ---------------------------------------------------------------- commands

cmd_up() {
	local name pid
	((EUID == 0)) || die "must run as root"
	install_apt
	runtime_up || die "the runtime is not up (no containerd on $SOCK): run hack/runtime.sh up first"
	# grep without -q: an early exit could SIGPIPE ctr and fail the pipeline.
	ctr_ -n k8s.io images ls -q | grep -xF docker.io/library/busybox:1.36 >/dev/null ||
		die "docker.io/library/busybox:1.36 is not in containerd's k8s.io namespace: run hack/runtime.sh up"
	# Leftovers without complete keys: start fresh rather than mix old and new.
	if [[ -e $DIR ]] && ! secrets_complete; then cmd_down; fi
	mkdir -p "$DIR"
	if ! secrets_complete; then
		make_pki
		make_auth
	fi
	write_hosts
	for name in "${NAMES[@]}"; do
		if pid=$(registry_pid "$name") && answers "$name"; then continue; fi
		if pid=$(registry_pid "$name"); then stop_pids "$pid"; fi
		start_registry "$name"
		STARTED+=" $name"
	done
	push_images
	push_fresh
	cat >"$DIR/env.tmp" <<EOF
export BERTH_REGISTRY_MIRROR=$(hostport mirror)
export BERTH_REGISTRY_TLS=$(hostport tls)
export BERTH_REGISTRY_AUTH=$(hostport auth)
export BERTH_REGISTRY_CA=$CA
export BERTH_REGISTRY_USER=$REG_USER
export BERTH_REGISTRY_PASSWORD=$(<"$DIR/auth/password")
export BERTH_REGISTRY_HOSTS_DIR=$HOSTS_DIR
export BERTH_REGISTRY_DIR=$DIR
EOF
	chmod 0600 "$DIR/env.tmp"
	mv "$DIR/env.tmp" "$DIR/env"
	log "up: source $DIR/env"
}

cmd_down() {
	local name pid pids=()
	for name in "${NAMES[@]}"; do
		if pid=$(registry_pid "$name"); then pids+=("$pid"); fi
	done
	if ((${#pids[@]})); then
		log "stopping registries (${pids[*]})"
		stop_pids "${pids[@]}"
	fi
	rm -rf "$DIR" "$DIR.lock" # the lock this call holds too: nothing is left
	log "down"
}

cmd_env() {
	echo "$DIR/env"
	[[ -f $DIR/env ]] || die "not up: run hack/registry.sh up"
}

# retag via the registry API: GET the manifest, PUT the same bytes under the
# new tag (same repository, so every blob is already there).
retag_curl() {
	local name=$1 repo=$2 from=$3 to=$4 tmp out code ctype
	tmp=$(mktemp)
	out=$(rcurl "$name" "/v2/$repo/manifests/$from" -H "Accept: $ACCEPT" -o "$tmp" -w '%{http_code} %{content_type}') || {
		rm -f "$tmp"
		die "GET $repo:$from failed"
	}
	read -r code ctype <<<"$out"
	[[ $code == 200 ]] || {
		rm -f "$tmp"
		die "GET $repo:$from from $name: HTTP $code"
	}
	code=$(rcurl "$name" "/v2/$repo/manifests/$to" -X PUT -H "Content-Type: $ctype" \
		--data-binary "@$tmp" -o /dev/null -w '%{http_code}') || code=error
	rm -f "$tmp"
	[[ $code == 201 ]] || die "PUT $repo:$to to $name: HTTP $code"
}

# retag through containerd (another repository, or no curl): pull into a
# scratch namespace, push under the new name, remove the namespace.
retag_ctr() {
	local name=$1 from=$2 to=$3 hp
	hp=$(hostport "$name")
	runtime_up || die "retag without curl or across repositories needs the runtime (hack/runtime.sh up)"
	ctr_reg_opts "$name"
	ctr_ -n "$RETAG_NS" images pull "${CTR_OPTS[@]}" "$hp/$from" >/dev/null
	ctr_ -n "$RETAG_NS" images push "${CTR_OPTS[@]}" "$hp/$to" "$hp/$from" >/dev/null
	ctr_ -n "$RETAG_NS" images rm --sync "$hp/$from" >/dev/null
	ctr_ namespaces rm "$RETAG_NS" >/dev/null || log "warning: could not remove namespace $RETAG_NS"
}

cmd_retag() {
	local from=$1 to=$2 reg=$3 name n
	[[ $from == *:* && $to == *:* && $from != *@* && $to != *@* ]] || die "retag: want NAME:FROM NAME:TO REGISTRY"
	name=
	for n in "${NAMES[@]}"; do
		if [[ $reg == "$n" || $reg == "$(hostport "$n")" ]]; then name=$n; fi
	done
	[[ -n $name ]] || die "retag: unknown registry '$reg' (mirror, tls, auth or their host:port)"
	[[ -f $DIR/env ]] || die "not up: run hack/registry.sh up"
	if have_curl && [[ ${from%:*} == "${to%:*}" ]]; then
		retag_curl "$name" "${from%:*}" "${from##*:}" "${to##*:}"
	else
		retag_ctr "$name" "$from" "$to"
	fi
	if have_curl; then
		log "$(hostport "$name")/$to -> $(remote_digest "$name" "$to")"
	else
		log "$(hostport "$name")/$to -> $from"
	fi
}

# ---------------------------------------------------------------- main

usage() {
	# The header comment, up to "set -euo pipefail".
	awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0" >&2
	exit 2
}

(($# >= 1)) || usage
# down deletes DIR: refuse "/" and the like.
[[ $DIR =~ ^/[^/]+/[^/]+ ]] || die "BERTH_REGISTRY_DIR must be an absolute path two levels deep, not '$DIR'"
case $1 in
env)
	(($# == 1)) || usage
	cmd_env
	exit
	;;
up | down) (($# == 1)) || usage ;;
retag) (($# == 4)) || usage ;;
*) usage ;;
esac
mkdir -p "$(dirname "$DIR")"
# Serialise concurrent calls (parallel test packages may all run "up").
exec 9>"$DIR.lock"
flock 9
case $1 in
up) cmd_up ;;
down) cmd_down ;;
retag) cmd_retag "$2" "$3" "$4" ;;
esac
