// Signed tree heads: the gateway's Ed25519 signature over (tree size, timestamp, root hash),
// so that a third party holding the gateway's public key can check what the log contained at
// a point in time, and catch a gateway that shows two different logs (two heads for one size
// with different roots).
//
// The signed bytes (docs/audit-merkle.md, "Signed tree heads") are exactly 64 bytes:
//
//   "safegate-sth-v1\n"        16 ASCII bytes, a domain separator: a signature over a tree head
//                               can never be mistaken for a signature over anything else the
//                               same key signs (transfer payloads)
//   tree_size                  8 bytes, unsigned big-endian
//   timestamp_ms               8 bytes, unsigned big-endian, milliseconds since the Unix epoch
//   root_hash                  32 bytes
//
// The signature is Ed25519 (RFC 8032, pure, as libsodium's crypto_sign_detached computes it)
// over those 64 bytes.
//
// The key file holds the 32-byte Ed25519 seed (RFC 8032's private key), raw, mode 0600.
//
// Thread-safety: SigningKey is immutable after loading; Sign may be called concurrently. The
// free functions are pure.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/audit/merkle.h"
#include "record/status.h"

namespace safegate::audit {

inline constexpr size_t kPublicKeySize = 32;  // crypto_sign_PUBLICKEYBYTES
inline constexpr size_t kSeedSize = 32;       // crypto_sign_SEEDBYTES
inline constexpr size_t kSignatureSize = 64;  // crypto_sign_BYTES
using PublicKey = std::array<uint8_t, kPublicKeySize>;
using Signature = std::array<uint8_t, kSignatureSize>;

// "safegate-sth-v1\n"
inline constexpr std::string_view kTreeHeadDomain = "safegate-sth-v1\n";

// The gateway's Ed25519 signing key. The secret half lives in sodium_malloc'd memory (guard
// pages, mlock'd where allowed) and is wiped on destruction. Not copyable.
class SigningKey {
 public:
  // Reads the key file at `path`, or creates it (O_CREAT|O_EXCL, mode 0600, fsync'd, its
  // directory fsync'd) when it does not exist. Refuses, with a Status naming the file and the
  // fix, a key file that is not a regular file, that group or others may read or write, that
  // another user owns, or that is not exactly 32 bytes.
  static Result<std::unique_ptr<SigningKey>> LoadOrCreate(const std::string& path);
  // As LoadOrCreate, but a missing file is kInternal.
  static Result<std::unique_ptr<SigningKey>> Load(const std::string& path);
  // From a 32-byte seed in memory (tests, documentation examples).
  static Result<std::unique_ptr<SigningKey>> FromSeed(std::string_view seed);

  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  const PublicKey& public_key() const { return public_key_; }
  std::string PublicKeyBase64() const;
  // Ed25519 signature of `message`.
  Signature Sign(std::string_view message) const;

 private:
  SigningKey(unsigned char* secret, const PublicKey& pk) : secret_(secret), public_key_(pk) {}
  unsigned char* secret_;  // sodium_malloc'd, 64 bytes (libsodium's seed || public key form)
  PublicKey public_key_;
};

// Ed25519 verification of `signature` over `message`.
bool VerifySignature(const PublicKey& key, std::string_view message, const Signature& signature);

struct SignedTreeHead {
  uint64_t tree_size = 0;
  Hash root_hash{};
  uint64_t timestamp_ms = 0;  // milliseconds since the Unix epoch, when the head was signed
  Signature signature{};
  bool operator==(const SignedTreeHead&) const = default;
};

// The exact 64 bytes that are signed (see the top of this file).
std::string TreeHeadSignatureInput(uint64_t tree_size, uint64_t timestamp_ms, const Hash& root);

SignedTreeHead SignTreeHead(const SigningKey& key, uint64_t tree_size, const Hash& root,
                            uint64_t timestamp_ms);

// OK when the head's signature verifies under `key`; kInvalidInput otherwise.
Status VerifyTreeHead(const SignedTreeHead& head, const PublicKey& key);

// The API's tree-head object:
//   {"tree_size": N, "root_hash": HEX, "timestamp": MS, "signature": B64, "public_key": B64}
nlohmann::json TreeHeadToJson(const SignedTreeHead& head, const PublicKey& key);

// Parses a tree-head object. Every problem is reported (kInvalidInput with problems located
// by JSON pointers under `where`); unknown keys are problems. `public_key` is required.
struct TreeHeadWithKey {
  SignedTreeHead head;
  PublicKey public_key{};
};
Result<TreeHeadWithKey> TreeHeadFromJson(const nlohmann::json& json, std::string_view where = "");

// Base64 Ed25519 public key (32 bytes) -> key; nullopt for anything else.
std::optional<PublicKey> ParsePublicKey(std::string_view base64);

// When to sign a new tree head: only when the log has grown past the last head, and then
// once `every_entries` new entries have accumulated or `interval_ms` has passed since the last
// head, whichever comes first.
struct TreeHeadPolicy {
  uint64_t every_entries = 1000;
  int64_t interval_ms = 100;
};
bool TreeHeadDue(const TreeHeadPolicy& policy, uint64_t tree_size, uint64_t last_size,
                 int64_t now_ms, int64_t last_signed_ms);

// Evidence that one key signed two different logs: two valid heads for the same tree size
// with different roots. Either head alone is valid, so the pair is what proves the fault.
struct Equivocation {
  SignedTreeHead first;
  SignedTreeHead second;
  std::string Describe() const;
};
// Checks `heads` (all claimed to be signed by `key`) pairwise. kInvalidInput naming the
// index of the first head whose signature does not verify (a forged head proves nothing);
// otherwise the first equivocating pair found, or nullopt.
Result<std::optional<Equivocation>> FindEquivocation(const std::vector<SignedTreeHead>& heads,
                                                     const PublicKey& key);

}  // namespace safegate::audit
