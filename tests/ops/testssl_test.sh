#!/usr/bin/env bash
# Scans a sandbox gateway's public listener with testssl.sh, an independent TLS scanner, and
# fails on any finding of severity MEDIUM or worse (and on any scan that did not run).
#   testssl_test.sh SAFEGATECTL SAFEGATED
# Skips (exit 77, which CTest reports as skipped) only when testssl.sh is not installed
# (Debian's package `testssl.sh`, installed by scripts/setup, provides /usr/bin/testssl).
#
# How it is run:
# - Loopback only, no outside lookups: --ip 127.0.0.1, --nodns none, no --phone-out (so no
#   CRL or OCSP fetching), --sneaky.
# - The gateway requires a client certificate (mTLS) and TLS 1.3 only. testssl 3.2 takes one
#   with --mtls; Debian 12's testssl 3.0.8 has no such option and cannot complete a TLS 1.3
#   handshake with a server that requires one. For 3.0.x this test hands testssl an `openssl`
#   wrapper (--openssl) that adds `-cert` to its s_client calls, which is what --mtls does in
#   3.2. The socket-level probes (protocols, ciphers, groups, vulnerabilities) need no
#   certificate: the server's answers to them come before it asks for one.
# - --add-ca: the sandbox's development CA, so the chain is judged against it.
# - The full default run (protocols, ciphers, forward secrecy, server defaults, headers,
#   vulnerabilities, every cipher, client simulations) takes about 1.5 minutes here, so it
#   is not restricted.
#
# Tolerated findings, each a property of the development certificates that
# `safegatectl sandbox up` makes, not of the gateway's TLS configuration:
#   cert_revocation  "Neither CRL nor OCSP URI provided": the development CA hands the
#                    gateway its CRL as a file (crl.pem) and puts no CRL distribution point
#                    in its certificates; a production CA's certificates carry one.
# They are printed, never silently dropped.
set -euo pipefail
ctl=${1:?usage: testssl_test.sh SAFEGATECTL SAFEGATED}
daemon=${2:?usage: testssl_test.sh SAFEGATECTL SAFEGATED}

testssl=$(command -v testssl.sh || command -v testssl || true)
if [[ -z $testssl ]]; then
  echo "SKIPPED: testssl.sh is not installed (Debian package testssl.sh; scripts/setup installs it)"
  exit 77
fi
for tool in jq openssl; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (scripts/setup installs it)" >&2; exit 1; }
done

work=$(mktemp -d)
cleanup() {
  SAFEGATE_DAEMON="$daemon" "$ctl" sandbox down --dir "$work/sandbox" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

export SAFEGATE_DAEMON="$daemon"
if ! "$ctl" sandbox up --dir "$work/sandbox" --areas bradford >"$work/up.log" 2>&1; then
  cat "$work/up.log" >&2
  echo "FAIL: safegatectl sandbox up failed" >&2
  exit 1
fi
json="$work/sandbox/sandbox.json"
url=$(jq -r .areas.bradford.url "$json")
ca=$(jq -r .ca "$json")
cert=$(jq -r '.areas.bradford.agencies.wyp.cert' "$json")
key=$(jq -r '.areas.bradford.agencies.wyp.key' "$json")
hostport=${url#https://}
(umask 077 && cat "$cert" "$key" >"$work/client.pem")

args=(--quiet --warnings batch --color 0 --severity MEDIUM --jsonfile "$work/findings.json"
      --ip 127.0.0.1 --nodns none --sneaky --add-ca "$ca")
if "$testssl" --help 2>&1 | grep -q -- '--mtls'; then
  args+=(--mtls "$work/client.pem")
else
  mkdir "$work/bin"
  real_openssl=$(command -v openssl)
  cat >"$work/bin/openssl" <<WRAP
#!/bin/sh
# testssl 3.0.x has no --mtls: present the client certificate on every s_client call.
if [ "\$1" = s_client ]; then shift; exec "$real_openssl" s_client -cert "$work/client.pem" "\$@"; fi
exec "$real_openssl" "\$@"
WRAP
  chmod 755 "$work/bin/openssl"
  args+=(--openssl "$work/bin/openssl")
fi

echo "testssl: $testssl ${args[*]} $hostport"
status=0
( cd "$work" && timeout 900 "$testssl" "${args[@]}" "$hostport" ) >"$work/testssl.log" 2>&1 || status=$?
sed 's/^/  /' "$work/testssl.log"
if [[ ! -s $work/findings.json ]]; then
  echo "FAIL: testssl wrote no findings file (exit status $status)" >&2
  exit 1
fi

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# The scan must have reached the server and finished, or "no findings" means nothing.
grep -q 'Done .* -->> 127.0.0.1' "$work/testssl.log" || fail "the scan did not run to its end"
grep -Eq '^ TLS 1\.3 +offered' "$work/testssl.log" || fail "testssl did not see TLS 1.3 offered"
for old in 'SSLv2' 'SSLv3' 'TLS 1  ' 'TLS 1\.1' 'TLS 1\.2'; do
  grep -Eq "^ ${old} +not offered" "$work/testssl.log" || fail "testssl did not confirm that ${old//\\/} is not offered"
done
# WARN entries are testssl's own trouble (cannot connect, a test it could not run), except
# the note that this openssl has no GOST engine, which concerns ciphers nobody uses.
jq -r '.[] | select(.severity == "WARN" and .id != "engine_problem") | "\(.id): \(.finding)"' \
  "$work/findings.json" >"$work/warn.txt"
if [[ -s $work/warn.txt ]]; then
  fail "testssl could not complete every check:"
  sed 's/^/  /' "$work/warn.txt" >&2
fi
# Severity MEDIUM or worse, less the tolerated ones above.
jq -r '.[] | select(.severity == "MEDIUM" or .severity == "HIGH" or .severity == "CRITICAL")
           | "\(.severity) \(.id): \(.finding)"' "$work/findings.json" >"$work/findings.txt"
grep -v -E '^[A-Z]+ cert_revocation: Neither CRL nor OCSP URI provided' "$work/findings.txt" \
  >"$work/bad.txt" || true
if grep -q -E '^[A-Z]+ cert_revocation:' "$work/findings.txt"; then
  echo "tolerated (development certificate, see the top of this script):"
  grep -E '^[A-Z]+ cert_revocation:' "$work/findings.txt" | sed 's/^/  /'
fi
if [[ -s $work/bad.txt ]]; then
  fail "findings of severity MEDIUM or worse:"
  sed 's/^/  /' "$work/bad.txt" >&2
fi

if ((failures > 0)); then exit 1; fi
echo "testssl_test: no finding of severity MEDIUM or worse; TLS 1.3 only"
