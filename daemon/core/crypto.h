// Cryptography the store needs, all from libsodium: SHA-256, random identifiers, the
// at-rest key that seals record bodies with XChaCha20-Poly1305 (IETF AEAD), sealing under
// other 32-byte keys (the per-subject keys of the audit details), and the keyed blind index
// of subject references.
//
// libsodium failures become a Status in one function (SodiumStatus). The key lives in
// sodium_malloc'd memory (guard pages, mlock'd where the system allows) and is wiped when the
// AtRestKey is destroyed.
//
// Thread-safety: the free functions are thread-safe once InitSodium() has returned OK.
// AtRestKey is immutable after loading; Seal/Unseal may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "record/status.h"

namespace safegate::core {

constexpr size_t kKeyBytes = 32;    // crypto_aead_xchacha20poly1305_ietf_KEYBYTES
constexpr size_t kNonceBytes = 24;  // crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
constexpr size_t kHashBytes = 32;   // crypto_hash_sha256_BYTES

// Translates a libsodium return code (0 success, anything else failure) into a Status;
// `what` names the operation ("seal record body").
Status SodiumStatus(int rc, std::string_view what);

// sodium_init(); safe to call many times from any thread.
Status InitSodium();

// SHA-256 of `data`: 32 raw bytes.
std::string Sha256(std::string_view data);
// SHA-256 of `a || b` without building the concatenation.
std::string Sha256(std::string_view a, std::string_view b);

// Lower-case hex of raw bytes, and back (nullopt for odd length or a non-hex character).
std::string Hex(std::string_view bytes);
std::optional<std::string> FromHex(std::string_view hex);

// `n` bytes of fresh randomness.
std::string RandomBytes(size_t n);

// `prefix` followed by 32 lower-case hex characters of fresh randomness (128 bits), e.g.
// "rec_3f2a...". Carries no personal data and no ordering.
std::string RandomId(std::string_view prefix);

// `prefix` followed by 32 lower-case hex characters: 12 of `now_ms` (milliseconds since the
// Unix epoch) and 20 of fresh randomness (80 bits), e.g. "rec_018c2d3f2a9b...". Ids made
// later sort later, so an index keyed by them grows at its end, where one page takes many
// new keys, rather than at a random page per key. Carries no personal data; it tells when
// it was made, which the row it names records anyway.
std::string TimeOrderedId(std::string_view prefix, int64_t now_ms);

struct SealedBytes {
  std::string nonce;       // 24 random bytes
  std::string ciphertext;  // plaintext length + 16-byte tag
};
// XChaCha20-Poly1305 (IETF) under a raw 32-byte `key` with a fresh random nonce; `ad` is
// authenticated, not encrypted. kInternal if `key` is not 32 bytes.
Result<SealedBytes> SealWithKey(std::string_view key, std::string_view plaintext,
                                std::string_view ad);
// Decrypts and authenticates; kInternal if anything does not match.
Result<std::string> UnsealWithKey(std::string_view key, std::string_view nonce,
                                  std::string_view ciphertext, std::string_view ad);

// The gateway's at-rest key, kept in a file outside the database.
//
// A second key, the blind-index key, is derived from it (libsodium crypto_kdf, subkey 1,
// context "sgblind1"): the index key is separate from the sealing key, so the keyed hashes
// of subject references never use the sealing key itself, yet nothing new has to be kept or
// backed up beside the key file.
class AtRestKey {
 public:
  // Reads the 32-byte key at `path`, or creates it (O_CREAT|O_EXCL, mode 0600, fsync'd,
  // its directory fsync'd) when the file does not exist. Refuses, with a Status naming the
  // file and the fix, a key file that is not a regular file, is readable or writable by group
  // or others, is owned by another user, or is not exactly 32 bytes.
  static Result<std::unique_ptr<AtRestKey>> LoadOrCreate(const std::string& path);
  ~AtRestKey();
  AtRestKey(const AtRestKey&) = delete;
  AtRestKey& operator=(const AtRestKey&) = delete;

  using Sealed = SealedBytes;
  // Encrypts with a fresh random nonce. `ad` (additional data, authenticated but not
  // encrypted) binds the ciphertext to its row: a body moved to another row fails to open.
  Result<Sealed> Seal(std::string_view plaintext, std::string_view ad) const;
  // Decrypts and authenticates; kInternal if the key, nonce, ciphertext or `ad` do not match.
  Result<std::string> Unseal(std::string_view nonce, std::string_view ciphertext,
                             std::string_view ad) const;

  // The blind index of `value`: BLAKE2b-256 keyed with the blind-index key
  // (crypto_generichash), 32 raw bytes. Equal inputs give equal indexes, so lookups work; a
  // guess cannot be checked without the key, so an NHS number is not recoverable from it.
  std::string BlindIndex(std::string_view value) const;

 private:
  explicit AtRestKey(unsigned char* key) : key_(key) {}
  // sodium_malloc'd, 2 * kKeyBytes: the sealing key, then the derived blind-index key.
  unsigned char* key_;
};

}  // namespace safegate::core
