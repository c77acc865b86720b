#include "daemon/server/cert_expiry.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

#include "daemon/server/tls.h"

namespace safegate::server {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

constexpr double kMsPerDay = 24.0 * 3600 * 1000;

// Every certificate in a PEM file, in order. A file with none is an error.
Result<std::vector<X509Ptr>> ReadPemCertificates(const std::string& path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    return Status::Invalid(path + ": cannot open: " + std::strerror(errno));
  }
  std::vector<X509Ptr> out;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(cert);
  }
  ERR_clear_error();  // the read that ends the loop leaves "no start line" behind
  if (out.empty()) return Status::Invalid(path + ": no PEM certificate found");
  return out;
}

int64_t NotAfterMs(X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<int64_t>(::timegm(&tm)) * 1000;
}

std::string CommonName(X509* cert) {
  char cn[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) <= 0) {
    return "-";
  }
  return cn;
}

CertificateExpiry Describe(X509* cert, std::string role, std::string name, std::string file) {
  CertificateExpiry e;
  e.role = std::move(role);
  e.name = name.empty() ? CommonName(cert) : std::move(name);
  e.fingerprint = Sha256Fingerprint(cert);
  e.file = std::move(file);
  e.not_after_ms = NotAfterMs(cert);
  return e;
}

void AddFile(CertificateInventory& inv, const std::string& path, const std::string& role,
             const std::string& name, bool first_only) {
  auto certs = ReadPemCertificates(path);
  if (!certs.ok()) {
    inv.problems.push_back(role + (name.empty() ? "" : " " + name) + ": " +
                           certs.status().detail());
    return;
  }
  for (auto& cert : *certs) {
    inv.certificates.push_back(Describe(cert.get(), role, name, path));
    if (first_only) break;
  }
}

std::string OctalMode(mode_t mode) {
  char out[8];
  std::snprintf(out, sizeof out, "%04o", static_cast<unsigned>(mode & 07777));
  return out;
}

}  // namespace

CertificateInventory ReadCertificates(const config::Config& config,
                                      const config::Registry* registry) {
  CertificateInventory inv;
  AddFile(inv, config.tls.cert, "server", "", /*first_only=*/true);
  AddFile(inv, config.tls.ca, "ca", "", /*first_only=*/false);
  if (registry != nullptr) {
    for (const auto& agency : registry->agencies) {
      for (const auto& file : agency.certificate_files) {
        AddFile(inv, file, "agency", agency.id, /*first_only=*/true);
      }
    }
    for (const auto& peer : registry->peers) {
      for (const auto& file : peer.certificate_files) {
        AddFile(inv, file, "peer", peer.area, /*first_only=*/true);
      }
    }
  }
  return inv;
}

double DaysLeft(const CertificateExpiry& certificate, int64_t now_ms) {
  return static_cast<double>(certificate.not_after_ms - now_ms) / kMsPerDay;
}

std::string FormatUtc(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

Status CheckServerCertificateCurrent(const config::Config::Tls& tls, int64_t now_ms) {
  auto certs = ReadPemCertificates(tls.cert);
  if (!certs.ok()) return Status::Invalid("tls.cert: " + certs.status().detail());
  X509* cert = certs->front().get();
  const int64_t not_after = NotAfterMs(cert);
  if (not_after <= now_ms) {
    return Status::Invalid("tls.cert: " + tls.cert + ": the gateway's certificate (CN=" +
                           CommonName(cert) + ") expired on " + FormatUtc(not_after) +
                           "; install a renewed certificate and key (docs/operations.md, "
                           "\"Rotating certificates\") before starting the gateway");
  }
  return Status::Ok();
}

Status CheckPrivateKeyPermissions(const std::string& path, const std::string& key_name) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Invalid(key_name + ": " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & S_IRWXO) != 0) {
    return Status::Invalid(key_name + ": " + path + " has mode " + OctalMode(st.st_mode) +
                           ": a private key must not be readable or writable by others; "
                           "chmod 600 it (or 640 with the gateway's own group)");
  }
  if ((st.st_mode & S_IRWXG) != 0 && st.st_gid != ::getegid()) {
    return Status::Invalid(key_name + ": " + path + " has mode " + OctalMode(st.st_mode) +
                           " and group id " + std::to_string(st.st_gid) +
                           ", not the gateway's own group: a private key must not be readable "
                           "by another group; chmod 600 it or give it the gateway's group");
  }
  return Status::Ok();
}

}  // namespace safegate::server
