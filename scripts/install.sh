#!/usr/bin/env bash
# Installs Edge Bridge as a systemd service on an edge host.
#
#   scripts/install.sh [--binary PATH] [--root DIR]
#
#   --binary PATH  the edge-bridge binary for this host (default: dist/edge-bridge of this checkout)
#   --root DIR     install under DIR instead of / : a scratch root for a test or an image. The user goes
#                  into DIR/etc/passwd and DIR/etc/group; systemctl is not called.
#   -h, --help     show this help
#
# Puts in place, each only when it differs from what is there:
#   /usr/local/bin/edge-bridge                  the binary (replaced atomically; checked with `version` first)
#   /usr/lib/sysusers.d/edge-bridge.conf        the system user and group edge-bridge (systemd-sysusers)
#   /etc/systemd/system/edge-bridge.service     the unit (local changes belong in `systemctl edit edge-bridge`)
#   /etc/edge-bridge/config.yaml                the config, root:edge-bridge 0640: written only when there
#                                               is none; an existing one is never touched, and a differing
#                                               shipped one goes to config.yaml.new beside it
# Running it again changes nothing. It does not start the service: see the last lines it prints.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }

root="/"
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --root=*) root="${1#--root=}"; shift ;;
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --binary=*) binary="${1#--binary=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

deploy="$here/../deploy"
[ -f "$deploy/edge-bridge.service" ] || die "cannot find deploy/ beside scripts/ (looked in $deploy)"
[ -n "$binary" ] || binary="$here/../dist/edge-bridge"
[ -f "$binary" ] || die "no binary at $binary: name it with --binary PATH (build one with: deno task compile)"
[ -d "$root" ] || die "--root $root is not a directory"
root="$(cd "$root" && pwd)"
prefix="${root%/}" # "" for /, so "$prefix/etc" is /etc
# The binary must run on this host (right architecture, not truncated) before anything is replaced.
out="$("$binary" version 2>&1)" || die "$binary does not run here ('$binary version' failed): $out"
echo "install.sh: installing $(head -n 1 <<<"$out") into $root"

am_root() { [ "$(id -u)" = 0 ]; }

# Sets mode and (as root) owner uid:gid on a path, only where they differ, so a rerun touches nothing.
set_attrs() { # path mode uid gid
  [ "$(stat -c %a "$1")" = "$2" ] || chmod "$2" "$1"
  if am_root && [ "$(stat -c %u:%g "$1")" != "$3:$4" ]; then chown "$3:$4" "$1"; fi
}

# Copies src to dest through a temporary file and a rename (a running binary is replaced, not
# overwritten) when dest is missing or differs. Prints what it did.
put() { # src dest mode [uid gid]
  local src="$1" dest="$2" mode="$3" uid="${4:-0}" gid="${5:-0}" what
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    what="unchanged"
  else
    what=$([ -e "$dest" ] && echo "updated" || echo "installed")
    mkdir -p "$(dirname "$dest")"
    cp "$src" "$dest.tmp.$$"
    set_attrs "$dest.tmp.$$" "$mode" "$uid" "$gid"
    mv -f "$dest.tmp.$$" "$dest"
  fi
  set_attrs "$dest" "$mode" "$uid" "$gid"
  echo "  ${dest#"$prefix"}: $what"
}

# 1. The binary.
put "$binary" "$prefix/usr/local/bin/edge-bridge" 755

# 2. The user and group, from a sysusers.d file: systemd-sysusers creates them once, in $root's
#    /etc/passwd and /etc/group, and leaves an existing user alone.
put "$deploy/edge-bridge.sysusers" "$prefix/usr/lib/sysusers.d/edge-bridge.conf" 644
had_user=""
grep -q '^edge-bridge:' "$prefix/etc/passwd" 2>/dev/null && had_user=1
if [ "$root" = / ] && getent passwd edge-bridge >/dev/null; then had_user=1; fi
if [ -n "$had_user" ]; then
  echo "  user edge-bridge: exists"
elif command -v systemd-sysusers >/dev/null; then
  mkdir -p "$prefix/etc"
  systemd-sysusers --root="$root" "$prefix/usr/lib/sysusers.d/edge-bridge.conf"
  echo "  user edge-bridge: created"
elif [ "$root" = / ] && command -v useradd >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/edge-bridge --no-create-home \
    --shell /usr/sbin/nologin --comment "Edge Bridge" edge-bridge
  echo "  user edge-bridge: created (useradd)"
else
  die "cannot create the user edge-bridge: no systemd-sysusers (and no useradd for /)"
fi
gid="$(awk -F: '$1 == "edge-bridge" { print $3 }' "$prefix/etc/group" 2>/dev/null || true)"
[ -n "$gid" ] || gid="$(getent group edge-bridge | cut -d: -f3 || true)"
[ -n "$gid" ] || die "the group edge-bridge was not created"

# 3. The unit.
unit_before="$(cat "$prefix/etc/systemd/system/edge-bridge.service" 2>/dev/null || true)"
put "$deploy/edge-bridge.service" "$prefix/etc/systemd/system/edge-bridge.service" 644
unit_changed=""
[ "$unit_before" = "$(cat "$deploy/edge-bridge.service")" ] || unit_changed=1

# 4. The config: root owns it, the service's group reads it, nobody else does. Never overwritten.
mkdir -p "$prefix/etc/edge-bridge"
set_attrs "$prefix/etc/edge-bridge" 750 0 "$gid"
config="$prefix/etc/edge-bridge/config.yaml"
if [ ! -e "$config" ] || cmp -s "$deploy/config.yaml" "$config"; then
  put "$deploy/config.yaml" "$config" 640 0 "$gid"
else
  echo "  /etc/edge-bridge/config.yaml: kept (it differs from the shipped one, which is config.yaml.new):"
  put "$deploy/config.yaml" "$config.new" 640 0 "$gid"
fi

# 5. Tell systemd, on a live system only.
if [ "$root" != / ]; then
  echo "install.sh: done (scratch root $root: systemctl not called)"
  exit 0
fi
if [ -n "$unit_changed" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  echo "  systemctl daemon-reload: done"
fi
cat <<TXT
install.sh: done. Next:
  edit /etc/edge-bridge/config.yaml (kafka.brokers at least), then check it:
    sudo -u edge-bridge edge-bridge check-config --config /etc/edge-bridge/config.yaml
  systemctl enable --now edge-bridge      (after an update: systemctl restart edge-bridge)
  journalctl -u edge-bridge -f
  curl -s localhost:8080/readyz
For an HA pair (docs/ha.md) in file-lock mode, mount the shared directory at /var/lib/edge-bridge-shared,
writable by edge-bridge.
TXT
