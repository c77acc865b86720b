// Per-subject keys for the audit log's sealed details, and the blind index that finds them.
//
// An audit entry's bytes carry no identifying details: the subject reference (and any free
// text about the subject) go into a small `details` object,
//
//   details = CanonicalJson({"salt": 32 lower-case hex (16 random bytes),
//                            "subject": "<reference>", ["text": "<free text>"]})
//
// and the entry commits to it by `details_hash` = hex SHA-256(details). The random salt makes
// the hash useless for guessing (NHS numbers are few enough to try them all). The details are
// sealed (XChaCha20-Poly1305, additional data "audit_details:<seq>") under a key of their own
// subject, stored in `subject_keys` sealed under the at-rest key. A subject's key is found
// only through the blind index of its reference (AtRestKey::BlindIndex). Destroying the key
// (Erase) leaves the entries, their hashes and the Merkle tree intact and their details
// unreadable for good. docs/audit-log.md is the normative description.
//
// Ownership: SubjectKeys borrows the connection and the at-rest key; both must outlive it.
// Thread-safety: none; it runs on the store's writer thread (or a verifier's own connection).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/core/crypto.h"
#include "daemon/core/sqlite.h"
#include "record/status.h"

namespace safegate::core {

// The canonical details bytes. `salt_hex` is 32 lower-case hex characters; `text` is left
// out when empty.
std::string AuditDetailsBytes(std::string_view subject, std::string_view salt_hex,
                              std::string_view text);

struct AuditDetails {
  std::string subject;
  std::string text;
  std::string salt;  // hex
};
// Parses details bytes; kInternal naming what is wrong.
Result<AuditDetails> ParseAuditDetails(std::string_view bytes);

class SubjectKeys {
 public:
  SubjectKeys(Db* db, const AtRestKey* key) : db_(db), key_(key) {}
  ~SubjectKeys() { Forget(); }
  SubjectKeys(const SubjectKeys&) = delete;
  SubjectKeys& operator=(const SubjectKeys&) = delete;

  struct Sealed {
    int64_t key_id = 0;
    std::string blob;          // nonce || ciphertext of the details
    std::string details_hash;  // hex SHA-256 of the details bytes
  };
  // Finds or creates the key of `subject`, makes its details with a fresh salt and seals them
  // for entry `seq`. REQUIRES: a transaction is open (a created key is rolled back with it).
  // The key last used stays in memory until Forget (or another subject's Seal), so the
  // several entries of one push look it up and open it once.
  Result<Sealed> Seal(std::string_view subject, std::string_view text, int64_t seq,
                      int64_t now_ms);
  // Wipes the key Seal remembers. Called whenever what it found may be rolled back or go
  // stale: by the audit log when a job's savepoint is rolled back and at Load, by the writer
  // at the start and end of each job, and by Erase.
  void Forget();

  // Keys already unsealed during one operation (a page of entries, a verification), wiped on
  // destruction. A cache must not outlive the operation: a key erased later would survive in it.
  class Cache {
   public:
    Cache() = default;
    ~Cache();
    Cache(const Cache&) = delete;
    Cache& operator=(const Cache&) = delete;

   private:
    friend class SubjectKeys;
    std::map<int64_t, std::optional<std::string>> keys_;  // nullopt: erased
  };
  // Opens the sealed details of entry `seq` under key `key_id`: nullopt when the key has been
  // erased. kInternal when they do not open, do not parse, or (if `details_hash` is not
  // empty) do not hash to it.
  Result<std::optional<AuditDetails>> Open(int64_t key_id, int64_t seq, std::string_view blob,
                                           std::string_view details_hash, Cache& cache);

  // The live key of `subject`, if there is one (none: never seen, or erased).
  Result<std::optional<int64_t>> Find(std::string_view subject);

  // Destroys key `key_id`: its sealed key and its blind index are set to NULL, and the
  // erasure (time, the seq of its subject_erased entry) recorded. kNotFound when the key does
  // not exist or is already erased. REQUIRES: a transaction is open.
  Status Erase(int64_t key_id, int64_t now_ms, int64_t erased_seq);

 private:
  // The raw key `key_id` as held in `cache`, or nullptr when erased.
  Result<const std::string*> KeyBytes(int64_t key_id, Cache& cache);

  Db* db_;
  const AtRestKey* key_;
  struct Remembered {
    std::string subject;
    int64_t key_id = 0;
    std::string key;  // raw; wiped by Forget
  };
  std::optional<Remembered> last_;
};

}  // namespace safegate::core
