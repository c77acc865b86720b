#include "daemon/core/crypto.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "daemon/audit/sha256.h"

namespace safegate::core {
namespace {

static_assert(kKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kHashBytes == std::tuple_size_v<audit::Sha256Digest>);

// The blind-index key is subkey 1 of the at-rest key under this 8-byte context.
constexpr uint64_t kBlindIndexSubkey = 1;
constexpr char kBlindIndexContext[crypto_kdf_CONTEXTBYTES + 1] = "sgblind1";

// errno of a key-file system call, as a Status naming the file.
Status KeyFileError(const std::string& path, std::string_view what, int err) {
  return Status::Internal("store key file " + path + ": " + std::string(what) + ": " +
                          std::strerror(err));
}

// Closes a file descriptor when it goes out of scope.
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

// Creates the key file with fresh randomness. Returns OK with `*existed` set when another
// process created it first. The key is written to a temporary file beside it, made durable,
// then linked to `path` (link, unlike rename, never replaces a file that is there): a crash
// at any point leaves either no key file or a whole one, never an empty one that would stop
// the next start.
Status CreateKeyFile(const std::string& path, bool* existed) {
  *existed = false;
  std::string tmp = path + ".new-XXXXXX";
  Fd f{::mkostemp(tmp.data(), O_CLOEXEC)};  // mode 0600
  if (f.fd < 0) return KeyFileError(path, "create a temporary file beside it", errno);
  struct Unlink {
    const std::string& path;
    ~Unlink() { ::unlink(path.c_str()); }
  } remove_tmp{tmp};
  unsigned char key[kKeyBytes];
  crypto_aead_xchacha20poly1305_ietf_keygen(key);
  size_t done = 0;
  while (done < kKeyBytes) {
    const ssize_t n = ::write(f.fd, key + done, kKeyBytes - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      sodium_memzero(key, sizeof key);
      return KeyFileError(path, "write", err);
    }
    done += static_cast<size_t>(n);
  }
  sodium_memzero(key, sizeof key);
  if (::fsync(f.fd) != 0) return KeyFileError(path, "fsync", errno);
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) {
      *existed = true;
      return Status::Ok();
    }
    return KeyFileError(path, "link", errno);
  }
  return FsyncDirOf(path);
}

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

Status SodiumStatus(int rc, std::string_view what) {
  if (rc == 0) return Status::Ok();
  // libsodium reports failure as -1 without a reason; the operation is the useful part.
  return Status::Internal("crypto: " + std::string(what) + " failed");
}

Status InitSodium() {
  // sodium_init returns 0 on first success, 1 if already initialised, -1 on failure.
  const int rc = sodium_init();
  return SodiumStatus(rc < 0 ? rc : 0, "initialise libsodium");
}

std::string Sha256(std::string_view data) { return Sha256(data, {}); }

std::string Sha256(std::string_view a, std::string_view b) {
  const audit::Sha256Digest digest = audit::Sha256Of({a, b});
  return std::string(digest.begin(), digest.end());
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

std::string RandomId(std::string_view prefix) {
  unsigned char raw[16];
  randombytes_buf(raw, sizeof raw);
  return std::string(prefix) + Hex(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
}

std::string TimeOrderedId(std::string_view prefix, int64_t now_ms) {
  unsigned char raw[16];
  const uint64_t t = static_cast<uint64_t>(std::max<int64_t>(0, now_ms)) & 0xffffffffffffULL;
  for (int i = 0; i < 6; ++i) raw[i] = static_cast<unsigned char>(t >> (8 * (5 - i)));
  randombytes_buf(raw + 6, sizeof raw - 6);
  return std::string(prefix) + Hex(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
}

Result<std::unique_ptr<AtRestKey>> AtRestKey::LoadOrCreate(const std::string& path) {
  if (Status s = InitSodium(); !s.ok()) return s;
  Fd f;
  for (int attempt = 0; attempt < 2; ++attempt) {
    f.fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (f.fd >= 0 || errno != ENOENT) break;
    bool existed = false;
    if (Status s = CreateKeyFile(path, &existed); !s.ok()) return s;
  }
  if (f.fd < 0) return KeyFileError(path, "open", errno);

  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return KeyFileError(path, "stat", errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::Internal("store key file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    return Status::Internal("store key file " + path + " is accessible by group or others (mode " +
                            OctalMode(st.st_mode) + "); it must be 0600: chmod 600 " + path);
  }
  if (st.st_uid != ::geteuid()) {
    return Status::Internal("store key file " + path + " is owned by uid " +
                            std::to_string(st.st_uid) + ", not by the gateway's user (uid " +
                            std::to_string(::geteuid()) + ")");
  }
  if (st.st_size != static_cast<off_t>(kKeyBytes)) {
    return Status::Internal("store key file " + path + " must hold exactly " +
                            std::to_string(kKeyBytes) + " bytes, it holds " +
                            std::to_string(st.st_size));
  }

  auto* key = static_cast<unsigned char*>(sodium_malloc(2 * kKeyBytes));
  if (key == nullptr) return SodiumStatus(-1, "allocate key memory");
  std::unique_ptr<AtRestKey> out(new AtRestKey(key));
  size_t done = 0;
  while (done < kKeyBytes) {
    const ssize_t n = ::read(f.fd, key + done, kKeyBytes - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return KeyFileError(path, "read", errno);
    if (n == 0) return Status::Internal("store key file " + path + " is shorter than 32 bytes");
    done += static_cast<size_t>(n);
  }
  static_assert(crypto_kdf_KEYBYTES == kKeyBytes && crypto_kdf_CONTEXTBYTES == 8);
  if (Status s = SodiumStatus(
          crypto_kdf_derive_from_key(key + kKeyBytes, kKeyBytes, kBlindIndexSubkey,
                                     kBlindIndexContext, key),
          "derive the blind-index key");
      !s.ok()) {
    return s;
  }
  return out;
}

AtRestKey::~AtRestKey() { sodium_free(key_); }  // sodium_free wipes before freeing

Result<AtRestKey::Sealed> AtRestKey::Seal(std::string_view plaintext, std::string_view ad) const {
  return SealWithKey(std::string_view(reinterpret_cast<const char*>(key_), kKeyBytes), plaintext,
                     ad);
}

Result<std::string> AtRestKey::Unseal(std::string_view nonce, std::string_view ciphertext,
                                      std::string_view ad) const {
  return UnsealWithKey(std::string_view(reinterpret_cast<const char*>(key_), kKeyBytes), nonce,
                       ciphertext, ad);
}

std::string AtRestKey::BlindIndex(std::string_view value) const {
  std::string out(kHashBytes, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(value.data()), value.size(),
                     key_ + kKeyBytes, kKeyBytes);
  return out;
}

Result<SealedBytes> SealWithKey(std::string_view key, std::string_view plaintext,
                                std::string_view ad) {
  if (key.size() != kKeyBytes) return SodiumStatus(-1, "seal (the key is not 32 bytes)");
  SealedBytes out;
  out.nonce.resize(kNonceBytes);
  randombytes_buf(out.nonce.data(), kNonceBytes);
  out.ciphertext.resize(plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long len = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(out.ciphertext.data()), &len,
      reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
      reinterpret_cast<const unsigned char*>(out.nonce.data()),
      reinterpret_cast<const unsigned char*>(key.data()));
  if (Status s = SodiumStatus(rc, "seal"); !s.ok()) return s;
  out.ciphertext.resize(len);
  return out;
}

Result<std::string> UnsealWithKey(std::string_view key, std::string_view nonce,
                                  std::string_view ciphertext, std::string_view ad) {
  if (key.size() != kKeyBytes || nonce.size() != kNonceBytes ||
      ciphertext.size() < crypto_aead_xchacha20poly1305_ietf_ABYTES) {
    return SodiumStatus(-1, "unseal (malformed nonce or ciphertext)");
  }
  std::string out(ciphertext.size() - crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long len = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      reinterpret_cast<unsigned char*>(out.data()), &len, nullptr,
      reinterpret_cast<const unsigned char*>(ciphertext.data()), ciphertext.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(),
      reinterpret_cast<const unsigned char*>(nonce.data()),
      reinterpret_cast<const unsigned char*>(key.data()));
  if (Status s = SodiumStatus(rc, "unseal (wrong key or altered data)"); !s.ok()) return s;
  out.resize(len);
  return out;
}

}  // namespace safegate::core
