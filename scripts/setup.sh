#!/usr/bin/env bash
# Installs everything tinyfake needs, idempotently: Debian packages (ARM
# toolchain, QEMU) and a project virtualenv at .venv with pinned Python
# packages. Re-running it after a successful run costs a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# clang-14 + libclang-rt-14-dev: libFuzzer, ASan and UBSan for the protocol fuzz target.
# The mono packages: the part of mono-complete that Renode 1.16.1 (headless,
# `--disable-xwt`) loads to run the STM32H743 ELF (found by starting it and
# adding what failed to load); Renode itself is not in Debian (harness/renode.py).
MONO_PACKAGES="mono-runtime libmono-microsoft-csharp4.0-cil libmono-system-drawing4.0-cil libmono-posix4.0-cil
  libmono-system-xml-linq4.0-cil libmono-system-runtime-serialization4.0-cil"
APT_PACKAGES="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang-14 libclang-rt-14-dev $MONO_PACKAGES"
PYTHON=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.tinyfake-installed

need_apt=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt="$need_apt $pkg"
done
if [ -n "$need_apt" ]; then
  echo "setup: installing Debian packages:$need_apt"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need_apt >/dev/null
fi

# The stamp records what was installed; a changed requirements file or setup
# script triggers a re-install.
want=$(cat requirements.txt requirements-test.txt scripts/setup.sh pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x $VENV/bin/python ] || "$PYTHON" -m venv $VENV
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
# torch first and pinned: any other spec pulls a multi-GB CUDA build.
$PIP install "$(grep -m1 '^torch==' requirements.txt)"
$PIP install -r requirements.txt -r requirements-test.txt
# micromind's own dependencies would pull a CUDA torch.
$PIP install --no-deps micromind==0.2.1
$PIP install --no-deps -e .
echo "$want" > "$STAMP"
echo "setup: done ($VENV)"
