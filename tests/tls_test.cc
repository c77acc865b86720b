// Transport identity through a real gateway: only a certificate that chains to the sandbox
// CA, is in date, is not revoked and belongs to a registered agency of this area gets an
// HTTP answer; every presented certificate that is refused leaves a tls_rejected entry.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "tests/support/sandbox.h"
#include "tests/support/test_data.h"

namespace safegate::testing {
namespace {

using nlohmann::json;

class TlsTest : public SandboxTest {
 protected:
  // A request with this certificate must get no HTTP answer at all.
  void ExpectRefusedAtHandshake(const std::string& cert_name) {
    HttpsClient client = sandbox().ClientWithCertificate("bradford", cert_name);
    auto r = client.Get("/v1/mailbox");
    EXPECT_FALSE(r.ok()) << (cert_name.empty() ? "no certificate" : cert_name)
                         << " got an HTTP answer: " << r->Describe();
  }
};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

TEST_F(TlsTest, ARegisteredAgencyIsAnswered) {
  auto r = Client("wyp").Get("/v1/mailbox");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200) << r->Describe();
}

TEST_F(TlsTest, NoClientCertificateIsRefused) { ExpectRefusedAtHandshake(""); }

TEST_F(TlsTest, RefusedCertificatesAreRefusedAndAudited) {
  ExpectRefusedAtHandshake("rogue");        // CN=wyp, but from a CA nobody trusts
  ExpectRefusedAtHandshake("wyp-revoked");  // registered under wyp, revoked in the CRL
  ExpectRefusedAtHandshake("wyp-expired");  // registered under wyp, out of date
  // Signed by the right CA but not an agency of this area's registry.
  ExpectRefusedAtHandshake("cambs-csc");

  // The gateway still answers good clients.
  auto ok = Client("wyp").Get("/v1/mailbox");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200) << ok->Describe();

  const std::vector<json> rejected = AuditEntries("action=tls_rejected");
  EXPECT_GE(rejected.size(), 4u) << "one tls_rejected per refused certificate: "
                                 << json(rejected).dump(1);
  const std::string text = Lower(json(rejected).dump());
  EXPECT_NE(text.find("revoked"), std::string::npos) << "the revocation is named: " << text;
  EXPECT_NE(text.find("expired"), std::string::npos) << "the expiry is named: " << text;
}

}  // namespace
}  // namespace safegate::testing
