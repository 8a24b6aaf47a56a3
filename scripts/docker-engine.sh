#!/usr/bin/env bash
# Starts a private Docker engine for pm's tests (DESIGN §8) and builds the test image.
#
#   scripts/docker-engine.sh [DIR]      # DIR defaults to /tmp/pm-docker
#   eval "$(scripts/docker-engine.sh | tail -n 1)"
#
# Idempotent: installs docker.io and busybox-static only when missing (apt, as root), starts dockerd
# only when its socket does not answer, builds `pm-test-busybox:latest` only when absent. The last
# line printed is `export DOCKER_HOST=unix://DIR/docker.sock`. Progress goes to stderr.
set -euo pipefail

dir="${1:-/tmp/pm-docker}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
sock="$dir/docker.sock"
host="unix://$sock"
image="pm-test-busybox:latest"
say() { echo "docker-engine: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        say "need root for: $*"; exit 1
    fi
}

# A statically linked busybox: the dynamic one would need its libraries inside the image.
static_busybox() {
    for candidate in /bin/busybox /usr/bin/busybox; do
        if [ -x "$candidate" ] && ! LC_ALL=C ldd "$candidate" >/dev/null 2>&1; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker >/dev/null || missing+=(docker.io)
static_busybox >/dev/null || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

export DOCKER_HOST="$host"
answers() { timeout 5 docker version >/dev/null 2>&1; }

if answers; then
    say "engine already running at $host"
else
    # A dockerd of an earlier run that died leaves its pid file and socket behind.
    if [ -f "$dir/dockerd.pid" ]; then
        old="$(cat "$dir/dockerd.pid" 2>/dev/null || true)"
        if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
            say "dockerd $old is running but not answering; waiting for it"
        else
            rm -f "$dir/dockerd.pid" "$sock"
        fi
    fi
    if [ ! -f "$dir/dockerd.pid" ]; then
        say "starting dockerd under $dir (log: $dir/dockerd.log)"
        mkdir -p "$dir/data" "$dir/exec"
        as_root setsid nohup dockerd \
            --data-root "$dir/data" \
            --exec-root "$dir/exec" \
            --host "$host" \
            --pidfile "$dir/dockerd.pid" \
            --iptables=false --ip-masq=false --bridge=none \
            --storage-driver=vfs \
            >"$dir/dockerd.log" 2>&1 </dev/null &
    fi
    for _ in $(seq 60); do
        answers && break
        sleep 0.5
    done
    if ! answers; then
        say "dockerd did not answer at $host within 30 s; last lines of $dir/dockerd.log:"
        tail -n 20 "$dir/dockerd.log" >&2 || true
        exit 1
    fi
    say "engine answering at $host"
fi

if docker image inspect "$image" >/dev/null 2>&1; then
    say "image $image present"
else
    busybox="$(static_busybox)" || { say "no statically linked busybox found"; exit 1; }
    say "building $image from $busybox"
    root="$(mktemp -d)"
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/tmp" "$root/etc"
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
    echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    echo 'nogroup:x:65534:' >>"$root/etc/group"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - "$image" >/dev/null
    say "built $image"
fi

echo "export DOCKER_HOST=$host"
