# Shared by the quick-start scripts: a Python >= 3.11 virtual environment in .venv,
# with Debian's system packages installed first when they are missing (python3-venv).
# Sourced, not run: it sets PYTHON and VENV for the caller.

set -euo pipefail

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "irtool: need root (or sudo) to install: $*" >&2
        exit 1
    fi
}

apt_install() {
    # Only when something is missing, so a prepared machine needs no network.
    [ "$#" -gt 0 ] || return 0
    if ! command -v apt-get >/dev/null; then
        echo "irtool: please install these packages with your system's package manager: $*" >&2
        exit 1
    fi
    echo "irtool: installing system packages: $*" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null; then
    apt_install python3
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "irtool: needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian splits venv and ensurepip out of python3.
    apt_install "python3-venv"
fi


VENV=${IRTOOL_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
