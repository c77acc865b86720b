#include "daemon/transfer/gateway_keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace safegate::transfer {
namespace {

static_assert(kPublicKeyBytes == crypto_sign_PUBLICKEYBYTES);
static_assert(kPublicKeyBytes == crypto_box_PUBLICKEYBYTES);
static_assert(kSecretKeyFileBytes == crypto_sign_SEEDBYTES);
static_assert(kSecretKeyFileBytes == crypto_box_SECRETKEYBYTES);
static_assert(kSignatureBytes == crypto_sign_BYTES);

constexpr size_t kSignSecretBytes = crypto_sign_SECRETKEYBYTES;  // 64
constexpr size_t kBoxSecretBytes = crypto_box_SECRETKEYBYTES;    // 32

// The one place libsodium return codes become a Status.
Status SodiumStatus(int rc, std::string_view what) {
  if (rc == 0) return Status::Ok();
  return Status::Internal("crypto: " + std::string(what) + " failed");
}

Status InitSodium() {
  const int rc = sodium_init();  // 0 first time, 1 already done, -1 failure
  return SodiumStatus(rc < 0 ? rc : 0, "initialise libsodium");
}

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Which key a file holds, for messages.
struct KeyFile {
  std::string_view what;  // "transfer signing key file"
  std::string path;
};

Status FileError(const KeyFile& f, std::string_view op, int err) {
  return Status::Internal(std::string(f.what) + " " + f.path + ": " + std::string(op) + ": " +
                          std::strerror(err));
}

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Status WriteAll(int fd, const unsigned char* data, size_t size, const KeyFile& f) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return FileError(f, "write", n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir, const KeyFile& f) {
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return FileError(f, "open its directory", errno);
  if (::fsync(d.fd) != 0) return FileError(f, "fsync its directory", errno);
  return Status::Ok();
}

// Moves `tmp` to `path` unless `path` exists. Sets *existed when it does (another process
// made the key first: its key wins, ours is discarded).
Status RenameNoReplace(const std::string& tmp, const KeyFile& f, bool* existed) {
  *existed = false;
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, f.path.c_str(), RENAME_NOREPLACE) == 0) {
    return Status::Ok();
  }
  int err = errno;
  if (err == EINVAL || err == ENOSYS) {
    // A file system without RENAME_NOREPLACE: link() also refuses to replace.
    if (::link(tmp.c_str(), f.path.c_str()) == 0) {
      ::unlink(tmp.c_str());
      return Status::Ok();
    }
    err = errno;
  }
  ::unlink(tmp.c_str());
  if (err == EEXIST) {
    *existed = true;
    return Status::Ok();
  }
  return FileError(f, "rename the new key into place", err);
}

// Writes 32 fresh secret bytes from `make` atomically at f.path (see the header).
template <typename Make>
Status CreateKeyFile(const std::string& dir, const KeyFile& f, Make make) {
  unsigned char suffix[8];
  randombytes_buf(suffix, sizeof suffix);
  char hex[2 * sizeof suffix + 1];
  sodium_bin2hex(hex, sizeof hex, suffix, sizeof suffix);
  const std::string name = f.path.substr(f.path.rfind('/') + 1);
  const std::string tmp = dir + "/." + name + ".tmp-" + hex;

  Fd fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)};
  if (fd.fd < 0) return FileError(f, "create " + tmp, errno);
  // The umask can only take bits away; set 0600 exactly so that the owner can read it.
  if (::fchmod(fd.fd, 0600) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return FileError(f, "chmod 600 " + tmp, err);
  }
  unsigned char secret[kSecretKeyFileBytes];
  make(secret);
  Status s = WriteAll(fd.fd, secret, sizeof secret, f);
  sodium_memzero(secret, sizeof secret);
  if (s.ok() && ::fsync(fd.fd) != 0) s = FileError(f, "fsync " + tmp, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd.fd);
  fd.fd = -1;
  bool existed = false;
  if (Status r = RenameNoReplace(tmp, f, &existed); !r.ok()) return r;
  return FsyncDir(dir, f);
}

// Reads the 32 secret bytes of f.path into `out`, after checking the file is a private,
// regular file of the right size. `create` makes a missing file first.
template <typename Make>
Status ReadKeyFile(const std::string& dir, const KeyFile& f, bool create, Make make,
                   unsigned char* out) {
  Fd fd;
  for (int attempt = 0; attempt < 2; ++attempt) {
    // O_NONBLOCK: a FIFO put in the key's place must not hang the start (it is then refused
    // as not a regular file).
    fd.fd = ::open(f.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd.fd >= 0 || errno != ENOENT) break;
    if (!create) {
      return Status::NotFound(std::string(f.what) + " " + f.path +
                              " does not exist: safegated creates the gateway's transfer keys "
                              "in its data directory on its first start");
    }
    if (Status s = CreateKeyFile(dir, f, make); !s.ok()) return s;
  }
  if (fd.fd < 0) return FileError(f, "open", errno);

  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) return FileError(f, "stat", errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::Internal(std::string(f.what) + " " + f.path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    return Status::Internal(std::string(f.what) + " " + f.path +
                            " is accessible by group or others (mode " + OctalMode(st.st_mode) +
                            "); it must be 0600: chmod 600 " + f.path);
  }
  if (st.st_uid != ::geteuid()) {
    return Status::Internal(std::string(f.what) + " " + f.path + " is owned by uid " +
                            std::to_string(st.st_uid) + ", not by the gateway's user (uid " +
                            std::to_string(::geteuid()) + ")");
  }
  if (st.st_size != static_cast<off_t>(kSecretKeyFileBytes)) {
    return Status::Internal(std::string(f.what) + " " + f.path + " must hold exactly " +
                            std::to_string(kSecretKeyFileBytes) + " bytes, it holds " +
                            std::to_string(st.st_size));
  }
  size_t done = 0;
  while (done < kSecretKeyFileBytes) {
    const ssize_t n = ::read(fd.fd, out + done, kSecretKeyFileBytes - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FileError(f, "read", errno);
    if (n == 0) {
      return Status::Internal(std::string(f.what) + " " + f.path + " is shorter than 32 bytes");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

std::string ToBase64(std::span<const uint8_t> bytes) {
  const size_t len = sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(len, '\0');
  sodium_bin2base64(out.data(), len, bytes.data(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(len - 1);  // the encoded length counts the terminating NUL
  return out;
}

std::string ToBase64(std::string_view bytes) {
  return ToBase64(std::span<const uint8_t>(U(bytes), bytes.size()));
}

std::optional<std::string> FromBase64(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

std::optional<PublicKey> PublicKeyFromBase64(std::string_view text) {
  const auto raw = FromBase64(text);
  if (!raw || raw->size() != kPublicKeyBytes) return std::nullopt;
  PublicKey key{};
  std::memcpy(key.data(), raw->data(), key.size());
  return key;
}

bool VerifySignature(const PublicKey& signing_key, std::string_view message,
                     std::string_view signature) {
  if (signature.size() != kSignatureBytes) return false;
  if (sodium_init() < 0) return false;
  return crypto_sign_verify_detached(U(signature), U(message), message.size(),
                                     signing_key.data()) == 0;
}

std::string SealTo(const PublicKey& sealing_key, std::string_view plaintext) {
  // Without a working libsodium nothing can be sealed: a broken invariant, not an input
  // error, so the process stops rather than send anything unsealed.
  if (sodium_init() < 0) std::abort();
  std::string out(plaintext.size() + crypto_box_SEALBYTES, '\0');
  if (crypto_box_seal(reinterpret_cast<unsigned char*>(out.data()), U(plaintext), plaintext.size(),
                      sealing_key.data()) != 0) {
    std::abort();
  }
  return out;
}

Result<std::unique_ptr<GatewayKeys>> GatewayKeys::LoadOrCreate(const std::string& data_dir) {
  return Open(data_dir, /*create=*/true);
}

Result<std::unique_ptr<GatewayKeys>> GatewayKeys::Load(const std::string& data_dir) {
  return Open(data_dir, /*create=*/false);
}

Result<std::unique_ptr<GatewayKeys>> GatewayKeys::Open(const std::string& data_dir, bool create) {
  if (Status s = InitSodium(); !s.ok()) return s;
  struct stat st {};
  if (::stat(data_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::Internal("data directory " + data_dir +
                            " does not exist or is not a directory (it holds the gateway's "
                            "transfer keys)");
  }
  std::unique_ptr<GatewayKeys> keys(new GatewayKeys());
  keys->secret_ = static_cast<unsigned char*>(sodium_malloc(kSignSecretBytes + kBoxSecretBytes));
  if (keys->secret_ == nullptr) return SodiumStatus(-1, "allocate key memory");
  unsigned char* sign_sk = keys->secret_;
  unsigned char* box_sk = keys->secret_ + kSignSecretBytes;

  const KeyFile signing{"transfer signing key file", data_dir + "/" + std::string(kSigningKeyFile)};
  const KeyFile sealing{"transfer sealing key file", data_dir + "/" + std::string(kSealingKeyFile)};
  // Both secrets are 32 uniformly random bytes: an Ed25519 seed, and an X25519 secret key
  // (clamped by libsodium when used).
  auto make_secret = [](unsigned char* out) { randombytes_buf(out, kSecretKeyFileBytes); };

  unsigned char seed[kSecretKeyFileBytes];
  Status s = ReadKeyFile(data_dir, signing, create, make_secret, seed);
  if (s.ok()) {
    s = SodiumStatus(crypto_sign_seed_keypair(keys->signing_public_.data(), sign_sk, seed),
                     "derive the Ed25519 keypair");
  }
  sodium_memzero(seed, sizeof seed);
  if (!s.ok()) return s;
  if (Status r = ReadKeyFile(data_dir, sealing, create, make_secret, box_sk); !r.ok()) return r;
  if (Status r = SodiumStatus(crypto_scalarmult_base(keys->sealing_public_.data(), box_sk),
                              "derive the X25519 public key");
      !r.ok()) {
    return r;
  }
  return keys;
}

GatewayKeys::~GatewayKeys() { sodium_free(secret_); }  // wipes before freeing; null is fine

std::string GatewayKeys::SigningPublicKeyBase64() const { return ToBase64(signing_public_); }
std::string GatewayKeys::SealingPublicKeyBase64() const { return ToBase64(sealing_public_); }

std::string GatewayKeys::Sign(std::string_view message) const {
  std::string sig(kSignatureBytes, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr, U(message),
                       message.size(), secret_);
  return sig;
}

Result<std::string> GatewayKeys::OpenSealed(std::string_view sealed) const {
  if (sealed.size() < crypto_box_SEALBYTES) {
    return Status::BadRequest("sealed message is " + std::to_string(sealed.size()) +
                              " bytes, shorter than an empty sealed box (" +
                              std::to_string(crypto_box_SEALBYTES) + " bytes)");
  }
  std::string out(sealed.size() - crypto_box_SEALBYTES, '\0');
  if (crypto_box_seal_open(reinterpret_cast<unsigned char*>(out.data()), U(sealed), sealed.size(),
                           sealing_public_.data(), secret_ + kSignSecretBytes) != 0) {
    return Status::BadRequest(
        "sealed message cannot be opened with this gateway's sealing key: it was sealed to "
        "another key, or altered in transit");
  }
  return out;
}

std::string KeysShowText(std::string_view area, const GatewayKeys& keys) {
  std::string a(area);
  return "# Public transfer keys of the " + a +
         " gateway. Paste these lines into the [[peer]] block\n"
         "# for area \"" +
         a +
         "\" in the other gateway's registry (with its endpoint and\n"
         "# certificate), then reload that gateway.\n"
         "area = \"" +
         a +
         "\"\n"
         "signing_public_key = \"" +
         keys.SigningPublicKeyBase64() +
         "\"\n"
         "sealing_public_key = \"" +
         keys.SealingPublicKeyBase64() + "\"\n";
}

Result<PeerDirectory> PeerDirectory::FromPeers(const std::vector<config::Peer>& peers) {
  PeerDirectory dir;
  std::vector<Problem> problems;
  for (size_t i = 0; i < peers.size(); ++i) {
    Status s = dir.Add(peers[i].area, peers[i].signing_public_key, peers[i].sealing_public_key);
    if (!s.ok()) {
      for (const Problem& p : s.problems()) {
        problems.push_back({"peer[" + std::to_string(i) + "]." + p.where, p.what});
      }
    }
  }
  if (!problems.empty()) return Status::Invalid("peer gateway keys are not usable", problems);
  return dir;
}

Status PeerDirectory::Add(std::string area, std::string_view signing_base64,
                          std::string_view sealing_base64) {
  PeerKeys peer;
  peer.area = area;
  std::vector<Problem> problems;
  if (!signing_base64.empty()) {
    peer.signing = PublicKeyFromBase64(signing_base64);
    if (!peer.signing) {
      problems.push_back({"signing_public_key", "expected a base64 Ed25519 public key (32 bytes)"});
    }
  }
  if (!sealing_base64.empty()) {
    peer.sealing = PublicKeyFromBase64(sealing_base64);
    if (!peer.sealing) {
      problems.push_back({"sealing_public_key", "expected a base64 X25519 public key (32 bytes)"});
    }
  }
  if (!problems.empty()) {
    return Status::Invalid("keys of peer gateway " + area + " are not usable", problems);
  }
  peers_[std::move(area)] = std::move(peer);
  return Status::Ok();
}

const PeerKeys* PeerDirectory::Find(std::string_view area) const {
  const auto it = peers_.find(area);
  return it == peers_.end() ? nullptr : &it->second;
}

}  // namespace safegate::transfer
