# shellcheck shell=bash
#
# scripts/lib/pg.sh -- PostgreSQL helpers for baton's developer and CI scripts.
#
# Source it from bash:
#
#   source scripts/lib/pg.sh
#   baton_pg_ensure   # DATABASE_URL unset -> provision/start a private cluster
#   baton_pg_stop     # stop the private cluster if it is running
#
# baton_pg_ensure
#   * DATABASE_URL set (non-empty): uses that server. Nothing is installed or
#     started; only BATON_PG_BINDIR is exported if a PostgreSQL bin dir
#     (preferably one with pgbench) can be found.
#   * DATABASE_URL unset: creates (first time) and starts a private cluster,
#     installing Debian's `postgresql` package with apt-get if the server
#     binaries are missing, creates database `baton` ($BATON_PG_DATABASE) and exports
#       DATABASE_URL=postgres://postgres@127.0.0.1:<port>/baton
#       BATON_PG_BINDIR=<bin dir holding initdb, pg_ctl, psql, pgbench...>
#
# Settings read from the environment:
#   DATABASE_URL     see above
#   BATON_PG_PORT    TCP port of the private cluster on 127.0.0.1 (default 54329)
#   BATON_PG_DIR     where the private cluster lives (default <repo>/.baton/pg)
#   BATON_PG_BINDIR  PostgreSQL bin dir to try before the auto-detected ones
#   BATON_PG_DATABASE  the database created and put in DATABASE_URL (default baton)
#
# Private cluster layout:
#   $BATON_PG_DIR/data   data directory (initdb --auth=trust -U postgres)
#   $BATON_PG_DIR/run    Unix socket directory
#   $BATON_PG_DIR/log    server log
#
# Callers are expected to run with `set -euo pipefail`. The library does not
# change shell options itself (it is sourced), and every step is checked
# explicitly, so the functions behave the same with or without errexit.
# Progress goes to stderr, prefixed with "[baton]".

BATON_REPO="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"

_BATON_PG_DEFAULT_PORT=54329
_BATON_PG_POLICY_MARKER='# baton scripts/lib/pg.sh: temporary; blocks service starts during apt-get'

_baton_pg_log() { printf '[baton] %s\n' "$*" >&2; }
_baton_pg_error() { printf '[baton] ERROR: %s\n' "$*" >&2; }

_baton_pg_dir() {
    printf '%s\n' "${BATON_PG_DIR:-$BATON_REPO/.baton/pg}"
}

_baton_pg_port() {
    local port="${BATON_PG_PORT:-$_BATON_PG_DEFAULT_PORT}"
    if [[ ! $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
        _baton_pg_error "BATON_PG_PORT must be a TCP port number (1-65535), got '$port'"
        return 1
    fi
    printf '%s\n' "$((10#$port))"
}

# Candidate PostgreSQL bin dirs, best first: $BATON_PG_BINDIR, then
# /usr/lib/postgresql/<ver>/bin from the highest version down, then
# `pg_config --bindir`. (Deliberately not whatever initdb/pg_ctl is on PATH.)
_baton_pg_candidate_bindirs() {
    local d
    local -a versions=()
    if [[ -n ${BATON_PG_BINDIR:-} ]]; then
        printf '%s\n' "$BATON_PG_BINDIR"
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [[ -d $d ]] || continue
        d=${d%/bin}
        versions+=("${d##*/}")
    done
    if ((${#versions[@]} > 0)); then
        printf '%s\n' "${versions[@]}" | sort -rV | sed -e 's|^|/usr/lib/postgresql/|' -e 's|$|/bin|'
    fi
    if command -v pg_config >/dev/null 2>&1; then
        if d=$(pg_config --bindir 2>/dev/null) && [[ -n $d ]]; then
            printf '%s\n' "$d"
        fi
    fi
    return 0
}

# Print the first candidate bin dir that contains all the given programs.
_baton_pg_find_bindir() {
    local dir tool ok
    while IFS= read -r dir; do
        [[ -n $dir ]] || continue
        ok=1
        for tool in "$@"; do
            if [[ ! -x $dir/$tool ]]; then
                ok=0
                break
            fi
        done
        if ((ok)); then
            printf '%s\n' "$dir"
            return 0
        fi
    done < <(_baton_pg_candidate_bindirs)
    return 1
}

# Print a bin dir whose server matches an existing cluster's PG_VERSION
# ("15", "9.6", ...).
_baton_pg_bindir_for_version() {
    local want=$1 dir full
    while IFS= read -r dir; do
        [[ -n $dir && -x $dir/pg_ctl && -x $dir/postgres ]] || continue
        # "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" -> "15.14"
        full=$("$dir/postgres" --version 2>/dev/null | awk '{print $3}') || continue
        if [[ $full == "$want" || $full == "$want".* ]]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done < <(_baton_pg_candidate_bindirs)
    return 1
}

# Run a command as root: directly when root, else through sudo
# (non-interactively when stdin is not a terminal).
_baton_pg_as_root() {
    if ((EUID == 0)); then
        "$@"
        return
    fi
    if command -v sudo >/dev/null 2>&1; then
        if [[ -t 0 ]]; then
            sudo -- "$@"
        else
            sudo -n -- "$@"
        fi
        return
    fi
    _baton_pg_error "need root to run '$*', but you are not root and sudo is not installed"
    return 1
}

# OS user that owns and runs the private cluster. Not root: the current user.
# Root: the owner of an existing data dir, else `postgres`, else a system user
# `baton-pg` (created on demand) -- initdb/postgres refuse to run as root.
_baton_pg_os_user() {
    local datadir=$1 owner
    if ((EUID != 0)); then
        id -un
        return
    fi
    if [[ -e $datadir/PG_VERSION ]]; then
        owner=$(stat -c %U -- "$datadir") || owner=
        if [[ -n $owner && $owner != root && $owner != UNKNOWN ]]; then
            printf '%s\n' "$owner"
            return 0
        fi
    fi
    if id -u postgres >/dev/null 2>&1; then
        printf '%s\n' postgres
        return 0
    fi
    if ! id -u baton-pg >/dev/null 2>&1; then
        _baton_pg_log "creating system user 'baton-pg' to run the private PostgreSQL cluster"
        if ! useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin baton-pg >&2; then
            _baton_pg_error "could not create system user 'baton-pg' (useradd failed)"
            return 1
        fi
    fi
    printf '%s\n' baton-pg
}

# Run a command as the cluster's OS user (from / so that the user does not
# need access to the caller's working directory).
_baton_pg_as_user() {
    local user=$1
    shift
    if ((EUID == 0)) && [[ $user != root ]]; then
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u "$user" -- "$@")
        else
            (cd / && su -s /bin/bash "$user" -c "$(printf '%q ' "$@")")
        fi
    else
        "$@"
    fi
}

# The lock (flock on $BATON_PG_DIR/.lock) serialises concurrent
# baton_pg_ensure/baton_pg_stop calls from several scripts.
_BATON_PG_LOCK_FD=
_BATON_PG_EXPORTED_URL=

_baton_pg_lock() {
    local pgdir=$1
    command -v flock >/dev/null 2>&1 || return 0
    if ! exec {_BATON_PG_LOCK_FD}>>"$pgdir/.lock"; then
        _BATON_PG_LOCK_FD=
        _baton_pg_error "cannot open lock file $pgdir/.lock"
        return 1
    fi
    if ! flock -n "$_BATON_PG_LOCK_FD"; then
        _baton_pg_log "waiting for another baton script using $pgdir ..."
        if ! flock -w 900 "$_BATON_PG_LOCK_FD"; then
            _baton_pg_unlock
            _baton_pg_error "timed out waiting for the lock on $pgdir/.lock"
            return 1
        fi
    fi
}

_baton_pg_unlock() {
    if [[ -n $_BATON_PG_LOCK_FD ]]; then
        exec {_BATON_PG_LOCK_FD}>&-
        _BATON_PG_LOCK_FD=
    fi
}

# Run a command without the lock fd, so long-lived children (the postmaster,
# services started by apt) do not keep holding the lock.
_baton_pg_detached() {
    if [[ -n $_BATON_PG_LOCK_FD ]]; then
        "$@" {_BATON_PG_LOCK_FD}>&-
    else
        "$@"
    fi
}

# apt-get install the given Debian packages (as root or through sudo).
_baton_pg_apt_install() {
    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0

    if ! command -v apt-get >/dev/null 2>&1; then
        _baton_pg_error "cannot install $* : apt-get is not available (not a Debian/Ubuntu machine?)."
        _baton_pg_error "Install PostgreSQL yourself and set BATON_PG_BINDIR to its bin dir, or set DATABASE_URL to an existing server."
        return 1
    fi
    if ((EUID != 0)) && ! command -v sudo >/dev/null 2>&1; then
        _baton_pg_error "cannot install $* : you are not root and sudo is not installed."
        _baton_pg_error "As root run: apt-get install postgresql   -- or set DATABASE_URL to an existing server."
        return 1
    fi

    _baton_pg_log "installing Debian package(s): $* (apt-get; this can take a minute or two)"

    # Keep the package from starting its own cluster on 5432 while we install
    # (it would be harmless, but can fail in containers): a policy-rc.d that
    # denies service starts, removed again afterwards. Only if none exists.
    if [[ -f $policy ]] && grep -qF "$_BATON_PG_POLICY_MARKER" "$policy" 2>/dev/null; then
        _baton_pg_as_root rm -f "$policy" || true # left over from an interrupted run
    fi
    if [[ ! -e $policy ]]; then
        # shellcheck disable=SC2016 # $1/$2 expand in the inner sh
        if _baton_pg_as_root sh -c 'printf "#!/bin/sh\n%s\nexit 101\n" "$1" >"$2" && chmod 755 "$2"' \
            sh "$_BATON_PG_POLICY_MARKER" "$policy"; then
            made_policy=1
        fi
    fi

    (
        if ((made_policy)); then
            trap '_baton_pg_as_root rm -f /usr/sbin/policy-rc.d || true' EXIT
        fi
        _baton_pg_detached _baton_pg_as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get -q -o DPkg::Lock::Timeout=300 update >&2 &&
            _baton_pg_detached _baton_pg_as_root env DEBIAN_FRONTEND=noninteractive \
                apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends "$@" >&2
    ) || rc=$?

    if ((rc != 0)); then
        _baton_pg_error "apt-get install $* failed (exit $rc)"
        return "$rc"
    fi
}

# Print the bin dir to create a new cluster with; install Debian's
# postgresql package when no server binaries can be found.
_baton_pg_server_bindir() {
    local bindir
    if bindir=$(_baton_pg_find_bindir initdb pg_ctl postgres); then
        printf '%s\n' "$bindir"
        return 0
    fi
    _baton_pg_log "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; installing Debian's postgresql"
    _baton_pg_apt_install postgresql || return 1
    if ! bindir=$(_baton_pg_find_bindir initdb pg_ctl postgres); then
        _baton_pg_error "installed postgresql, but still found no initdb/pg_ctl/postgres under /usr/lib/postgresql/*/bin"
        return 1
    fi
    if [[ ! -x $bindir/pgbench ]]; then
        _baton_pg_apt_install postgresql-contrib ||
            _baton_pg_log "warning: could not install postgresql-contrib; pgbench will be unavailable"
    fi
    printf '%s\n' "$bindir"
}

# Create the directory tree and hand it to the cluster's OS user.
_baton_pg_prepare_dirs() {
    local pgdir=$1 user=$2
    if ! (umask 022 && mkdir -p -- "$pgdir/run"); then
        _baton_pg_error "cannot create $pgdir/run"
        return 1
    fi
    if ((EUID == 0)) && [[ $user != root ]]; then
        if ! chown -R -- "$user:" "$pgdir"; then
            _baton_pg_error "cannot chown $pgdir to $user"
            return 1
        fi
    fi
    if ! _baton_pg_as_user "$user" test -w "$pgdir" ||
        ! _baton_pg_as_user "$user" test -w "$pgdir/run"; then
        _baton_pg_error "OS user '$user' cannot write to $pgdir (is a parent directory not traversable, e.g. a repo under /root with mode 700?)."
        _baton_pg_error "Move the repo, set BATON_PG_DIR to a directory '$user' can reach, or set DATABASE_URL."
        return 1
    fi
}

_baton_pg_initdb() {
    local bindir=$1 user=$2 datadir=$3 locale=C.UTF-8 locales out
    if command -v locale >/dev/null 2>&1; then
        locales=$(locale -a 2>/dev/null) || locales=
        if ! grep -qiE '^c\.utf-?8$' <<<"$locales"; then
            locale=C
        fi
    fi
    _baton_pg_log "initializing private PostgreSQL cluster in $datadir (locale $locale)"
    if out=$(_baton_pg_as_user "$user" "$bindir/initdb" -D "$datadir" --auth=trust -U postgres \
        --encoding=UTF8 --locale="$locale" 2>&1); then
        return 0
    fi
    if [[ $locale != C ]]; then
        _baton_pg_log "initdb with --locale=$locale failed; retrying with --locale=C"
        if out=$(_baton_pg_as_user "$user" "$bindir/initdb" -D "$datadir" --auth=trust -U postgres \
            --encoding=UTF8 --locale=C 2>&1); then
            return 0
        fi
    fi
    printf '%s\n' "$out" >&2
    _baton_pg_error "initdb failed (see output above)"
    return 1
}

_baton_pg_is_running() {
    local bindir=$1 user=$2 datadir=$3
    _baton_pg_as_user "$user" "$bindir/pg_ctl" status -D "$datadir" >/dev/null 2>&1
}

_baton_pg_start() {
    local bindir=$1 user=$2 pgdir=$3 port=$4 out
    local datadir="$pgdir/data" rundir="$pgdir/run" logfile="$pgdir/log"
    local opts="-p $port -k '$rundir' -c listen_addresses=127.0.0.1 -c max_connections=300"
    _baton_pg_log "starting private PostgreSQL on 127.0.0.1:$port (log: $logfile)"
    if out=$(_baton_pg_detached _baton_pg_as_user "$user" "$bindir/pg_ctl" -w -t 60 \
        -D "$datadir" -l "$logfile" start -o "$opts" 2>&1); then
        return 0
    fi
    printf '%s\n' "$out" >&2
    if [[ -r $logfile ]]; then
        _baton_pg_log "last lines of $logfile:"
        tail -n 20 -- "$logfile" >&2 || true
    fi
    _baton_pg_error "could not start the private PostgreSQL cluster. If port $port is taken by something else, set BATON_PG_PORT to a free port."
    return 1
}

# The private cluster's database name: $BATON_PG_DATABASE, else baton.
_baton_pg_database() {
    local name=${BATON_PG_DATABASE:-baton}
    if [[ ! $name =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
        _baton_pg_error "BATON_PG_DATABASE must be a lower-case identifier, got '$name'"
        return 1
    fi
    printf '%s\n' "$name"
}

_baton_pg_create_db() {
    local bindir=$1 port=$2 name=$3 psql createdb exists out
    local conninfo="host=127.0.0.1 hostaddr=127.0.0.1 port=$port user=postgres dbname=postgres sslmode=disable connect_timeout=10"
    if [[ -x $bindir/psql ]]; then
        psql=$bindir/psql
    else
        psql=$(command -v psql 2>/dev/null) || psql=
    fi
    if [[ -n $psql ]]; then
        if ! exists=$("$psql" -X -w -Atq -d "$conninfo" \
            -c "SELECT 1 FROM pg_database WHERE datname = '$name'"); then
            _baton_pg_error "cannot connect to the private PostgreSQL on 127.0.0.1:$port"
            return 1
        fi
        [[ $exists == 1 ]] && return 0
        _baton_pg_log "creating database '$name'"
        if ! out=$("$psql" -X -w -q -d "$conninfo" -c "CREATE DATABASE $name" 2>&1) &&
            [[ $out != *"already exists"* ]]; then
            printf '%s\n' "$out" >&2
            _baton_pg_error "could not create database '$name'"
            return 1
        fi
        return 0
    fi
    if [[ -x $bindir/createdb ]]; then
        createdb=$bindir/createdb
    elif ! createdb=$(command -v createdb 2>/dev/null); then
        _baton_pg_error "neither psql nor createdb found (looked in $bindir and PATH)"
        return 1
    fi
    if ! out=$(PGCONNECT_TIMEOUT=10 "$createdb" -w -h 127.0.0.1 -p "$port" -U postgres "$name" 2>&1) &&
        [[ $out != *"already exists"* ]]; then
        printf '%s\n' "$out" >&2
        _baton_pg_error "could not create database '$name'"
        return 1
    fi
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
_baton_pg_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The port to start on: the one this cluster used last (if free), else the first free one
# from $2 upwards.
_baton_pg_free_port() {
    local pgdir=$1 port=$2 saved i
    saved=$(cat "$pgdir/port" 2>/dev/null) || saved=
    if [[ $saved =~ ^[0-9]{1,5}$ ]] && ! _baton_pg_port_busy "$saved"; then
        printf '%s\n' "$saved"
        return 0
    fi
    for ((i = 0; i < 50; i++)); do
        if ! _baton_pg_port_busy "$((port + i))"; then
            ((i > 0)) && _baton_pg_log "port $port is taken; using $((port + i))"
            printf '%s\n' "$((port + i))"
            return 0
        fi
    done
    _baton_pg_error "no free port in $port-$((port + 49)); set BATON_PG_PORT"
    return 1
}

_baton_pg_ensure_locked() {
    local pgdir=$1 port=$2
    local datadir="$pgdir/data" bindir user ver running_port dbname

    if [[ -d $datadir && ! (-r $datadir && -x $datadir) ]]; then
        _baton_pg_error "$datadir exists but is not accessible to $(id -un); it belongs to another user."
        return 1
    fi

    if [[ -e $datadir/PG_VERSION ]]; then
        ver=$(<"$datadir/PG_VERSION") || return 1
        if ! bindir=$(_baton_pg_bindir_for_version "$ver"); then
            _baton_pg_error "the cluster in $datadir was created by PostgreSQL $ver, but no PostgreSQL $ver server binaries were found."
            _baton_pg_error "Install them (apt-get install postgresql-$ver), or delete $pgdir to start over with a fresh cluster."
            return 1
        fi
        user=$(_baton_pg_os_user "$datadir") || return 1
        _baton_pg_prepare_dirs "$pgdir" "$user" || return 1
    else
        if [[ -d $datadir ]] && [[ -n $(find "$datadir" -mindepth 1 -maxdepth 1 -print -quit) ]]; then
            _baton_pg_error "$datadir is not empty but is not a PostgreSQL data directory (no PG_VERSION); remove it and retry."
            return 1
        fi
        bindir=$(_baton_pg_server_bindir) || return 1
        user=$(_baton_pg_os_user "$datadir") || return 1
        _baton_pg_prepare_dirs "$pgdir" "$user" || return 1
        _baton_pg_initdb "$bindir" "$user" "$datadir" || return 1
    fi

    if _baton_pg_is_running "$bindir" "$user" "$datadir"; then
        running_port=$(sed -n 4p "$datadir/postmaster.pid" 2>/dev/null) || running_port=
        # Without an explicit BATON_PG_PORT, a running cluster keeps whatever port it has.
        if [[ -z ${BATON_PG_PORT:-} && -n $running_port ]]; then
            port=$running_port
        fi
        if [[ $running_port == "$port" ]]; then
            _baton_pg_log "private PostgreSQL already running on 127.0.0.1:$port ($datadir)"
        else
            _baton_pg_log "private PostgreSQL is running on port ${running_port:-?}, restarting it on $port"
            if ! _baton_pg_as_user "$user" "$bindir/pg_ctl" -w -t 60 -D "$datadir" stop -m fast >&2; then
                _baton_pg_error "could not stop the private PostgreSQL cluster"
                return 1
            fi
            _baton_pg_start "$bindir" "$user" "$pgdir" "$port" || return 1
        fi
    else
        # Without an explicit BATON_PG_PORT, another checkout's cluster (or anything else) on
        # the default port is no reason to fail: take the next free port and remember it.
        if [[ -z ${BATON_PG_PORT:-} ]]; then
            port=$(_baton_pg_free_port "$pgdir" "$port") || return 1
        fi
        _baton_pg_start "$bindir" "$user" "$pgdir" "$port" || return 1
        printf '%s\n' "$port" >"$pgdir/port" 2>/dev/null || true
    fi

    dbname=$(_baton_pg_database) || return 1
    _baton_pg_create_db "$bindir" "$port" "$dbname" || return 1

    if [[ ! -x $bindir/pgbench ]]; then
        _baton_pg_log "note: pgbench not found in $bindir (install postgresql-contrib for loadgen helpers)"
    fi
    export BATON_PG_BINDIR="$bindir"
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$dbname"
    _BATON_PG_EXPORTED_URL=$DATABASE_URL
    _baton_pg_log "DATABASE_URL=$DATABASE_URL"
}

baton_pg_ensure() {
    local bindir pgdir port sock rc=0

    # A DATABASE_URL exported by an earlier call in this shell still means
    # "private cluster" (so ensure -> stop -> ensure works).
    if [[ -n ${DATABASE_URL:-} && ${DATABASE_URL} != "${_BATON_PG_EXPORTED_URL:-}" ]]; then
        if bindir=$(_baton_pg_find_bindir psql pgbench) || bindir=$(_baton_pg_find_bindir psql); then
            export BATON_PG_BINDIR="$bindir"
        fi
        _baton_pg_log "DATABASE_URL is set; using that server (no private cluster)"
        return 0
    fi

    pgdir=$(_baton_pg_dir) || return 1
    port=$(_baton_pg_port) || return 1
    case $pgdir in
    *"'"* | *'"'* | *'$'* | *'`'* | *"\\"*)
        _baton_pg_error "the private cluster path '$pgdir' contains quote, \$, \` or \\ characters, which pg_ctl cannot handle; set BATON_PG_DIR to another path"
        return 1
        ;;
    *) ;;
    esac
    sock="$pgdir/run/.s.PGSQL.$port"
    if ((${#sock} > 107)); then
        _baton_pg_error "socket path $sock is too long for a Unix socket (max 107 bytes); set BATON_PG_DIR to a shorter path"
        return 1
    fi
    if ! (umask 022 && mkdir -p -- "$pgdir"); then
        _baton_pg_error "cannot create $pgdir"
        return 1
    fi

    _baton_pg_lock "$pgdir" || return 1
    _baton_pg_ensure_locked "$pgdir" "$port" || rc=$?
    _baton_pg_unlock
    return "$rc"
}

_baton_pg_stop_locked() {
    local pgdir=$1 datadir="$1/data" ver bindir user out
    ver=$(<"$datadir/PG_VERSION") || return 1
    if ! bindir=$(_baton_pg_bindir_for_version "$ver"); then
        _baton_pg_error "no PostgreSQL $ver binaries found; cannot stop the cluster in $datadir"
        return 1
    fi
    user=$(_baton_pg_os_user "$datadir") || return 1
    if ! _baton_pg_is_running "$bindir" "$user" "$datadir"; then
        _baton_pg_log "private PostgreSQL ($datadir) is not running"
        return 0
    fi
    _baton_pg_log "stopping private PostgreSQL ($datadir)"
    if ! out=$(_baton_pg_as_user "$user" "$bindir/pg_ctl" -w -t 60 -D "$datadir" stop -m fast 2>&1); then
        printf '%s\n' "$out" >&2
        _baton_pg_error "could not stop the private PostgreSQL cluster"
        return 1
    fi
    _baton_pg_log "private PostgreSQL stopped"
}

baton_pg_stop() {
    local pgdir rc=0
    pgdir=$(_baton_pg_dir) || return 1
    if [[ -d $pgdir/data && ! (-r $pgdir/data && -x $pgdir/data) ]]; then
        _baton_pg_error "$pgdir/data is not accessible to $(id -un); it belongs to another user."
        return 1
    fi
    if [[ ! -e $pgdir/data/PG_VERSION ]]; then
        _baton_pg_log "no private PostgreSQL cluster in $pgdir/data; nothing to stop"
        return 0
    fi
    _baton_pg_lock "$pgdir" || return 1
    _baton_pg_stop_locked "$pgdir" || rc=$?
    _baton_pg_unlock
    return "$rc"
}
