// The gateway's long-term transfer keys, and the public keys of its peer gateways.
//
// Each gateway has two keypairs, made with libsodium on first start and kept in its data
// directory:
//   transfer_signing.key  the 32-byte Ed25519 seed (RFC 8032 private key): signs every
//                         transfer message this gateway sends (crypto_sign_detached);
//   transfer_sealing.key  the 32-byte X25519 secret key: opens transfer messages sealed to
//                         this gateway (crypto_box_seal_open).
// Both files are raw bytes, mode 0600, owned by the gateway's user. They are separate from
// the audit log's tree-head key (signing.key) so that transfer keys can be rotated with the
// peers without touching the verifiability of the audit log, and a leak of one does not
// expose the other.
//
// The public halves travel to peers as base64 (RFC 4648, standard alphabet, padded: libsodium's
// sodium_base64_VARIANT_ORIGINAL), which is what config::Peer's signing_public_key and
// sealing_public_key hold. `safegatectl keys show` prints them (KeysShowText).
//
// Errors are Status values naming the file and, where one exists, the fix. libsodium failures
// are translated in one function in gateway_keys.cc.
//
// Thread-safety: GatewayKeys and PeerDirectory are immutable once built; every const method
// may be called from any thread at once. Secret halves live in sodium_malloc'd memory (guard
// pages, mlock'd where allowed) and are wiped when the GatewayKeys is destroyed.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "record/status.h"

namespace safegate::transfer {

inline constexpr size_t kPublicKeyBytes =
    32;  // crypto_sign_PUBLICKEYBYTES, crypto_box_PUBLICKEYBYTES
inline constexpr size_t kSecretKeyFileBytes = 32;  // seed / X25519 secret key
inline constexpr size_t kSignatureBytes = 64;      // crypto_sign_BYTES
using PublicKey = std::array<uint8_t, kPublicKeyBytes>;

inline constexpr std::string_view kSigningKeyFile = "transfer_signing.key";
inline constexpr std::string_view kSealingKeyFile = "transfer_sealing.key";

// Base64 (original variant, padded) of raw bytes, and back. FromBase64 is strict: nullopt for
// characters outside the alphabet, bad padding, or whitespace.
std::string ToBase64(std::span<const uint8_t> bytes);
std::string ToBase64(std::string_view bytes);
std::optional<std::string> FromBase64(std::string_view text);
// A 32-byte public key from base64; nullopt unless the text decodes to exactly 32 bytes.
std::optional<PublicKey> PublicKeyFromBase64(std::string_view text);

// Ed25519 verification of a detached `signature` (64 raw bytes) over `message`. False for a
// signature of the wrong length.
bool VerifySignature(const PublicKey& signing_key, std::string_view message,
                     std::string_view signature);

// crypto_box_seal of `plaintext` to an X25519 public key: an ephemeral X25519 public key (32
// bytes), then the XSalsa20-Poly1305 box (16-byte tag, then the ciphertext). Only the holder
// of the matching secret key can open it; the sender is anonymous (the signature inside says
// who sent it).
std::string SealTo(const PublicKey& sealing_key, std::string_view plaintext);

class GatewayKeys {
 public:
  // Reads both key files from `data_dir`, creating whichever does not exist. Creation writes
  // a temporary file in the same directory (O_CREAT|O_EXCL, mode 0600), fsyncs it, renames
  // it into place without replacing an existing file, and fsyncs the directory: a crash
  // leaves either no key file or a whole one (at worst an unused ".tmp-" file beside it),
  // never a half key. Refuses a key file that is not a regular file, that group or others
  // may access (the Status names the file, its mode and `chmod 600 FILE`), that another user
  // owns, or that is not exactly 32 bytes. `data_dir` must exist.
  static Result<std::unique_ptr<GatewayKeys>> LoadOrCreate(const std::string& data_dir);
  // As LoadOrCreate, but never creates: a missing file is kNotFound saying that safegated
  // makes the keys on its first start (for `safegatectl keys show`, which must not create
  // keys owned by whoever runs it).
  static Result<std::unique_ptr<GatewayKeys>> Load(const std::string& data_dir);

  ~GatewayKeys();
  GatewayKeys(const GatewayKeys&) = delete;
  GatewayKeys& operator=(const GatewayKeys&) = delete;

  const PublicKey& signing_public_key() const { return signing_public_; }
  const PublicKey& sealing_public_key() const { return sealing_public_; }
  std::string SigningPublicKeyBase64() const;
  std::string SealingPublicKeyBase64() const;

  // Ed25519 detached signature (64 raw bytes) of `message`.
  std::string Sign(std::string_view message) const;
  // Opens bytes made by SealTo(sealing_public_key(), ...). kBadRequest when they were sealed
  // to another key, were altered, or are too short to be a sealed box.
  Result<std::string> OpenSealed(std::string_view sealed) const;

 private:
  GatewayKeys() = default;
  static Result<std::unique_ptr<GatewayKeys>> Open(const std::string& data_dir, bool create);
  // sodium_malloc'd: the Ed25519 secret key (64 bytes: seed || public key), then the X25519
  // secret key (32 bytes).
  unsigned char* secret_ = nullptr;
  PublicKey signing_public_{};
  PublicKey sealing_public_{};
};

// The text `safegatectl keys show` prints: TOML lines ready to paste into the [[peer]]
// block for `area` in the other gateway's registry.
//   # Public transfer keys of the bradford gateway. ...
//   area = "bradford"
//   signing_public_key = "..."
//   sealing_public_key = "..."
std::string KeysShowText(std::string_view area, const GatewayKeys& keys);

// A peer gateway's public keys, decoded.
struct PeerKeys {
  std::string area;
  std::optional<PublicKey> signing;  // nullopt until keys are exchanged
  std::optional<PublicKey> sealing;
};

// The peer gateways this gateway trusts, by area. Built once from the registry (and again on
// reload); immutable afterwards.
class PeerDirectory {
 public:
  // From the registry's [[peer]] blocks. The loader has already checked the base64; an
  // undecodable key here is kInvalidInput naming "peer[i].signing_public_key". Empty keys are
  // allowed (not yet exchanged): such a peer is "unknown" for signatures and cannot be sealed
  // to.
  static Result<PeerDirectory> FromPeers(const std::vector<config::Peer>& peers);
  // Adds or replaces one peer (base64 keys, either may be empty). kInvalidInput naming the
  // key that is not base64 of 32 bytes.
  Status Add(std::string area, std::string_view signing_base64, std::string_view sealing_base64);
  // The peer of `area`, or null.
  const PeerKeys* Find(std::string_view area) const;

 private:
  std::map<std::string, PeerKeys, std::less<>> peers_;
};

}  // namespace safegate::transfer
