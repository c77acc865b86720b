// Micro-benchmarks of the per-record work on a push: parsing and validating a canonical
// record, canonical JSON (what idempotency keys and audit entries hash), SHA-256 of an audit
// entry, and sealing a 1 KiB body with XChaCha20-Poly1305 as the store does at rest.
//
// Run: build-dir/bench/safegate-micro-bench [--benchmark_filter=REGEX]
#include <sodium.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "bench/record_gen.h"
#include "record/record.h"

#ifdef SAFEGATE_BENCH_HAVE_CORE
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "daemon/core/audit_log.h"
#include "daemon/core/crypto.h"
#endif

namespace safegate::bench {
namespace {

PushTemplate Template() {
  PushTemplate t;
  t.agency = "wyp";
  t.recipients = {"bradford-csc", "bthft"};
  t.run_id = "micro";
  return t;
}

// A typical flag as it arrives: the "record" member of a push body.
nlohmann::json TypicalFlag() { return nlohmann::json::parse(PushBody(Template(), 42))["record"]; }

// An audit entry of the shape API.md lists, as canonical bytes.
std::string TypicalAuditEntry() {
  nlohmann::json entry = {
      {"seq", 123456},
      {"at", "2024-01-15T09:12:00.123456Z"},
      {"actor", "wyp"},
      {"action", "delivery_permitted"},
      {"subject", "nhs:9990000018"},
      {"record_id", "rec-01HMA6Z8J5V4K3Q2W1E0R9T8Y7"},
      {"purpose", "safeguarding"},
      {"decision", "permit"},
      {"reasons", {"rule police-to-csc-safeguarding", "basis art6-1e", "cond sch1-para18"}},
      {"prev_hash", std::string(64, 'a')},
  };
  return record::CanonicalJson(entry);
}

void BM_JsonParsePushBody(benchmark::State& state) {
  std::string body = PushBody(Template(), 42);
  for (auto _ : state) {
    auto j = nlohmann::json::parse(body);
    benchmark::DoNotOptimize(j);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_JsonParsePushBody);

void BM_ParseRecord(benchmark::State& state) {
  nlohmann::json flag = TypicalFlag();
  auto check = record::ParseRecord(flag, "/record");
  if (!check.ok()) {
    state.SkipWithError(("the typical flag does not parse: " + check.status().ToString()).c_str());
    return;
  }
  for (auto _ : state) {
    auto r = record::ParseRecord(flag, "/record");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ParseRecord);

void BM_CanonicalJson(benchmark::State& state) {
  nlohmann::json flag = TypicalFlag();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string c = record::CanonicalJson(flag);
    bytes = c.size();
    benchmark::DoNotOptimize(c);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_CanonicalJson);

void BM_Sha256AuditEntry(benchmark::State& state) {
  // RFC 9162 leaf hash: SHA-256(0x00 || entry).
  std::string leaf = std::string(1, '\0') + TypicalAuditEntry();
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  for (auto _ : state) {
    unsigned int len = 0;
    EVP_Digest(leaf.data(), leaf.size(), digest.data(), &len, EVP_sha256(), nullptr);
    benchmark::DoNotOptimize(digest);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * leaf.size()));
}
BENCHMARK(BM_Sha256AuditEntry);

void BM_XChaCha20Poly1305Seal1KiB(benchmark::State& state) {
  if (sodium_init() < 0) {
    state.SkipWithError("libsodium failed to initialise");
    return;
  }
  std::array<unsigned char, crypto_aead_xchacha20poly1305_ietf_KEYBYTES> key{};
  std::array<unsigned char, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES> nonce{};
  crypto_aead_xchacha20poly1305_ietf_keygen(key.data());
  std::string body = PushBody(Template(), 42);
  body.resize(1024, ' ');
  // Additional data binds the ciphertext to its row, as an at-rest record id would.
  const std::string ad = "rec-01HMA6Z8J5V4K3Q2W1E0R9T8Y7";
  std::vector<unsigned char> sealed(body.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  for (auto _ : state) {
    randombytes_buf(nonce.data(), nonce.size());  // a fresh random nonce per record
    unsigned long long sealed_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        sealed.data(), &sealed_len, reinterpret_cast<const unsigned char*>(body.data()),
        body.size(), reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr,
        nonce.data(), key.data());
    benchmark::DoNotOptimize(sealed.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_XChaCha20Poly1305Seal1KiB);

void BM_PushBodyGeneration(benchmark::State& state) {
  // What the load tool spends per request building a body (client-side cost).
  PushTemplate t = Template();
  std::string out;
  uint64_t n = 0;
  for (auto _ : state) {
    out.clear();
    AppendPushBody(t, n++, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_PushBodyGeneration);

#ifdef SAFEGATE_BENCH_HAVE_CORE
// The same work through the store's own code (daemon/core), where the figures above use the
// libraries directly.

safegate::AuditEntry CoreAuditEntry() {
  safegate::AuditEntry e;
  e.seq = 123456;
  e.at_ms = 1705309920123;
  e.actor = "wyp";
  e.action = "delivery_permitted";
  e.subject = "nhs:9990000018";
  e.record_id = "rec_3f2a9c0d1e2b4a5f6071829304a5b6c7";
  e.message_id = "msg_0a1b2c3d4e5f60718293a4b5c6d7e8f9";
  e.purpose = "safeguarding";
  e.decision = "permit";
  e.reasons = {"rule police-to-csc-safeguarding", "basis art6-1e", "cond sch1-para18"};
  e.detail = {{"recipient", "bradford-csc"}};
  return e;
}

void BM_CoreAuditEntryBytes(benchmark::State& state) {
  safegate::AuditEntry e = CoreAuditEntry();
  for (auto _ : state) {
    std::string bytes = core::AuditEntryBytes(e);
    benchmark::DoNotOptimize(bytes);
  }
}
BENCHMARK(BM_CoreAuditEntryBytes);

void BM_CoreAuditChainHash(benchmark::State& state) {
  // h_n = SHA-256(h_{n-1} || entry_n), entry bytes built once.
  std::string entry = core::AuditEntryBytes(CoreAuditEntry());
  std::string head(32, '\0');
  for (auto _ : state) {
    head = core::Sha256(head, entry);
    benchmark::DoNotOptimize(head);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (entry.size() + 32)));
}
BENCHMARK(BM_CoreAuditChainHash);

void BM_CoreSeal1KiB(benchmark::State& state) {
  if (!core::InitSodium().ok()) {
    state.SkipWithError("libsodium failed to initialise");
    return;
  }
  // AtRestKey reads its key from a file: make a throwaway one.
  char dir_template[] = "/tmp/safegate-micro-bench.XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (!dir) {
    state.SkipWithError("cannot make a temporary directory");
    return;
  }
  auto key = core::AtRestKey::LoadOrCreate(std::string(dir) + "/store.key");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!key.ok()) {
    state.SkipWithError(("at-rest key: " + key.status().ToString()).c_str());
    return;
  }
  std::string body = PushBody(Template(), 42);
  body.resize(1024, ' ');
  for (auto _ : state) {
    auto sealed = (*key)->Seal(body, "rec_3f2a9c0d1e2b4a5f6071829304a5b6c7");
    benchmark::DoNotOptimize(sealed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_CoreSeal1KiB);
#endif  // SAFEGATE_BENCH_HAVE_CORE

}  // namespace
}  // namespace safegate::bench

BENCHMARK_MAIN();
