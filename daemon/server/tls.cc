#include "daemon/server/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cstdio>
#include <utility>

namespace safegate::server {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct CrlFree {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};

Status FileError(std::string_view key, const std::string& file, std::string_view what) {
  std::string detail = std::string(key) + ": " + file + ": " + std::string(what);
  const std::string why = OpenSslErrorText();
  if (!why.empty()) detail += " (" + why + ")";
  return Status::Invalid(std::move(detail));
}

// Loads every CRL in a PEM file into the store. Returns how many were added.
Result<int> AddCrls(X509_STORE* store, const std::string& path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return FileError("tls.crl", path, "cannot open");
  int added = 0;
  for (;;) {
    std::unique_ptr<X509_CRL, CrlFree> crl(
        PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!crl) break;
    if (X509_STORE_add_crl(store, crl.get()) != 1) {
      return FileError("tls.crl", path, "cannot add CRL to the trust store");
    }
    ++added;
  }
  // Reading stops with "no start line" at the end of the file; that one is expected.
  ERR_clear_error();
  if (added == 0) return FileError("tls.crl", path, "no CRL found");
  return added;
}

struct Reason {
  const char* slug;
  const char* text;
};

// X509 verification errors in the gateway's words.
Reason ReasonForX509Error(int error) {
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return {"expired", "certificate expired"};
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return {"not_yet_valid", "certificate not yet valid"};
    case X509_V_ERR_CERT_REVOKED:
      return {"revoked", "certificate revoked"};
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return {"untrusted", "certificate not issued by a trusted CA"};
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
      return {"revocation_unknown", "revocation status unavailable"};
    case X509_V_ERR_INVALID_PURPOSE:
      return {"wrong_purpose", "certificate not for client authentication"};
    default:
      return {"invalid", "certificate invalid"};
  }
}

// OpenSSL's reason strings, loaded once (asio loads them too, but translation must not
// depend on a TLS context having been made first).
void LoadErrorStrings() {
  static const bool loaded =
      OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, nullptr) ==
      1;
  (void)loaded;
}

std::string ReasonText(unsigned long code) {
  LoadErrorStrings();
  if (const char* reason = ERR_reason_error_string(code)) return reason;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

}  // namespace

void SslCtxFree::operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }

std::string OpenSslErrorText() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    if (!out.empty()) out += "; ";
    out += ReasonText(code);
  }
  return out;
}

Result<SslCtxPtr> MakeServerSslCtx(const config::Config::Tls& tls) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Status::Internal("cannot create TLS context: " + OpenSslErrorText());
  SSL_CTX* c = ctx.get();

  // TLS 1.3 only: no downgrade, no renegotiation, forward secrecy always.
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
    return Status::Internal("cannot restrict TLS to version 1.3: " + OpenSslErrorText());
  }
  if (SSL_CTX_set1_groups_list(c, "X25519:P-256:P-384") != 1) {
    return Status::Internal("cannot set TLS key exchange groups: " + OpenSslErrorText());
  }
  // No resumption: a resumed session would skip the certificate and CRL checks.
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  static constexpr unsigned char kSessionContext[] = "safegated";
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);

  if (tls.cert.empty()) return Status::Invalid("tls.cert: not set");
  if (tls.key.empty()) return Status::Invalid("tls.key: not set");
  if (tls.ca.empty()) return Status::Invalid("tls.ca: not set");
  if (SSL_CTX_use_certificate_chain_file(c, tls.cert.c_str()) != 1) {
    return FileError("tls.cert", tls.cert, "cannot load certificate chain");
  }
  if (SSL_CTX_use_PrivateKey_file(c, tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return FileError("tls.key", tls.key, "cannot load private key");
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return FileError("tls.key", tls.key, "private key does not match tls.cert");
  }
  if (SSL_CTX_load_verify_locations(c, tls.ca.c_str(), nullptr) != 1) {
    return FileError("tls.ca", tls.ca, "cannot load CA certificates");
  }
  // Tell clients which CAs we accept, so that a client with several certificates picks
  // the right one.
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.ca.c_str())) {
    SSL_CTX_set_client_CA_list(c, names);
  } else {
    return FileError("tls.ca", tls.ca, "no CA certificate found");
  }
  if (!tls.crl.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    auto added = AddCrls(store, tls.crl);
    if (!added.ok()) return added.status();
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_verify_depth(c, 4);
  ERR_clear_error();
  return ctx;
}

std::string Sha256Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (cert == nullptr || X509_digest(cert, EVP_sha256(), md, &len) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

Result<std::string> FingerprintOfPemFile(const std::string& path) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return FileError("certificate", path, "cannot open");
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return FileError("certificate", path, "no PEM certificate found");
  return Sha256Fingerprint(cert.get());
}

bool RecordVerification(PeerVerification& peer, bool preverified, X509_STORE_CTX* store) {
  if (!peer.certificate_seen) {
    if (X509* leaf = X509_STORE_CTX_get0_cert(store)) {
      peer.certificate_seen = true;
      peer.fingerprint = Sha256Fingerprint(leaf);
    }
  }
  if (!preverified && peer.x509_error == X509_V_OK) {
    peer.x509_error = X509_STORE_CTX_get_error(store);
    peer.x509_error_text = X509_verify_cert_error_string(peer.x509_error);
  }
  return preverified;
}

TlsRefusal TranslateHandshakeFailure(const HandshakeError& error, const PeerVerification& peer) {
  TlsRefusal out;
  if (peer.certificate_seen && peer.x509_error != X509_V_OK) {
    const Reason r = ReasonForX509Error(peer.x509_error);
    out.result = "rejected";
    out.reason = r.slug;
    out.detail = r.text;
    out.audit = true;
    return out;
  }
  switch (error.kind) {
    case HandshakeError::Kind::kTimeout:
      out.result = "timeout";
      out.detail = "TLS handshake timed out";
      return out;
    case HandshakeError::Kind::kClosed:
      out.result = "failed";
      out.detail = "connection closed during the TLS handshake";
      return out;
    case HandshakeError::Kind::kTls:
      break;
  }
  const int lib = ERR_GET_LIB(error.openssl_code);
  const int reason = ERR_GET_REASON(error.openssl_code);
  if (lib == ERR_LIB_SSL && reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    out.result = "no_certificate";
    out.detail = "client presented no certificate";
    return out;
  }
  out.result = "failed";
  out.detail = "TLS handshake failed: " +
               (error.openssl_code != 0 ? ReasonText(error.openssl_code) : error.message);
  return out;
}

}  // namespace safegate::server
