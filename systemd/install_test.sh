#!/usr/bin/env bash
# Installs the build tree into temporary DESTDIRs and checks that every file the operations
# guide relies on is where it should be, with the right mode, and that the systemd files
# are accepted by systemd's own tools (run against the DESTDIR, never the host).
#   install_test.sh BUILD_DIR
# Needs safegated and safegatectl built in BUILD_DIR.
set -euo pipefail
build=${1:?usage: install_test.sh BUILD_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect PATH MODE [TYPE]: PATH exists (file, or directory when TYPE is d) with octal MODE.
expect() {
  local path=$1 mode=$2 type=${3:-f}
  if [[ $type == d && ! -d $path ]]; then fail "missing directory $path"; return; fi
  if [[ $type == f && ! -f $path ]]; then fail "missing file $path"; return; fi
  local actual
  actual=$(stat -c %a "$path")
  [[ $actual == "$mode" ]] || fail "$path has mode $actual, expected $mode"
}

install_into() {
  local destdir=$1 prefix=$2
  if ! DESTDIR="$destdir" cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log" >&2
    echo "FAIL: cmake --install $build --prefix $prefix (DESTDIR=$destdir) failed;" \
         "are safegated and safegatectl built?" >&2
    exit 1
  fi
}

# 1. A distribution-style install: prefix /usr, configuration in /etc.
d="$tmp/usr-root"
install_into "$d" /usr
expect "$d/usr/bin/safegated" 755
expect "$d/usr/bin/safegatectl" 755
expect "$d/usr/share/safegate/make-dev-certs" 755
expect "$d/usr/share/safegate/policy/default.toml" 644
expect "$d/usr/share/doc/safegate/operations.md" 644
expect "$d/usr/lib/systemd/system/safegated.service" 644
expect "$d/usr/lib/sysusers.d/safegate.conf" 644
expect "$d/usr/lib/tmpfiles.d/safegate.conf" 644
expect "$d/etc/safegate" 750 d
for area in bradford cambridgeshire; do
  expect "$d/etc/safegate/examples/$area" 750 d
  expect "$d/etc/safegate/examples/$area/safegated.toml" 640
  expect "$d/etc/safegate/examples/$area/registry.toml" 640
done
[[ -e "$d/usr/etc" ]] && fail "a /usr install must put its configuration in /etc, not /usr/etc"
[[ -e "$d/usr/sbin/safegated" ]] && fail "safegated must be installed once, in bin/ (found sbin/)"
unit="$d/usr/lib/systemd/system/safegated.service"
grep -q '^ExecStart=/usr/bin/safegated --config /etc/safegate/safegated.toml$' "$unit" ||
  fail "$unit: ExecStart does not start /usr/bin/safegated with /etc/safegate/safegated.toml"
grep -q '^ExecStartPre=/usr/bin/safegated --check-config' "$unit" ||
  fail "$unit: no ExecStartPre=/usr/bin/safegated --check-config"
"$d/usr/bin/safegatectl" --help >/dev/null || fail "the installed safegatectl does not run"

# The sysusers and tmpfiles snippets, applied by systemd's tools inside the DESTDIR only.
if command -v systemd-sysusers >/dev/null 2>&1; then
  mkdir -p "$d/etc"
  touch "$d/etc/passwd" "$d/etc/group" "$d/etc/shadow" "$d/etc/gshadow"
  if systemd-sysusers --root="$d" "$d/usr/lib/sysusers.d/safegate.conf" >"$tmp/sysusers.log" 2>&1; then
    grep -q '^safegate:x:[0-9]*:[0-9]*:safegate safeguarding record gateway:/var/lib/safegate:/usr/sbin/nologin$' \
      "$d/etc/passwd" || fail "systemd-sysusers did not create the safegate system user: $(cat "$d/etc/passwd")"
    uid=$(awk -F: '$1 == "safegate" {print $3}' "$d/etc/passwd")
    [[ -n $uid && $uid -lt 1000 ]] || fail "safegate's uid '$uid' is not a system uid"
    grep -q '^safegate:x:' "$d/etc/group" || fail "systemd-sysusers did not create the safegate group"
  else
    fail "systemd-sysusers rejected safegate.conf: $(cat "$tmp/sysusers.log")"
  fi
else
  echo "note: systemd-sysusers not found; the sysusers snippet was not applied" >&2
fi
grep -qx 'd /var/lib/safegate 0700 safegate safegate -' "$d/usr/lib/tmpfiles.d/safegate.conf" ||
  fail "tmpfiles.d/safegate.conf does not make /var/lib/safegate 0700 safegate:safegate"
grep -qx 'd /etc/safegate 0750 root safegate -' "$d/usr/lib/tmpfiles.d/safegate.conf" ||
  fail "tmpfiles.d/safegate.conf does not make /etc/safegate 0750 root:safegate"
if command -v systemd-analyze >/dev/null 2>&1; then
  # cat-config-style syntax check of the installed unit: no unknown keys or sections.
  if ! systemd-analyze security --offline=true --root="$d" safegated.service \
       >"$tmp/analyze.log" 2>&1; then
    fail "systemd-analyze could not read the installed unit: $(tail -5 "$tmp/analyze.log")"
  fi
fi

# 2. Any other prefix: configuration under PREFIX/etc, and the unit starts the binary it installed.
d="$tmp/opt-root"
install_into "$d" /opt/safegate
expect "$d/opt/safegate/bin/safegated" 755
expect "$d/opt/safegate/etc/safegate" 750 d
expect "$d/opt/safegate/etc/safegate/examples/bradford/safegated.toml" 640
unit="$d/opt/safegate/lib/systemd/system/safegated.service"
expect "$unit" 644
grep -q '^ExecStart=/opt/safegate/bin/safegated --config /opt/safegate/etc/safegate/safegated.toml$' "$unit" ||
  fail "$unit: ExecStart not rewritten for prefix /opt/safegate: $(grep '^ExecStart=' "$unit")"
grep -q '^d /opt/safegate/etc/safegate 0750 root safegate -$' "$d/opt/safegate/lib/tmpfiles.d/safegate.conf" ||
  fail "tmpfiles.d/safegate.conf not rewritten for prefix /opt/safegate"

if ((failures > 0)); then
  echo "install_test: $failures problem(s)" >&2
  exit 1
fi
echo "install_test: all files installed with the expected modes (prefixes /usr and /opt/safegate)"
