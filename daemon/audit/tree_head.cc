#include "daemon/audit/tree_head.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "daemon/audit/encoding.h"

namespace safegate::audit {
namespace {

static_assert(kPublicKeySize == crypto_sign_PUBLICKEYBYTES);
static_assert(kSeedSize == crypto_sign_SEEDBYTES);
static_assert(kSignatureSize == crypto_sign_BYTES);
static_assert(kTreeHeadDomain.size() == 16);

using json = nlohmann::json;

Status KeyFileError(const std::string& path, std::string_view what, int err) {
  return Status::Internal("tree head signing key file " + path + ": " + std::string(what) + ": " +
                          std::strerror(err));
}

Status EnsureSodium() {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  return Status::Ok();
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status FsyncDirOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return KeyFileError(path, "open its directory", errno);
  if (::fsync(d.fd) != 0) return KeyFileError(path, "fsync its directory", errno);
  return Status::Ok();
}

Status WriteAll(int fd, const unsigned char* data, size_t len, const std::string& path) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return KeyFileError(path, "write", n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Creates the key file from a fresh seed. *existed is set when the file was already there
// (another process may have created it first), and nothing is written then.
Status CreateKeyFile(const std::string& path, bool* existed) {
  *existed = false;
  Fd f{::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)};
  if (f.fd < 0) {
    if (errno == EEXIST) {
      *existed = true;
      return Status::Ok();
    }
    return KeyFileError(path, "create", errno);
  }
  auto* seed = static_cast<unsigned char*>(sodium_malloc(kSeedSize));
  if (seed == nullptr) return Status::Internal("out of memory for the signing key");
  randombytes_buf(seed, kSeedSize);
  Status s = WriteAll(f.fd, seed, kSeedSize, path);
  sodium_free(seed);
  if (!s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  if (::fsync(f.fd) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return KeyFileError(path, "fsync", err);
  }
  return FsyncDirOf(path);
}

// Reads and checks the key file; the seed goes straight into `seed` (sodium_malloc'd).
Status ReadKeyFile(const std::string& path, unsigned char* seed) {
  Fd f{::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
  if (f.fd < 0) {
    if (errno == ELOOP) {
      return Status::Internal("tree head signing key file " + path +
                              " is a symbolic link; point the configuration at the file itself");
    }
    return KeyFileError(path, "open", errno);
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return KeyFileError(path, "stat", errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::Internal("tree head signing key file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::Internal("tree head signing key file " + path + " has mode " + mode +
                            ", so group or others may read or change it; run `chmod 600 " + path +
                            "` (and replace the key if anyone else may have read it)");
  }
  if (st.st_uid != ::geteuid()) {
    return Status::Internal("tree head signing key file " + path + " is owned by uid " +
                            std::to_string(st.st_uid) + ", not by the gateway's user (uid " +
                            std::to_string(::geteuid()) + ")");
  }
  if (st.st_size != static_cast<off_t>(kSeedSize)) {
    return Status::Internal("tree head signing key file " + path + " is " +
                            std::to_string(st.st_size) + " bytes, not the 32 bytes of an " +
                            "Ed25519 seed");
  }
  size_t done = 0;
  while (done < kSeedSize) {
    const ssize_t n = ::read(f.fd, seed + done, kSeedSize - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return KeyFileError(path, "read", errno);
    if (n == 0) return Status::Internal("tree head signing key file " + path + " is truncated");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void PutBigEndian64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

std::string Join(std::string_view where, std::string_view key) {
  return std::string(where) + "/" + std::string(key);
}

}  // namespace

// ---- SigningKey ----

Result<std::unique_ptr<SigningKey>> SigningKey::FromSeed(std::string_view seed) {
  if (Status s = EnsureSodium(); !s.ok()) return s;
  if (seed.size() != kSeedSize) {
    return Status::Internal("an Ed25519 seed is 32 bytes, not " + std::to_string(seed.size()));
  }
  auto* secret = static_cast<unsigned char*>(sodium_malloc(crypto_sign_SECRETKEYBYTES));
  if (secret == nullptr) return Status::Internal("out of memory for the signing key");
  PublicKey pk;
  crypto_sign_seed_keypair(pk.data(), secret, reinterpret_cast<const unsigned char*>(seed.data()));
  return std::unique_ptr<SigningKey>(new SigningKey(secret, pk));
}

Result<std::unique_ptr<SigningKey>> SigningKey::Load(const std::string& path) {
  if (Status s = EnsureSodium(); !s.ok()) return s;
  auto* seed = static_cast<unsigned char*>(sodium_malloc(kSeedSize));
  if (seed == nullptr) return Status::Internal("out of memory for the signing key");
  Status s = ReadKeyFile(path, seed);
  if (!s.ok()) {
    sodium_free(seed);
    return s;
  }
  auto key = FromSeed(std::string_view(reinterpret_cast<const char*>(seed), kSeedSize));
  sodium_free(seed);  // wipes
  return key;
}

Result<std::unique_ptr<SigningKey>> SigningKey::LoadOrCreate(const std::string& path) {
  if (Status s = EnsureSodium(); !s.ok()) return s;
  bool existed = false;
  if (Status s = CreateKeyFile(path, &existed); !s.ok()) return s;
  return Load(path);
}

SigningKey::~SigningKey() { sodium_free(secret_); }

std::string SigningKey::PublicKeyBase64() const {
  return ToBase64(std::span<const uint8_t>(public_key_));
}

Signature SigningKey::Sign(std::string_view message) const {
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size(), secret_);
  return sig;
}

bool VerifySignature(const PublicKey& key, std::string_view message, const Signature& signature) {
  if (sodium_init() < 0) return false;
  return crypto_sign_verify_detached(signature.data(),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), key.data()) == 0;
}

// ---- tree heads ----

std::string TreeHeadSignatureInput(uint64_t tree_size, uint64_t timestamp_ms, const Hash& root) {
  std::string out(kTreeHeadDomain);
  out.reserve(kTreeHeadDomain.size() + 16 + kHashSize);
  PutBigEndian64(out, tree_size);
  PutBigEndian64(out, timestamp_ms);
  out.append(reinterpret_cast<const char*>(root.data()), root.size());
  return out;
}

SignedTreeHead SignTreeHead(const SigningKey& key, uint64_t tree_size, const Hash& root,
                            uint64_t timestamp_ms) {
  SignedTreeHead head;
  head.tree_size = tree_size;
  head.root_hash = root;
  head.timestamp_ms = timestamp_ms;
  head.signature = key.Sign(TreeHeadSignatureInput(tree_size, timestamp_ms, root));
  return head;
}

Status VerifyTreeHead(const SignedTreeHead& head, const PublicKey& key) {
  if (!VerifySignature(key,
                       TreeHeadSignatureInput(head.tree_size, head.timestamp_ms, head.root_hash),
                       head.signature)) {
    return Status::Invalid("the tree head signature (tree size " + std::to_string(head.tree_size) +
                               ", timestamp " + std::to_string(head.timestamp_ms) + ", root " +
                               HashHex(head.root_hash) + ") does not verify under public key " +
                               ToBase64(std::span<const uint8_t>(key)),
                           {{"/signature", "does not verify"}});
  }
  return Status::Ok();
}

json TreeHeadToJson(const SignedTreeHead& head, const PublicKey& key) {
  return json{{"tree_size", head.tree_size},
              {"root_hash", HashHex(head.root_hash)},
              {"timestamp", head.timestamp_ms},
              {"signature", ToBase64(std::span<const uint8_t>(head.signature))},
              {"public_key", ToBase64(std::span<const uint8_t>(key))}};
}

std::optional<PublicKey> ParsePublicKey(std::string_view base64) {
  return FixedFromBase64<kPublicKeySize>(base64);
}

Result<TreeHeadWithKey> TreeHeadFromJson(const json& j, std::string_view where) {
  std::vector<Problem> problems;
  TreeHeadWithKey out;
  if (!j.is_object()) {
    return Status::Invalid("a tree head must be a JSON object",
                           {{std::string(where.empty() ? "/" : where), "not an object"}});
  }
  static constexpr std::array<std::string_view, 5> kKnown = {"tree_size", "root_hash", "timestamp",
                                                             "signature", "public_key"};
  for (const auto& [key, value] : j.items()) {
    if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
      problems.push_back({Join(where, key), "unknown field"});
    }
  }
  auto need = [&](std::string_view key) -> const json* {
    auto it = j.find(key);
    if (it == j.end()) {
      problems.push_back({Join(where, key), "missing"});
      return nullptr;
    }
    return &*it;
  };
  if (const json* v = need("tree_size")) {
    if (v->is_number_unsigned()) {
      out.head.tree_size = v->get<uint64_t>();
    } else {
      problems.push_back({Join(where, "tree_size"), "must be a non-negative integer"});
    }
  }
  if (const json* v = need("timestamp")) {
    if (v->is_number_unsigned()) {
      out.head.timestamp_ms = v->get<uint64_t>();
    } else {
      problems.push_back(
          {Join(where, "timestamp"), "must be a non-negative integer (milliseconds)"});
    }
  }
  if (const json* v = need("root_hash")) {
    auto h = v->is_string() ? FixedFromHex<kHashSize>(v->get<std::string>()) : std::nullopt;
    if (h) {
      out.head.root_hash = *h;
    } else {
      problems.push_back({Join(where, "root_hash"), "must be 64 lower-case hex characters"});
    }
  }
  if (const json* v = need("signature")) {
    auto s = v->is_string() ? FixedFromBase64<kSignatureSize>(v->get<std::string>()) : std::nullopt;
    if (s) {
      out.head.signature = *s;
    } else {
      problems.push_back({Join(where, "signature"), "must be base64 of 64 bytes"});
    }
  }
  if (const json* v = need("public_key")) {
    auto k = v->is_string() ? ParsePublicKey(v->get<std::string>()) : std::nullopt;
    if (k) {
      out.public_key = *k;
    } else {
      problems.push_back({Join(where, "public_key"), "must be base64 of 32 bytes"});
    }
  }
  if (!problems.empty()) {
    return Status::Invalid("the tree head has " + std::to_string(problems.size()) +
                               (problems.size() == 1 ? " problem" : " problems"),
                           std::move(problems));
  }
  return out;
}

// ---- policy and equivocation ----

bool TreeHeadDue(const TreeHeadPolicy& policy, uint64_t tree_size, uint64_t last_size,
                 int64_t now_ms, int64_t last_signed_ms) {
  if (tree_size <= last_size) return false;  // nothing new
  if (tree_size - last_size >= policy.every_entries) return true;
  return now_ms - last_signed_ms >= policy.interval_ms;
}

std::string Equivocation::Describe() const {
  return "two signed tree heads for tree size " + std::to_string(first.tree_size) +
         " with different roots: " + HashHex(first.root_hash) + " (signed at " +
         std::to_string(first.timestamp_ms) + ") and " + HashHex(second.root_hash) +
         " (signed at " + std::to_string(second.timestamp_ms) + ")";
}

Result<std::optional<Equivocation>> FindEquivocation(const std::vector<SignedTreeHead>& heads,
                                                     const PublicKey& key) {
  for (size_t i = 0; i < heads.size(); ++i) {
    if (Status s = VerifyTreeHead(heads[i], key); !s.ok()) {
      return Status::Invalid("tree head " + std::to_string(i) + ": " + s.detail(),
                             {{"/" + std::to_string(i) + "/signature", "does not verify"}});
    }
  }
  std::map<uint64_t, size_t> first_by_size;
  for (size_t i = 0; i < heads.size(); ++i) {
    auto [it, inserted] = first_by_size.emplace(heads[i].tree_size, i);
    if (!inserted && heads[it->second].root_hash != heads[i].root_hash) {
      return std::optional<Equivocation>(Equivocation{heads[it->second], heads[i]});
    }
  }
  return std::optional<Equivocation>();
}

}  // namespace safegate::audit
