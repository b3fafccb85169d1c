# shellcheck shell=bash
# Shared by tests/directory/slapd and tests/directory/samba-ad (sourced, never run).
# The caller sets PROG (its name, for messages) before sourcing.

APT_LOCK=/tmp/kura-directory-apt.lock
MARKER=.kura-directory

die() {
    echo "$PROG: $*" >&2
    exit 1
}

usage_exit() {
    echo "$USAGE" >&2
    exit 2
}

# Prints the packages among "$@" that dpkg does not have fully installed.
missing_packages() {
    local p status
    for p in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || echo "$p"
    done
}

# Installs the missing ones among "$@" without letting their postinst start services.
# $DEBCONF_PRESEED (debconf-set-selections lines) is applied first.
apt_install() {
    local -a missing
    mapfile -t missing < <(missing_packages "$@")
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) -eq 0 ]] || die "packages missing: ${missing[*]}; run as root: $0 install"
    command -v flock >/dev/null || die "flock is missing (apt-get install util-linux)"
    (
        flock -w 600 9 || die "could not lock $APT_LOCK within 10 minutes"
        mapfile -t missing < <(missing_packages "$@")
        ((${#missing[@]} == 0)) && exit 0
        echo "$PROG: installing ${missing[*]}" >&2
        made_policy=0
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            made_policy=1
        fi
        # shellcheck disable=SC2317  # runs from the trap
        cleanup() { ((made_policy)) && rm -f /usr/sbin/policy-rc.d; return 0; }
        trap cleanup EXIT
        if [[ -n ${DEBCONF_PRESEED:-} ]]; then
            printf '%s\n' "$DEBCONF_PRESEED" | debconf-set-selections
        fi
        export DEBIAN_FRONTEND=noninteractive
        log=$(mktemp /tmp/kura-directory-apt.XXXXXX)
        apt_get() {
            apt-get install -y -q --no-install-recommends \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                "${missing[@]}" >"$log" 2>&1
        }
        # A fresh machine may have no package lists yet: update once and retry.
        if ! apt_get; then
            apt-get update -q >>"$log" 2>&1 || true
            if ! apt_get; then
                tail -n 20 "$log" >&2
                die "apt-get install ${missing[*]} failed (log: $log); run as root: apt-get update && $0 install"
            fi
        fi
        rm -f "$log"
    ) 9>"$APT_LOCK"
}

# Stops and disables a system service that a package may have started despite policy-rc.d.
quiet_system_service() {
    local svc=$1
    if [[ -d /run/systemd/system ]]; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
        systemctl mask "$svc" >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/$svc ]]; then
        /etc/init.d/"$svc" stop >/dev/null 2>&1 || true
        update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
}

# A random TCP port in 20000-59999 that nothing listens on (the caller retries if a race loses it).
free_port() {
    local port used tries=0
    used=$(ss -Htan 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}' | sort -u)
    while ((tries++ < 200)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        grep -qx "$port" <<<"$used" || { echo "$port"; return 0; }
    done
    die "no free TCP port found"
}

# Makes STATE_DIR empty, refusing to wipe a directory these fixtures did not create.
fresh_state_dir() {
    local dir=$1
    [[ -n $dir && $dir != / ]] || die "refusing state dir '$dir'"
    if [[ -d $dir && -n $(ls -A "$dir") && ! -e $dir/$MARKER ]]; then
        die "$dir is not empty and was not made by a directory fixture; refusing to wipe it"
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    touch "$dir/$MARKER"
}

# Test PKI in $1: ca.pem/ca.key (signs server.pem/server.key for 127.0.0.1 and localhost) and
# other-ca.pem, an unrelated CA. EC P-256: fast to generate and accepted by webpki.
make_test_pki() {
    local dir=$1 name cn
    cat >"$dir/ca.cnf" <<'EOF2'
[req]
distinguished_name = dn
x509_extensions = v3_ca
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF2
    cat >"$dir/server.ext" <<'EOF2'
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF2
    for name in ca other-ca; do
        cn="Kura test CA"
        [[ $name == other-ca ]] && cn="Kura unrelated test CA"
        openssl req -x509 -new -config "$dir/ca.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -nodes -sha256 -days 30 -subj "/O=Kura tests/CN=$cn" \
            -keyout "$dir/$name.key" -out "$dir/$name.pem" 2>"$dir/openssl.log" \
            || { cat "$dir/openssl.log" >&2; die "openssl could not make the test CA $name"; }
    done
    if ! openssl req -new -config "$dir/ca.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -sha256 -subj "/O=Kura tests/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" \
        2>"$dir/openssl.log" \
        || ! openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 30 -sha256 -extfile "$dir/server.ext" -out "$dir/server.pem" \
            2>>"$dir/openssl.log"; then
        cat "$dir/openssl.log" >&2
        die "openssl could not make the server certificate"
    fi
    chmod 600 "$dir"/*.key
    openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null \
        || die "the generated server certificate does not verify against $dir/ca.pem"
}

# Reads KEY from STATE_DIR/env (the part after the first '=').
env_get() {
    local dir=$1 key=$2 line
    [[ -r $dir/env ]] || die "$dir/env is missing; was '$0 start $dir' run?"
    while IFS= read -r line; do
        if [[ ${line%%=*} == "$key" ]]; then
            printf '%s\n' "${line#*=}"
            return 0
        fi
    done <"$dir/env"
    die "$key is not in $dir/env"
}

# PID from STATE_DIR/pid if that process still runs and its command is $2; else fails.
running_pid() {
    local dir=$1 comm=$2 pid
    [[ -r $dir/pid ]] || return 1
    pid=$(<"$dir/pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(ps -o comm= -p "$pid" 2>/dev/null) == "$comm" ]] || return 1
    echo "$pid"
}

# Stops the server of STATE_DIR: TERM (and CONT, in case it is paused), KILL after 5 s.
# With group=1 the whole process group is signalled (the server was started with setsid).
stop_server() {
    local dir=$1 comm=$2 group=${3:-0} pid target i
    pid=$(running_pid "$dir" "$comm") || { rm -f "$dir/pid"; return 0; }
    target=$pid
    ((group)) && target=-$pid
    kill -TERM -- "$target" 2>/dev/null || true
    kill -CONT -- "$target" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        group_alive "$pid" "$group" || break
        sleep 0.05
    done
    if group_alive "$pid" "$group"; then
        kill -KILL -- "$target" 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do
            group_alive "$pid" "$group" || break
            sleep 0.05
        done
    fi
    group_alive "$pid" "$group" && die "server pid $pid (state in $dir) does not stop"
    rm -f "$dir/pid"
}

group_alive() {
    local pid=$1 group=$2
    # Zombies count as stopped: PID 1 may reap the detached server late.
    if ((group)); then
        # shellcheck disable=SC2009  # pgrep cannot leave zombies out
        ps -o stat= -g "$pid" 2>/dev/null | grep -qv '^Z'
    else
        local st
        st=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
        [[ $st != Z* ]]
    fi
}

# pause/resume: SIGSTOP/SIGCONT to the server (its process group with group=1).
signal_server() {
    local dir=$1 comm=$2 group=$3 sig=$4 pid
    pid=$(running_pid "$dir" "$comm") || die "no running server for $dir"
    if ((group)); then
        kill "-$sig" -- "-$pid"
    else
        kill "-$sig" "$pid"
    fi
}

# Last lines of a log, for a start that failed.
log_tail() {
    [[ -r $1 ]] && { echo "--- last lines of $1:"; tail -n "${2:-30}" "$1"; } >&2
    return 0
}
