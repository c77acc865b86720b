#include "daemon/audit/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace safegate::audit {
namespace {

[[noreturn]] void Abort(const char* what) {
  std::fprintf(stderr, "safegate: OpenSSL SHA-256 failed: %s\n", what);
  std::abort();
}

// The algorithm is fetched once per process: fetching it per call costs more than hashing
// a Merkle node.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) Abort("fetch");
    return m;
  }();
  return md;
}

// One reusable context per thread, freed when the thread ends.
struct Context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Context() {
    if (ctx == nullptr) Abort("context");
  }
  ~Context() { EVP_MD_CTX_free(ctx); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
};

}  // namespace

Sha256Digest Sha256Of(std::initializer_list<std::string_view> parts) {
  thread_local Context context;
  EVP_MD_CTX* ctx = context.ctx;
  if (EVP_DigestInit_ex2(ctx, Sha256Md(), nullptr) != 1) Abort("init");
  for (std::string_view part : parts) {
    if (!part.empty() && EVP_DigestUpdate(ctx, part.data(), part.size()) != 1) Abort("update");
  }
  Sha256Digest out;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != out.size()) Abort("final");
  return out;
}

}  // namespace safegate::audit
