#include "daemon/core/subject_keys.h"

#include <sodium.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "record/canonical_json.h"
#include "record/record.h"

namespace safegate::core {
namespace {

using nlohmann::json;

constexpr size_t kSaltBytes = 16;

// Additional data binding each sealed value to its place: a subject key to its blind index,
// the details to their entry.
std::string KeyAd(std::string_view blind) { return "subject_key:" + std::string(blind); }
std::string DetailsAd(int64_t seq) { return "audit_details:" + std::to_string(seq); }

void Wipe(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
  s.clear();
}

// A fresh salt as hex. The random bytes are drawn from the kernel a block at a time (one
// getrandom call per 64 salts instead of one per audit entry); each salt's bytes are wiped
// from the block as they are taken. Per thread, so no lock is needed.
std::string SaltHex() {
  constexpr size_t kBlock = 64 * kSaltBytes;
  thread_local struct Pool {
    unsigned char bytes[kBlock];
    size_t used = kBlock;
    ~Pool() { sodium_memzero(bytes, sizeof bytes); }
  } pool;
  if (pool.used + kSaltBytes > kBlock) {
    randombytes_buf(pool.bytes, kBlock);
    pool.used = 0;
  }
  unsigned char* salt = pool.bytes + pool.used;
  pool.used += kSaltBytes;
  std::string hex = Hex(std::string_view(reinterpret_cast<const char*>(salt), kSaltBytes));
  sodium_memzero(salt, kSaltBytes);
  return hex;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string AuditDetailsBytes(std::string_view subject, std::string_view salt_hex,
                              std::string_view text) {
  // Every audit entry about a subject makes these bytes: the canonical JSON of {salt, subject,
  // text (when not empty)}, written member by member in key order (record/canonical_json.h).
  std::string out;
  out.reserve(36 + salt_hex.size() + subject.size() + (text.empty() ? 0 : 10 + text.size()));
  out += "{\"salt\":";
  record::AppendCanonicalJsonString(out, salt_hex);
  out += ",\"subject\":";
  record::AppendCanonicalJsonString(out, subject);
  if (!text.empty()) {
    out += ",\"text\":";
    record::AppendCanonicalJsonString(out, text);
  }
  out += '}';
  return out;
}

Result<AuditDetails> ParseAuditDetails(std::string_view bytes) {
  const json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal("audit details are not a JSON object");
  }
  AuditDetails d;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) {
      return Status::Internal("audit details \"" + key + "\" is not a string");
    }
    if (key == "salt") {
      d.salt = value.get<std::string>();
    } else if (key == "subject") {
      d.subject = value.get<std::string>();
    } else if (key == "text") {
      d.text = value.get<std::string>();
    } else {
      return Status::Internal("audit details have an unknown key \"" + key + "\"");
    }
  }
  if (d.salt.size() != 2 * kSaltBytes || !IsLowerHex(d.salt)) {
    return Status::Internal("audit details \"salt\" is not 32 lower-case hex characters");
  }
  if (!j.contains("subject")) return Status::Internal("audit details lack \"subject\"");
  return d;
}

SubjectKeys::Cache::~Cache() {
  for (auto& [id, key] : keys_) {
    if (key) Wipe(*key);
  }
}

void SubjectKeys::Forget() {
  if (last_) Wipe(last_->key);
  last_.reset();
}

Result<SubjectKeys::Sealed> SubjectKeys::Seal(std::string_view subject, std::string_view text,
                                              int64_t seq, int64_t now_ms) {
  if (!last_ || last_->subject != subject) {
    Forget();
    const std::string blind = key_->BlindIndex(subject);
    Remembered found;
    found.subject = std::string(subject);
    auto find = db_->Prepare(
        "SELECT key_id, nonce, sealed_key FROM subject_keys WHERE blind = ?1");
    if (!find.ok()) return find.status();
    Stmt& f = **find;
    f.BindBlob(1, blind);
    auto row = f.Step();
    if (!row.ok()) return row.status();
    if (*row) {
      found.key_id = f.Int(0);
      auto opened = key_->Unseal(f.Blob(1), f.Blob(2), KeyAd(blind));
      f.Reset();
      if (!opened.ok()) {
        return Status::Internal("audit: the key of subject key " + std::to_string(found.key_id) +
                                " does not open: " + opened.status().detail());
      }
      found.key = std::move(*opened);
    } else {
      f.Reset();
      found.key = RandomBytes(kKeyBytes);
      auto sealed = key_->Seal(found.key, KeyAd(blind));
      if (!sealed.ok()) {
        Wipe(found.key);
        return sealed.status();
      }
      auto ins = db_->Prepare(
          "INSERT INTO subject_keys(blind, nonce, sealed_key, created_at_ms) "
          "VALUES (?1, ?2, ?3, ?4)");
      if (!ins.ok()) {
        Wipe(found.key);
        return ins.status();
      }
      (*ins)->BindBlob(1, blind).BindBlob(2, sealed->nonce).BindBlob(3, sealed->ciphertext);
      (*ins)->Bind(4, now_ms);
      if (Status s = (*ins)->Run(); !s.ok()) {
        Wipe(found.key);
        return s;
      }
      found.key_id = db_->LastInsertRowid();
    }
    last_ = std::move(found);  // moved, so no unwiped copy is left behind
  }
  Sealed out;
  out.key_id = last_->key_id;
  const std::string details =
      AuditDetailsBytes(subject, SaltHex(), text);
  out.details_hash = Hex(Sha256(details));
  auto sealed = SealWithKey(last_->key, details, DetailsAd(seq));
  if (!sealed.ok()) return sealed.status();
  out.blob = sealed->nonce + sealed->ciphertext;
  return out;
}

Result<const std::string*> SubjectKeys::KeyBytes(int64_t key_id, Cache& cache) {
  if (auto it = cache.keys_.find(key_id); it != cache.keys_.end()) {
    return it->second ? &*it->second : nullptr;
  }
  auto q = db_->Prepare(
      "SELECT blind, nonce, sealed_key, erased_at_ms FROM subject_keys WHERE key_id = ?1");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, key_id);
  auto row = s.Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    return Status::Internal("audit: subject key " + std::to_string(key_id) + " does not exist");
  }
  std::optional<std::string> key;
  if (s.IsNull(3)) {
    auto opened = key_->Unseal(s.Blob(1), s.Blob(2), KeyAd(s.Blob(0)));
    if (!opened.ok()) {
      s.Reset();
      return Status::Internal("audit: subject key " + std::to_string(key_id) +
                              " does not open: " + opened.status().detail());
    }
    key = std::move(*opened);
  }
  s.Reset();
  auto& slot = cache.keys_[key_id];
  slot = std::move(key);  // moved, so no unwiped copy is left behind
  return slot ? &*slot : nullptr;
}

Result<std::optional<AuditDetails>> SubjectKeys::Open(int64_t key_id, int64_t seq,
                                                      std::string_view blob,
                                                      std::string_view details_hash,
                                                      Cache& cache) {
  auto key = KeyBytes(key_id, cache);
  if (!key.ok()) return key.status();
  if (*key == nullptr) return std::optional<AuditDetails>();
  if (blob.size() < kNonceBytes) {
    return Status::Internal("the sealed details of entry " + std::to_string(seq) +
                            " are too short");
  }
  auto plain = UnsealWithKey(**key, blob.substr(0, kNonceBytes), blob.substr(kNonceBytes),
                             DetailsAd(seq));
  if (!plain.ok()) {
    return Status::Internal("the sealed details of entry " + std::to_string(seq) +
                            " do not open under subject key " + std::to_string(key_id));
  }
  if (!details_hash.empty() && Hex(Sha256(*plain)) != details_hash) {
    return Status::Internal("the sealed details of entry " + std::to_string(seq) +
                            " do not hash to its details_hash");
  }
  auto details = ParseAuditDetails(*plain);
  Wipe(*plain);
  if (!details.ok()) return details.status();
  return std::optional<AuditDetails>(std::move(*details));
}

Result<std::optional<int64_t>> SubjectKeys::Find(std::string_view subject) {
  auto q = db_->Prepare("SELECT key_id FROM subject_keys WHERE blind = ?1");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.BindBlob(1, key_->BlindIndex(subject));
  auto row = s.Step();
  if (!row.ok()) return row.status();
  std::optional<int64_t> out;
  if (*row) out = s.Int(0);
  s.Reset();
  return out;
}

Status SubjectKeys::Erase(int64_t key_id, int64_t now_ms, int64_t erased_seq) {
  Forget();
  auto upd = db_->Prepare(
      "UPDATE subject_keys SET blind = NULL, nonce = NULL, sealed_key = NULL, "
      "erased_at_ms = ?2, erased_seq = ?3 WHERE key_id = ?1 AND erased_at_ms IS NULL");
  if (!upd.ok()) return upd.status();
  (*upd)->Bind(1, key_id).Bind(2, now_ms).Bind(3, erased_seq);
  if (Status s = (*upd)->Run(); !s.ok()) return s;
  if (db_->Changes() != 1) {
    return Status::NotFound("subject key " + std::to_string(key_id) + " is not a live key");
  }
  return Status::Ok();
}

}  // namespace safegate::core
