// Proofs as JSON: the API's inclusion and consistency proof objects, and the offline proof
// bundle — everything a third party needs to check, with no access to the gateway, that one
// audit entry is in the log the gateway signed:
//
//   {
//     "format": "safegate-audit-inclusion-v1",
//     "entry": B64,                 the exact entry bytes hashed into the leaf
//     "leaf_index": N,              0-based
//     "tree_size": N,               equals tree_head.tree_size
//     "leaf_hash": HEX,             SHA-256(0x00 || entry), for readers; checked
//     "path": [HEX, ...],           RFC 9162 inclusion path, from the leaf upwards
//     "tree_head": {"tree_size", "root_hash", "timestamp", "signature", "public_key"}
//   }
//
// That is the API's inclusion proof object plus the tree-head object it was proved against,
// so a bundle can be put together from two API responses. docs/audit-merkle.md documents it.
//
// A bundle only proves that the holder of tree_head.public_key signed a log containing the
// entry: a verifier must also know that this is the gateway's key (pass it as `trusted`).
//
// Thread-safety: pure functions and plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/audit/merkle.h"
#include "daemon/audit/tree_head.h"
#include "record/status.h"

namespace safegate::audit {

inline constexpr std::string_view kBundleFormat = "safegate-audit-inclusion-v1";

// GET /v1/audit/proof/inclusion:
//   {"leaf_index", "tree_size", "entry": B64, "leaf_hash": HEX, "path": [HEX]}
nlohmann::json InclusionProofToJson(uint64_t leaf_index, uint64_t tree_size, std::string_view entry,
                                    std::span<const Hash> path);
// GET /v1/audit/proof/consistency: {"first", "second", "path": [HEX]}
nlohmann::json ConsistencyProofToJson(uint64_t first, uint64_t second, std::span<const Hash> path);

struct ConsistencyProofData {
  uint64_t first = 0;
  uint64_t second = 0;
  std::vector<Hash> path;
};
// Parses a consistency proof object; kInvalidInput with every problem located.
Result<ConsistencyProofData> ConsistencyProofFromJson(const nlohmann::json& json);

struct ProofBundle {
  std::string entry;  // raw entry bytes
  uint64_t leaf_index = 0;
  uint64_t tree_size = 0;
  std::optional<Hash> leaf_hash;  // absent in a bundle that omits it; always written
  std::vector<Hash> path;
  SignedTreeHead tree_head;
  PublicKey public_key{};
};

nlohmann::json BundleToJson(const ProofBundle& bundle);
// Shape only (types, encodings, unknown fields): kInvalidInput listing every problem with a
// JSON pointer. Whether the bundle proves anything is VerifyBundle's business.
Result<ProofBundle> BundleFromJson(const nlohmann::json& json);

// Builds the bundle for leaf `leaf_index` against `head`, reading the path from `store`
// (which must hold at least head.tree_size leaves). kInternal when `entry` does not hash to
// the stored leaf, or when the finished bundle does not verify (a broken store).
Result<ProofBundle> MakeBundle(const NodeStore& store, std::string entry, uint64_t leaf_index,
                               const SignedTreeHead& head, const PublicKey& key);

// Checks everything a bundle claims. OK, or kInvalidInput whose problems name each thing
// that failed by JSON pointer: /tree_head/public_key (not the trusted key),
// /tree_head/signature, /tree_size (differs from the head's), /leaf_hash (not the entry's),
// /path (does not lead from the entry to the signed root, or has the wrong length).
// `trusted`: the gateway's public key as the verifier knows it; nullptr checks the bundle
// only against the key it carries.
Status VerifyBundle(const ProofBundle& bundle, const PublicKey* trusted);
// Parses JSON text and verifies; parse and shape problems come back as kInvalidInput too.
Status VerifyBundleJson(std::string_view text, const PublicKey* trusted);

}  // namespace safegate::audit
