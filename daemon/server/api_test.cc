// The pieces of the server that need no socket: the error body, the translation of TLS
// failures, and the metrics exposition.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "daemon/server/api.h"
#include "daemon/server/metrics.h"
#include "daemon/server/tls.h"
#include "record/record.h"

namespace safegate::server {
namespace {

TEST(PushAnswerBody, SameBytesAsTheCanonicalJsonOfTheOutcome) {
  PushOutcome outcome;
  outcome.record_id = "rec_0190a1b2c3d4e5f60718293a4b5c6d7e";
  outcome.deliveries = {
      {"bradford-csc", "permit",
       {"R2: police share \"CSE\" flags", "lawful basis: UK GDPR Art 6(1)(e)",
        "caf\xc3\xa9 \xe2\x82\xac", "bad \xc3 utf8", "\x01 control \\ slash", ""},
       "msg_0190a1b2c3d4e5f60718293a4b5c6d7e"},
      {"bthft", "deny", {}, ""}};
  EXPECT_EQ(PushAnswerBody(outcome), record::CanonicalJson(outcome.ToJson()));
  EXPECT_NE(PushAnswerBody(outcome).find("\"message_id\":null"), std::string::npos);
  outcome.deliveries.clear();
  EXPECT_EQ(PushAnswerBody(outcome), record::CanonicalJson(outcome.ToJson()));
}

TEST(ErrorBody, EveryCodeRendersItsNameAndStatus) {
  for (ErrorCode code : AllErrorCodes()) {
    const Status status(code, "detail text");
    const ApiReply reply = ErrorReply(status, "/v1/x");
    EXPECT_EQ(reply.status, HttpStatusFor(code));
    EXPECT_EQ(reply.route, "/v1/x");
    EXPECT_EQ(reply.error, ErrorCodeName(code));
    const auto body = nlohmann::json::parse(reply.body);
    EXPECT_EQ(body["error"], ErrorCodeName(code));
    EXPECT_EQ(body["detail"], "detail text");
    EXPECT_FALSE(body.contains("problems"));
  }
}

TEST(ErrorBody, CarriesProblems) {
  const auto body = ErrorBody(Status::Invalid("2 problems", {{"/a", "required"}, {"/b", "bad"}}));
  EXPECT_EQ(body["error"], "invalid_input");
  ASSERT_EQ(body["problems"].size(), 2u);
  EXPECT_EQ(body["problems"][0], nlohmann::json({{"where", "/a"}, {"what", "required"}}));
}

TEST(TranslateHandshakeFailure, CertificateErrors) {
  struct Case {
    int x509;
    const char* reason;
    const char* detail;
  };
  for (const Case& c :
       {Case{X509_V_ERR_CERT_HAS_EXPIRED, "expired", "certificate expired"},
        Case{X509_V_ERR_CERT_REVOKED, "revoked", "certificate revoked"},
        Case{X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "untrusted",
             "certificate not issued by a trusted CA"},
        Case{X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "untrusted",
             "certificate not issued by a trusted CA"},
        Case{X509_V_ERR_CERT_NOT_YET_VALID, "not_yet_valid", "certificate not yet valid"},
        Case{X509_V_ERR_CRL_HAS_EXPIRED, "revocation_unknown", "revocation status unavailable"},
        Case{X509_V_ERR_INVALID_PURPOSE, "wrong_purpose",
             "certificate not for client authentication"}}) {
    PeerVerification peer;
    peer.certificate_seen = true;
    peer.fingerprint = "ab";
    peer.x509_error = c.x509;
    const TlsRefusal r = TranslateHandshakeFailure({}, peer);
    EXPECT_EQ(r.result, "rejected");
    EXPECT_EQ(r.reason, c.reason);
    EXPECT_EQ(r.detail, c.detail);
    EXPECT_TRUE(r.audit);
  }
}

TEST(TranslateHandshakeFailure, FailuresWithoutACertificateAreNotAudited) {
  HandshakeError no_cert;
  no_cert.kind = HandshakeError::Kind::kTls;
  no_cert.openssl_code = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE);
  TlsRefusal r = TranslateHandshakeFailure(no_cert, {});
  EXPECT_EQ(r.result, "no_certificate");
  EXPECT_FALSE(r.audit);

  HandshakeError version;
  version.kind = HandshakeError::Kind::kTls;
  version.openssl_code = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNSUPPORTED_PROTOCOL);
  r = TranslateHandshakeFailure(version, {});
  EXPECT_EQ(r.result, "failed");
  EXPECT_NE(r.detail.find("unsupported protocol"), std::string::npos) << r.detail;
  EXPECT_FALSE(r.audit);

  HandshakeError timeout;
  timeout.kind = HandshakeError::Kind::kTimeout;
  EXPECT_EQ(TranslateHandshakeFailure(timeout, {}).result, "timeout");
  HandshakeError closed;
  closed.kind = HandshakeError::Kind::kClosed;
  EXPECT_EQ(TranslateHandshakeFailure(closed, {}).result, "failed");
}

TEST(Metrics, RendersCountersHistogramsAndGauges) {
  Metrics m;
  m.CountRequest("/v1/mailbox", 200, 0.003);
  m.CountRequest("/v1/mailbox", 200, 20.0);
  m.CountRequest("/v1/records", 413, 0.0001);
  m.CountHandshake("ok");
  m.CountTlsRejection("revoked");
  m.ConnectionOpened();
  Gateway::Stats stats;
  stats.audit_entries = 7;
  stats.commits = 2;
  stats.committed_jobs = 6;
  stats.mailbox_depth["bradford-csc"] = 3;
  stats.oldest_unacked_age_ms["bradford-csc"] = 1500;
  const std::string text = m.Render(stats);
  for (const char* line :
       {"safegate_http_requests_total{route=\"/v1/mailbox\",status=\"200\"} 2\n",
        "safegate_http_requests_total{route=\"/v1/records\",status=\"413\"} 1\n",
        "safegate_http_request_duration_seconds_bucket{route=\"/v1/mailbox\",le=\"0.0025\"} 0\n",
        "safegate_http_request_duration_seconds_bucket{route=\"/v1/mailbox\",le=\"0.005\"} 1\n",
        "safegate_http_request_duration_seconds_bucket{route=\"/v1/mailbox\",le=\"10\"} 1\n",
        "safegate_http_request_duration_seconds_bucket{route=\"/v1/mailbox\",le=\"+Inf\"} 2\n",
        "safegate_http_request_duration_seconds_count{route=\"/v1/mailbox\"} 2\n",
        "safegate_tls_handshakes_total{result=\"ok\"} 1\n",
        "safegate_tls_rejections_total{reason=\"revoked\"} 1\n", "safegate_connections_open 1\n",
        "safegate_audit_entries 7\n", "safegate_store_commits_total 2\n",
        "safegate_store_batch_size_mean 3\n", "safegate_mailbox_depth{agency=\"bradford-csc\"} 3\n",
        "safegate_mailbox_oldest_unacked_seconds{agency=\"bradford-csc\"} 1.5\n",
        "# TYPE safegate_http_request_duration_seconds histogram\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

}  // namespace
}  // namespace safegate::server
