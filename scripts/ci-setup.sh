#!/usr/bin/env bash
# Ensure the system packages the test suite needs are present (Debian 12).
#
#   - PostgreSQL 15 server binaries (initdb, pg_ctl, postgres)
#   - Prometheus Alertmanager   (/usr/bin/prometheus-alertmanager)
#   - promtool                  (shipped by Debian's `prometheus` package)
#   - systemd-analyze           (shipped by Debian's `systemd` package)
#   - debootstrap and systemd-nspawn (`systemd-container`): tests/deploy/
#     test_systemd_container.py boots a real systemd in a bookworm container
#   - an unprivileged system user `watchdog-test` to run PostgreSQL as
#     (initdb refuses to run as root)
#
# Idempotent: installs only what is missing and needs no network when
# everything is already there. Services are never started by the install:
# a temporary policy-rc.d denies every start request while apt runs.
#
# Usage: sudo scripts/ci-setup.sh   (or as root)
set -euo pipefail

TEST_USER=watchdog-test
started=$SECONDS
did_something=0

log() { printf 'ci-setup: %s\n' "$*"; }
die() { printf 'ci-setup: ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "must run as root (or have sudo)"
    SUDO=(sudo)
fi

have_pg_server() {
    local d
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        return 0
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] && return 0
    done
    return 1
}

have_cmd() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/bin/$1 || -x /usr/sbin/$1 ]]; }

# Does apt know an installable candidate for this package?
has_candidate() {
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
    [[ -n $cand && $cand != "(none)" ]]
}

# --- 1. work out what is missing ------------------------------------------------
missing=()   # human-readable names
have_pg_server || missing+=(postgresql-server)
have_cmd prometheus-alertmanager || missing+=(prometheus-alertmanager)
have_cmd promtool || missing+=(promtool)
have_cmd systemd-analyze || missing+=(systemd-analyze)
have_cmd debootstrap || missing+=(debootstrap)
have_cmd systemd-nspawn || missing+=(systemd-nspawn)

if ((${#missing[@]})); then
    log "missing: ${missing[*]}"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
    log "running apt-get update"
    "${SUDO[@]}" apt-get update -qq >/dev/null || die "apt-get update failed"

    pkgs=()
    for m in "${missing[@]}"; do
        case $m in
            postgresql-server)
                if has_candidate postgresql-15; then pkgs+=(postgresql-15)
                elif has_candidate postgresql; then pkgs+=(postgresql)
                else die "no postgresql-15 / postgresql package available from apt"
                fi ;;
            prometheus-alertmanager) pkgs+=(prometheus-alertmanager) ;;
            # On Debian, promtool ships in the `prometheus` package.
            promtool) pkgs+=(prometheus) ;;
            systemd-analyze) pkgs+=(systemd) ;;
            debootstrap) pkgs+=(debootstrap) ;;
            systemd-nspawn) pkgs+=(systemd-container) ;;
        esac
    done

    # Forbid maintainer scripts from starting any service (prometheus,
    # alertmanager, the postgresql "main" cluster). Keep an existing
    # policy-rc.d (Docker images often ship one) untouched.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, created by ci-setup.sh\nexit 101\n' \
            | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        own_policy=1
        trap '[[ $own_policy == 1 ]] && "${SUDO[@]}" rm -f "$policy"' EXIT
    fi

    log "installing: ${pkgs[*]}"
    apt_log=$(mktemp -t ci-setup-apt.XXXXXX)
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends -o Dpkg::Use-Pty=0 "${pkgs[@]}" >"$apt_log" 2>&1; then
        tail -n 40 "$apt_log" >&2
        die "apt-get install failed (full log: $apt_log)"
    fi
    rm -f "$apt_log"
    did_something=1

    if [[ $own_policy == 1 ]]; then
        "${SUDO[@]}" rm -f "$policy"
        own_policy=0
    fi

    # Belt and braces: nothing we installed should be running. Tests start
    # their own throwaway servers on random ports.
    for svc in prometheus prometheus-alertmanager prometheus-node-exporter; do
        if pgrep -x "$svc" >/dev/null 2>&1; then
            log "stopping service $svc started by the package install"
            "${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
        fi
    done

    # Verify.
    have_pg_server || die "PostgreSQL server binaries still missing after install"
    have_cmd prometheus-alertmanager || die "prometheus-alertmanager still missing after install"
    have_cmd promtool || die "promtool still missing after install"
    have_cmd systemd-analyze || die "systemd-analyze still missing after install"
    have_cmd debootstrap || die "debootstrap still missing after install"
    have_cmd systemd-nspawn || die "systemd-nspawn still missing after install"
else
    log "system packages already present (postgresql server, alertmanager, promtool," \
        "systemd-analyze, debootstrap, systemd-nspawn)"
fi

# --- 2. unprivileged user for running PostgreSQL -----------------------------
if getent passwd "$TEST_USER" >/dev/null; then
    log "user $TEST_USER already exists"
else
    nologin=/usr/sbin/nologin
    [[ -x $nologin ]] || nologin=/bin/false
    "${SUDO[@]}" useradd --system --no-create-home --home-dir /nonexistent \
        --shell "$nologin" --user-group "$TEST_USER"
    log "created system user $TEST_USER"
    did_something=1
fi

if ((did_something)); then
    log "done in $((SECONDS - started))s"
else
    log "nothing to do"
fi
