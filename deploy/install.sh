#!/usr/bin/env bash
# Install or upgrade expiry-watchdog on a systemd host. Idempotent: run it again
# with a newer --version to upgrade (it migrates first, then restarts); run it
# again with nothing new and it changes nothing (the running unit is not even
# restarted). tests/deploy/test_systemd_container.py runs it in a booted systemd.
#
#   sudo deploy/install.sh --version 0.1.0                 # daemon (default)
#   sudo deploy/install.sh --wheel dist/expiry_watchdog-0.1.0-py3-none-any.whl --mode timer
#   sudo deploy/install.sh --version 0.1.0 --config my.toml --credentials /root/keys
#   deploy/install.sh --version 0.1.0 --dry-run            # print the commands, change nothing
#
# What it does, in order:
#   1. the system user and group `expiry-watchdog` (no login, no home of its own)
#   2. /etc/expiry-watchdog (config, secrets), /etc/expiry-watchdog/credentials
#      (systemd LoadCredential= source), /var/lib/expiry-watchdog (state, SQLite)
#   3. a venv in /opt/expiry-watchdog: the dependencies from deploy/requirements.lock
#      (hash-checked, binary wheels only; scripts/lock-deploy.sh makes it at release),
#      then the given release (or wheel) without dependencies
#   4. /etc/expiry-watchdog/watchdog.toml from --config, else from
#      watchdog.example.toml if absent; provider keys from --credentials DIR into
#      the credentials directory (root-only files)
#   5. `expiry-watchdog db upgrade` as the service user (migrations are additive:
#      safe while the previous version still runs)
#   6. the systemd units; enables the daemon or the timer and (re)starts it when
#      anything above changed or it is not running
#   7. prints the next steps
set -euo pipefail

readonly SERVICE_USER=expiry-watchdog
readonly PREFIX=/opt/expiry-watchdog
readonly CONF_DIR=/etc/expiry-watchdog
readonly CRED_DIR=$CONF_DIR/credentials
readonly STATE_DIR=/var/lib/expiry-watchdog
readonly CONFIG=$CONF_DIR/watchdog.toml
readonly SECRETS=$CONF_DIR/secrets.env
readonly UNIT_DIR=/etc/systemd/system
readonly ADMIN=/usr/local/sbin/expiry-watchdog-admin
# The provider keys a credentials file may be named after (systemd hands
# credentials/NAME to the units as $CREDENTIALS_DIRECTORY/WATCHDOG_NAME).
readonly CREDENTIAL_NAMES=(SMARTPAY_SECRET_KEY JPMMPS_MERCHANT_KEY JPMMPS_AUTHENTICATION_KEY
    FLITT_MERCHANT_ID FLITT_SECRET_KEY CLEARPAY_MERCHANT_ID CLEARPAY_SECRET_KEY
    PAGERDUTY_ROUTING_KEY SLACK_WEBHOOK_URL WEBHOOK_SECRET)
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly HERE

version=""
wheel=""
mode=daemon
dry_run=0
start=1
python=python3
config_src=""
credentials_src=""

usage() {
    cat <<EOF
usage: $0 (--version VERSION | --wheel PATH) [--mode daemon|timer] [--python PYTHON]
          [--config FILE] [--credentials DIR] [--no-start] [--dry-run]

  --version VERSION  install expiry-watchdog==VERSION from the package index
  --wheel PATH       install this wheel file instead (offline installs, release candidates)
  --mode daemon      run \`expiry-watchdog run\` as expiry-watchdog.service (default)
  --mode timer       run one \`expiry-watchdog scan\` per expiry-watchdog-scan.timer tick
  --python PYTHON    interpreter for the venv (>= 3.11; default python3)
  --config FILE      install FILE as $CONFIG (default: the example, only if absent)
  --credentials DIR  install each file of DIR (named after a provider key, e.g.
                     SMARTPAY_SECRET_KEY) into $CRED_DIR, mode 0600 root
  --no-start         install and enable, but do not (re)start anything
  --dry-run          print every command instead of running it; needs no root
EOF
}

die() { echo "install.sh: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --version) version=${2:?--version needs a value}; shift 2 ;;
        --wheel) wheel=${2:?--wheel needs a path}; shift 2 ;;
        --mode) mode=${2:?--mode needs daemon or timer}; shift 2 ;;
        --python) python=${2:?--python needs an interpreter}; shift 2 ;;
        --config) config_src=${2:?--config needs a file}; shift 2 ;;
        --credentials) credentials_src=${2:?--credentials needs a directory}; shift 2 ;;
        --no-start) start=0; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ -n $version || -n $wheel ]] || { usage >&2; die "say what to install: --version or --wheel"; }
[[ -z $version || -z $wheel ]] || die "--version and --wheel exclude each other"
[[ $mode == daemon || $mode == timer ]] || die "--mode must be daemon or timer, not '$mode'"
if [[ -n $wheel ]]; then
    [[ -f $wheel ]] || die "wheel $wheel does not exist"
    wheel=$(cd -- "$(dirname -- "$wheel")" && pwd)/$(basename -- "$wheel")
    package=$wheel
else
    [[ $version =~ ^[0-9]+(\.[0-9]+)*([a-z]+[0-9]*)?(\.post[0-9]+)?(\.dev[0-9]+)?$ ]] \
        || die "--version '$version' is not a release number like 0.1.0"
    package="expiry-watchdog==$version"
fi
for f in watchdog.example.toml systemd/expiry-watchdog.service \
         systemd/expiry-watchdog-scan.service systemd/expiry-watchdog-scan.timer \
         bin/expiry-watchdog-admin requirements.lock; do
    [[ -f $HERE/$f ]] || die "$HERE/$f is missing; run install.sh from a source checkout"
done
[[ -z $config_src || -f $config_src ]] || die "--config $config_src is not a file"
credential_files=()
if [[ -n $credentials_src ]]; then
    [[ -d $credentials_src ]] || die "--credentials $credentials_src is not a directory"
    for f in "$credentials_src"/*; do
        [[ -e $f ]] || continue
        name=$(basename -- "$f")
        [[ -f $f ]] || die "--credentials: $f is not a regular file"
        [[ " ${CREDENTIAL_NAMES[*]} " == *" $name "* ]] \
            || die "--credentials: '$name' is not a key the watchdog reads (one of: ${CREDENTIAL_NAMES[*]})"
        credential_files+=("$f")
    done
    ((${#credential_files[@]})) || die "--credentials $credentials_src holds no key files"
fi
if [[ $dry_run -eq 0 && $EUID -ne 0 ]]; then
    die "run as root (or add --dry-run to see what it would do)"
fi
command -v "$python" >/dev/null || die "interpreter '$python' not found (use --python)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$python is older than 3.11"

# Print and run one command; with --dry-run only print it.
run() {
    printf '+ %s\n' "$(printf '%q ' "$@" | sed 's/ $//')"
    [[ $dry_run -eq 1 ]] || "$@"
}
skip() { printf '# skip: %s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
# Anything a running unit reads at start changed: restart it at the end.
changed=0
# Install SRC as DST (mode, owner, group) unless DST already is exactly that.
put() {
    local mode=$1 owner=$2 group=$3 src=$4 dst=$5
    if [[ -f $dst ]] && cmp -s -- "$src" "$dst" \
        && [[ $(stat -c '%a %U %G' -- "$dst") == "${mode#0} $owner $group" ]]; then
        skip "$dst is up to date"
        return 0
    fi
    run install -m "$mode" -o "$owner" -g "$group" "$src" "$dst"
    changed=1
}

step "1. system user $SERVICE_USER"
if getent passwd "$SERVICE_USER" >/dev/null; then
    skip "user $SERVICE_USER exists"
else
    changed=1
    run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "expiry-watchdog service" "$SERVICE_USER"
fi

step "2. directories"
run install -d -m 0755 -o root -g root "$CONF_DIR"
run install -d -m 0700 -o root -g root "$CRED_DIR"
run install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"

step "3. $package into $PREFIX"
installed_version() { [[ -x $PREFIX/bin/expiry-watchdog ]] && "$PREFIX/bin/expiry-watchdog" --version 2>/dev/null; }
before=$(installed_version || true)
if [[ -x $PREFIX/bin/python ]]; then
    skip "venv $PREFIX exists"
else
    run "$python" -m venv "$PREFIX"
fi
# The dependencies exactly as locked (every file checked against its hash, wheels only, so
# nothing is built from source as root), then the package itself without resolving again.
run "$PREFIX/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
    --only-binary :all: --no-deps -r "$HERE/requirements.lock"
run "$PREFIX/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: \
    --no-deps "$package"
run "$PREFIX/bin/expiry-watchdog" --version
if [[ $dry_run -eq 1 || $(installed_version || true) != "$before" ]]; then
    changed=1
else
    skip "$before was installed already"
fi
run install -d -m 0755 "$(dirname -- "$ADMIN")"
put 0755 root root "$HERE/bin/expiry-watchdog-admin" "$ADMIN"

step "4. configuration and credentials"
if [[ -n $config_src ]]; then
    put 0640 root "$SERVICE_USER" "$config_src" "$CONFIG"
elif [[ -e $CONFIG ]]; then
    skip "$CONFIG exists (compare with $HERE/watchdog.example.toml after upgrades)"
else
    run install -m 0640 -o root -g "$SERVICE_USER" "$HERE/watchdog.example.toml" "$CONFIG"
    changed=1
fi
if [[ -e $SECRETS ]]; then
    skip "$SECRETS exists"
else
    run install -m 0600 -o root -g root /dev/null "$SECRETS"
fi
for f in "${credential_files[@]}"; do
    put 0600 root root "$f" "$CRED_DIR/$(basename -- "$f")"
done
# secrets.env is read by systemd (as root) for the units; the commands below run
# outside them, so hand them the one variable they may need — through the
# environment, never on a command line.
# WATCHDOG_DATABASE_OWNER_URL (PostgreSQL) lives in owner.env, never in secrets.env (the
# units load that): `db upgrade` migrates as that owner role and grants the runtime role of
# WATCHDOG_DATABASE_URL only SELECT, INSERT on audit_log.
for pair in "WATCHDOG_DATABASE_URL:$SECRETS" "WATCHDOG_DATABASE_OWNER_URL:$CONF_DIR/owner.env"; do
    var=${pair%%:*} file=${pair#*:}
    if [[ $dry_run -eq 0 && -r $file ]] && grep -q "^$var=" "$file"; then
        value=$(sed -n "s/^$var=//p" "$file" | tail -n 1)
        value=${value#[\"\']}
        export "$var=${value%[\"\']}"
        skip "$var taken from $file (not shown)"
    fi
done
export WATCHDOG_CONFIG=$CONFIG
# runuser keeps the environment; env --chdir matches the units' WorkingDirectory=.
as_service() { run env --chdir="$STATE_DIR" runuser -u "$SERVICE_USER" -- "$PREFIX/bin/expiry-watchdog" "$@"; }
as_service config check

step "5. database migrations (before the restart: they are additive)"
as_service db upgrade

step "6. systemd units ($mode)"
units_before=$changed
changed=0
for unit in expiry-watchdog.service expiry-watchdog-scan.service expiry-watchdog-scan.timer; do
    put 0644 root root "$HERE/systemd/$unit" "$UNIT_DIR/$unit"
done
if [[ $changed -eq 1 ]]; then
    run systemctl daemon-reload
else
    skip "units unchanged, no daemon-reload"
fi
[[ $units_before -eq 0 ]] || changed=1
if [[ $mode == daemon ]]; then
    active=expiry-watchdog.service
    other=expiry-watchdog-scan.timer
else
    active=expiry-watchdog-scan.timer
    other=expiry-watchdog.service
fi
if [[ $dry_run -eq 1 ]] || systemctl is-enabled --quiet "$other" 2>/dev/null \
    || systemctl is-active --quiet "$other" 2>/dev/null; then
    run systemctl disable --now "$other"
else
    skip "$other is neither enabled nor running"
fi
if [[ $dry_run -eq 0 ]] && systemctl is-enabled --quiet "$active" 2>/dev/null; then
    skip "$active is enabled"
else
    run systemctl enable "$active"
fi
if [[ $start -eq 0 ]]; then
    skip "not starting $active (--no-start)"
elif [[ $changed -eq 1 || $dry_run -eq 1 ]] || ! systemctl is-active --quiet "$active"; then
    run systemctl restart "$active"
else
    skip "$active runs this version with these settings already (not restarted)"
fi

step "7. next steps"
cat <<EOF
Installed $package as $active.

  1. Provider keys (only for the providers you use), one file per key, root-only:
       (umask 077; systemd-ask-password "Smartpay key:" > $CRED_DIR/SMARTPAY_SECRET_KEY)
     becomes \$CREDENTIALS_DIRECTORY/WATCHDOG_SMARTPAY_SECRET_KEY inside the unit.
     Names: SMARTPAY_SECRET_KEY, JPMMPS_MERCHANT_KEY, JPMMPS_AUTHENTICATION_KEY,
     FLITT_MERCHANT_ID, FLITT_SECRET_KEY, CLEARPAY_MERCHANT_ID, CLEARPAY_SECRET_KEY
     (or WATCHDOG_<NAME>=... lines in $SECRETS, mode 0600). See docs/providers.md.
  2. Review $CONFIG (base URLs, windows, on_deadline); then
       expiry-watchdog-admin config check
       expiry-watchdog-admin providers check     # moves no money
  3. systemctl restart $active
  4. Watch it:  systemctl status $active;  journalctl -u ${active%.timer} -f
     ($( [[ $mode == timer ]] && echo "the passes log under expiry-watchdog-scan.service" || echo "READY after the schema check, WATCHDOG heartbeats while passes succeed"))
  5. Alerts, upgrades and recovery: docs/runbook.md
EOF
