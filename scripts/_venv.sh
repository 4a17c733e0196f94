# Sourced by scripts/demo and scripts/test: make .venv with the project and its test tools.
# PIAUTH_VENV_EXTRAS: the project's extras to install (default test; scripts/test adds types).
# Needs only python3 (3.11+); installs python3-venv from Debian when the venv module is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    fi
    "$PYTHON" -m venv .venv
  fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -e ".[${PIAUTH_VENV_EXTRAS:-test}]" "$@" 2>&1 \
  | grep -v "^WARNING: Location" || true
