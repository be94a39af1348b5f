#!/usr/bin/env bash
# Prints the path of a Deno binary at or above the pinned version, installing it
# from the npm registry into .tools/ when none is on PATH. Used by every script so
# that a machine with only Node/npm (or only Deno) can run the project.
set -euo pipefail
PINNED="2.9.6"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
local_deno="$root/.tools/node_modules/.bin/deno"

version_ok() { # $1 = deno binary
  local v
  v="$("$1" --version 2>/dev/null | awk 'NR==1{print $2}')" || return 1
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$PINNED" "$v" | sort -V | head -n1)" = "$PINNED" ]
}

for candidate in "${DENO_BIN:-}" "$(command -v deno 2>/dev/null || true)" "$local_deno"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && version_ok "$candidate"; then
    echo "$candidate"; exit 0
  fi
done

if ! command -v npm >/dev/null 2>&1; then
  echo "ensure-deno: no Deno >= $PINNED on PATH and no npm to install it; install Deno $PINNED" >&2
  exit 1
fi
echo "ensure-deno: installing deno@$PINNED from npm into .tools/ ..." >&2
mkdir -p "$root/.tools"
[ -f "$root/.tools/package.json" ] || echo '{"private":true}' > "$root/.tools/package.json"
npm install --prefix "$root/.tools" --no-audit --no-fund --silent "deno@$PINNED" >&2
version_ok "$local_deno" || { echo "ensure-deno: installed deno does not run" >&2; exit 1; }
echo "$local_deno"
