#!/usr/bin/env python3
"""An independent verifier for safegate's audit log proofs.

Written from the text of RFC 9162 (Certificate Transparency Version 2.0), section 2.1, using
only the Python standard library, so that a third party can check what a safegate gateway
publishes without trusting (or even reading) the gateway's own code:

  * Merkle Tree Hash, section 2.1.1:   MTH({}) = HASH(), MTH({d0}) = HASH(0x00 || d0),
    MTH(D_n) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of 2 below n.
  * inclusion proof verification, section 2.1.3.2;
  * consistency proof verification, section 2.1.4.2;
  * safegate's signed tree heads (docs/audit-merkle.md): Ed25519 over
      b"safegate-sth-v1\\n" || uint64be(tree_size) || uint64be(timestamp) || root_hash
    The standard library has no Ed25519, so signatures are checked with the OpenSSL 3 command
    line (`openssl pkeyutl -verify -rawin`) on the raw public key wrapped as a PEM
    SubjectPublicKeyInfo. Pass --no-signatures to skip that check explicitly.

Usage:
  verify.py check FILE|-            verify cases (one JSON object, or {"cases": [...]});
                                    prints one JSON line per case; exit 1 if any fails
  verify.py bundle FILE [--public-key B64]
                                    verify an offline proof bundle
  verify.py selftest                check this verifier against the RFC definitions and the
                                    published RFC 6962 test vectors

Case objects for `check` (hashes lower-case hex, bytes base64):
  {"type": "inclusion", "id": ..., "leaf_index": N, "tree_size": N, "path": [HEX],
   "root_hash": HEX, "entry": B64 | "leaf_hash": HEX}
  {"type": "consistency", "id": ..., "first": N, "second": N, "path": [HEX],
   "first_root": HEX, "second_root": HEX}
  {"type": "tree_head", "id": ..., "tree_head": {tree_size, root_hash, timestamp, signature,
   public_key}}
  {"type": "bundle", "id": ..., "bundle": {...}, "public_key": B64 (optional, trusted key)}
"""

import base64
import binascii
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile


class Rejected(Exception):
    """The proof (or its input) does not verify; the message says why."""


# ---------------------------------------------------------------------------------------------
# Section 2.1.1: the hashing.

def HASH(data):
    return hashlib.sha256(data).digest()


def leaf_hash(entry):
    return HASH(b"\x00" + entry)


def node_hash(left, right):
    return HASH(b"\x01" + left + right)


def largest_power_of_two_below(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries):
    """MTH(D_n), straight from the definition (used by the self test)."""
    n = len(entries)
    if n == 0:
        return HASH(b"")
    if n == 1:
        return leaf_hash(entries[0])
    k = largest_power_of_two_below(n)
    return node_hash(mth(entries[:k]), mth(entries[k:]))


def reference_path(m, entries):
    """PATH(m, D_n) of section 2.1.3.1 (self test only)."""
    n = len(entries)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return reference_path(m, entries[:k]) + [mth(entries[k:])]
    return reference_path(m - k, entries[k:]) + [mth(entries[:k])]


def reference_proof(m, entries):
    """PROOF(m, D_n) = SUBPROOF(m, D_n, true) of section 2.1.4.1 (self test only)."""
    def subproof(m, d, b):
        n = len(d)
        if m == n:
            return [] if b else [mth(d)]
        k = largest_power_of_two_below(n)
        if m <= k:
            return subproof(m, d[:k], b) + [mth(d[k:])]
        return subproof(m - k, d[k:], False) + [mth(d[:k])]
    return subproof(m, entries, True)


# ---------------------------------------------------------------------------------------------
# Section 2.1.3.2: verifying an inclusion proof.

def verify_inclusion(hash_, leaf_index, tree_size, inclusion_path, root_hash):
    # 1. leaf_index >= tree_size fails.
    if leaf_index >= tree_size:
        raise Rejected("leaf_index %d is not below tree_size %d" % (leaf_index, tree_size))
    # 2. fn = leaf_index, sn = tree_size - 1.
    fn = leaf_index
    sn = tree_size - 1
    # 3. r = hash.
    r = hash_
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, stop the iteration and fail the proof verification.
        if sn == 0:
            raise Rejected("inclusion path is longer than the tree allows")
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #     LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        # Otherwise: Set r to HASH(0x01 || r || p).
        else:
            r = node_hash(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Compare sn to 0. Compare r against the root_hash.
    if sn != 0:
        raise Rejected("inclusion path is shorter than the tree needs")
    if r != root_hash:
        raise Rejected("inclusion path leads to %s, not to root_hash %s" % (r.hex(), root_hash.hex()))


# ---------------------------------------------------------------------------------------------
# Section 2.1.4.2: verifying consistency between two tree heads.

def verify_consistency(first, second, first_hash, second_hash, consistency_path):
    # The RFC defines proofs for 0 < first < second. safegate also answers first == second
    # with an empty path (a tree is consistent with itself); nothing else is accepted.
    if first == 0:
        raise Rejected("first is 0: there is no consistency to prove about an empty tree")
    if first > second:
        raise Rejected("first (%d) is larger than second (%d)" % (first, second))
    if first == second:
        if consistency_path:
            raise Rejected("equal tree sizes need an empty consistency path")
        if first_hash != second_hash:
            raise Rejected("equal tree sizes with different root hashes")
        return
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not consistency_path:
        raise Rejected("consistency path is empty")
    path = list(consistency_path)
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn = first - 1
    sn = second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = path[0]
    sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            raise Rejected("consistency path is longer than the trees allow")
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr). Set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #     LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        # Otherwise: Set sr to HASH(0x01 || sr || c).
        else:
            sr = node_hash(sr, c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify that fr equals first_hash, sr equals second_hash, and sn is 0.
    if sn != 0:
        raise Rejected("consistency path is shorter than the trees need")
    if fr != first_hash:
        raise Rejected("consistency path rebuilds %s for the first tree, not %s"
                       % (fr.hex(), first_hash.hex()))
    if sr != second_hash:
        raise Rejected("consistency path rebuilds %s for the second tree, not %s"
                       % (sr.hex(), second_hash.hex()))


# ---------------------------------------------------------------------------------------------
# Signed tree heads (safegate's format, docs/audit-merkle.md) and Ed25519 through OpenSSL.

STH_DOMAIN = b"safegate-sth-v1\n"
# DER SubjectPublicKeyInfo prefix for an Ed25519 key (RFC 8410): SEQUENCE { SEQUENCE { OID
# 1.3.101.112 }, BIT STRING (0 unused bits) } followed by the 32 raw key bytes.
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def sth_signed_bytes(tree_size, timestamp, root_hash):
    return (STH_DOMAIN + tree_size.to_bytes(8, "big") + timestamp.to_bytes(8, "big")
            + root_hash)


def ed25519_verify(public_key, message, signature):
    openssl = shutil.which("openssl")
    if openssl is None:
        raise Rejected("cannot check the Ed25519 signature: no openssl command "
                       "(use --no-signatures to skip signature checks)")
    pem = (b"-----BEGIN PUBLIC KEY-----\n"
           + base64.b64encode(ED25519_SPKI_PREFIX + public_key)
           + b"\n-----END PUBLIC KEY-----\n")
    with tempfile.TemporaryDirectory(prefix="rfc9162-verify-") as tmp:
        paths = {}
        for name, data in (("key.pem", pem), ("msg.bin", message), ("sig.bin", signature)):
            paths[name] = os.path.join(tmp, name)
            with open(paths[name], "wb") as f:
                f.write(data)
        result = subprocess.run(
            [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", paths["key.pem"], "-rawin",
             "-in", paths["msg.bin"], "-sigfile", paths["sig.bin"]],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    return result.returncode == 0


# ---------------------------------------------------------------------------------------------
# Reading JSON strictly.

def need(obj, key, where):
    if not isinstance(obj, dict):
        raise Rejected("%s is not a JSON object" % (where or "/"))
    if key not in obj:
        raise Rejected("%s/%s is missing" % (where, key))
    return obj[key]


def as_size(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Rejected("%s must be a non-negative integer" % where)
    return value


def as_hash(value, where):
    if (not isinstance(value, str) or len(value) != 64
            or any(ch not in "0123456789abcdef" for ch in value)):
        raise Rejected("%s must be 64 lower-case hex characters" % where)
    return bytes.fromhex(value)


def as_base64(value, where, length=None):
    if not isinstance(value, str):
        raise Rejected("%s must be a base64 string" % where)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("%s is not valid base64" % where) from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise Rejected("%s is not canonical base64" % where)
    if length is not None and len(raw) != length:
        raise Rejected("%s must decode to %d bytes, not %d" % (where, length, len(raw)))
    return raw


def as_path(value, where):
    if not isinstance(value, list):
        raise Rejected("%s must be an array of hex hashes" % where)
    return [as_hash(h, "%s/%d" % (where, i)) for i, h in enumerate(value)]


def check_tree_head(head, where, signatures, trusted_key=None):
    size = as_size(need(head, "tree_size", where), where + "/tree_size")
    root = as_hash(need(head, "root_hash", where), where + "/root_hash")
    timestamp = as_size(need(head, "timestamp", where), where + "/timestamp")
    signature = as_base64(need(head, "signature", where), where + "/signature", 64)
    public_key = as_base64(need(head, "public_key", where), where + "/public_key", 32)
    if trusted_key is not None and public_key != trusted_key:
        raise Rejected("%s/public_key is not the trusted gateway key" % where)
    if signatures and not ed25519_verify(public_key, sth_signed_bytes(size, timestamp, root),
                                         signature):
        raise Rejected("%s/signature does not verify under %s/public_key" % (where, where))
    return size, root


def check_bundle(bundle, signatures, trusted_key=None):
    if need(bundle, "format", "") != "safegate-audit-inclusion-v1":
        raise Rejected("/format is not safegate-audit-inclusion-v1")
    entry = as_base64(need(bundle, "entry", ""), "/entry")
    index = as_size(need(bundle, "leaf_index", ""), "/leaf_index")
    size = as_size(need(bundle, "tree_size", ""), "/tree_size")
    path = as_path(need(bundle, "path", ""), "/path")
    head_size, root = check_tree_head(need(bundle, "tree_head", ""), "/tree_head", signatures,
                                      trusted_key)
    if size != head_size:
        raise Rejected("/tree_size is %d but the signed tree head is for %d" % (size, head_size))
    h = leaf_hash(entry)
    if "leaf_hash" in bundle and as_hash(bundle["leaf_hash"], "/leaf_hash") != h:
        raise Rejected("/leaf_hash is not SHA-256(0x00 || entry)")
    try:
        verify_inclusion(h, index, head_size, path, root)
    except Rejected as e:
        raise Rejected("/path: %s" % e) from None


def check_case(case, signatures):
    kind = need(case, "type", "")
    if kind == "inclusion":
        if "entry" in case:
            h = leaf_hash(as_base64(case["entry"], "/entry"))
            if "leaf_hash" in case and as_hash(case["leaf_hash"], "/leaf_hash") != h:
                raise Rejected("/leaf_hash is not SHA-256(0x00 || entry)")
        else:
            h = as_hash(need(case, "leaf_hash", ""), "/leaf_hash")
        verify_inclusion(h, as_size(need(case, "leaf_index", ""), "/leaf_index"),
                         as_size(need(case, "tree_size", ""), "/tree_size"),
                         as_path(need(case, "path", ""), "/path"),
                         as_hash(need(case, "root_hash", ""), "/root_hash"))
    elif kind == "consistency":
        verify_consistency(as_size(need(case, "first", ""), "/first"),
                           as_size(need(case, "second", ""), "/second"),
                           as_hash(need(case, "first_root", ""), "/first_root"),
                           as_hash(need(case, "second_root", ""), "/second_root"),
                           as_path(need(case, "path", ""), "/path"))
    elif kind == "tree_head":
        check_tree_head(need(case, "tree_head", ""), "/tree_head", signatures)
    elif kind == "bundle":
        trusted = None
        if "public_key" in case:
            trusted = as_base64(case["public_key"], "/public_key", 32)
        check_bundle(need(case, "bundle", ""), signatures, trusted)
    else:
        raise Rejected("unknown case type %r" % (kind,))


# ---------------------------------------------------------------------------------------------
# Self test: the verifier against the RFC's own definitions and published test vectors.

CT_ENTRIES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_CONSISTENCY_6_8 = [
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
]


def rejects(fn, *args):
    try:
        fn(*args)
    except Rejected:
        return True
    return False


def selftest():
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    ct = [bytes.fromhex(e) for e in CT_ENTRIES]
    for n in range(len(ct) + 1):
        expect(mth(ct[:n]).hex() == CT_ROOTS[n], "RFC 6962 root of size %d" % n)
    expect([h.hex() for h in reference_proof(6, ct)] == CT_CONSISTENCY_6_8,
           "RFC 6962 consistency proof 6 -> 8")

    entries = [("entry %d" % i).encode() for i in range(33)]
    roots = [mth(entries[:n]) for n in range(len(entries) + 1)]
    checked = 0
    for n in range(1, len(entries) + 1):
        for m in range(n):
            path = reference_path(m, entries[:n])
            h = leaf_hash(entries[m])
            expect(not rejects(verify_inclusion, h, m, n, path, roots[n]),
                   "inclusion %d of %d" % (m, n))
            for i in range(len(path)):
                bad = list(path)
                bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
                expect(rejects(verify_inclusion, h, m, n, bad, roots[n]),
                       "tampered inclusion %d of %d at %d" % (m, n, i))
            expect(rejects(verify_inclusion, h, m, n, path + [h], roots[n]),
                   "long inclusion path %d of %d" % (m, n))
            checked += 1
        for m in range(1, n):
            proof = reference_proof(m, entries[:n])
            expect(not rejects(verify_consistency, m, n, roots[m], roots[n], proof),
                   "consistency %d -> %d" % (m, n))
            for i in range(len(proof)):
                bad = list(proof)
                bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
                expect(rejects(verify_consistency, m, n, roots[m], roots[n], bad),
                       "tampered consistency %d -> %d at %d" % (m, n, i))
            expect(rejects(verify_consistency, m, n, roots[m], roots[n], proof[:-1]),
                   "short consistency path %d -> %d" % (m, n))
            checked += 1
    for f in failures:
        print("FAIL", f)
    print("selftest: %d proofs checked, %d failures" % (checked, len(failures)))
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------

def load_json(name):
    try:
        if name == "-":
            return json.load(sys.stdin)
        with open(name, "rb") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print("verify.py: cannot read %s: %s" % (name, e), file=sys.stderr)
        sys.exit(2)


def main(argv):
    args = list(argv)
    signatures = True
    if "--no-signatures" in args:
        args.remove("--no-signatures")
        signatures = False
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    command = args[0]
    if command == "selftest" and len(args) == 1:
        return selftest()
    if command == "check" and len(args) == 2:
        doc = load_json(args[1])
        cases = doc["cases"] if isinstance(doc, dict) and "cases" in doc else [doc]
        failed = 0
        for i, case in enumerate(cases):
            case_id = case.get("id", i) if isinstance(case, dict) else i
            try:
                check_case(case, signatures)
                print(json.dumps({"id": case_id, "ok": True}))
            except Rejected as e:
                failed += 1
                print(json.dumps({"id": case_id, "ok": False, "reason": str(e)}))
        return 1 if failed else 0
    if command == "bundle" and len(args) in (2, 4):
        trusted = None
        if len(args) == 4:
            if args[2] != "--public-key":
                print(__doc__, file=sys.stderr)
                return 2
            try:
                trusted = as_base64(args[3], "--public-key", 32)
            except Rejected as e:
                print("verify.py: %s" % e, file=sys.stderr)
                return 2
        try:
            check_bundle(load_json(args[1]), signatures, trusted)
        except Rejected as e:
            print("REJECTED: %s" % e)
            return 1
        print("OK: the entry is in the tree the gateway signed%s"
              % ("" if signatures else " (signature NOT checked)"))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
