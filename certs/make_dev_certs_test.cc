// Checks certs/make-dev-certs with the openssl CLI: what must verify verifies, and what must
// be refused (revoked, expired, signed by another CA) is refused for that reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "config/test_support.h"

namespace safegate::config {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::Quoted;
using testing::RunShell;
using testing::TempDir;

const char* const kAgencies[] = {"bradford-csc",      "wyp",       "bthft",        "bradford-audit",
                                 "bradford-scrutiny", "cambs-csc", "cambs-police", "cuh",
                                 "cambs-audit"};
const char* const kGateways[] = {"gateway-bradford", "gateway-cambridgeshire"};

class MakeDevCertsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    testing::MakeDevCerts(*dir_ / "certs");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string Path(const std::string& name) { return *dir_ / ("certs/" + name); }

  // `openssl verify` against the development CA and its CRL.
  static testing::CommandResult Verify(const std::string& name, const std::string& purpose = "") {
    std::string command = "openssl verify -CAfile " + Quoted(Path("ca.pem")) +
                          " -crl_check -CRLfile " + Quoted(Path("crl.pem"));
    if (!purpose.empty()) command += " -purpose " + purpose;
    return RunShell(command + " " + Quoted(Path(name + ".pem")));
  }

  static std::string Text(const std::string& name) {
    return RunShell("openssl x509 -noout -text -in " + Quoted(Path(name + ".pem"))).output;
  }

  static TempDir* dir_;
};
TempDir* MakeDevCertsTest::dir_ = nullptr;

TEST_F(MakeDevCertsTest, AgencyCertificatesVerifyForClientAuth) {
  for (const char* id : kAgencies) {
    auto result = Verify(id, "sslclient");
    EXPECT_EQ(result.exit_code, 0) << id << ": " << result.output;
    std::string text = Text(id);
    EXPECT_THAT(text, HasSubstr("Subject: CN = " + std::string(id) + ", O = ")) << id;
    EXPECT_THAT(text, HasSubstr("TLS Web Client Authentication")) << id;
    EXPECT_THAT(text, Not(HasSubstr("TLS Web Server Authentication"))) << id;
    EXPECT_THAT(text, HasSubstr("ASN1 OID: prime256v1")) << id;
  }
}

TEST_F(MakeDevCertsTest, GatewayCertificatesServeAndConnect) {
  for (const char* id : kGateways) {
    auto server = Verify(id, "sslserver");
    EXPECT_EQ(server.exit_code, 0) << id << ": " << server.output;
    auto client = Verify(id, "sslclient");
    EXPECT_EQ(client.exit_code, 0) << id << ": " << client.output;
    std::string text = Text(id);
    EXPECT_THAT(text, HasSubstr("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"))
        << id;
  }
  // An agency certificate is not good for serving.
  EXPECT_NE(Verify("wyp", "sslserver").exit_code, 0);
}

TEST_F(MakeDevCertsTest, CaIsTheDevelopmentCa) {
  std::string text = Text("ca");
  EXPECT_THAT(text, HasSubstr("Subject: CN = safegate development CA"));
  EXPECT_THAT(text, HasSubstr("CA:TRUE"));
  EXPECT_THAT(text, HasSubstr("ASN1 OID: prime256v1"));
}

TEST_F(MakeDevCertsTest, RevokedCertificateIsRefusedAsRevoked) {
  auto result = Verify("wyp-revoked");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.output, HasSubstr("certificate revoked"));
  // Without the CRL it chains fine: revocation, not anything else, is what refuses it.
  auto without_crl = RunShell("openssl verify -CAfile " + Quoted(Path("ca.pem")) + " " +
                              Quoted(Path("wyp-revoked.pem")));
  EXPECT_EQ(without_crl.exit_code, 0) << without_crl.output;
  std::string crl = RunShell("openssl crl -noout -text -in " + Quoted(Path("crl.pem"))).output;
  EXPECT_THAT(crl, HasSubstr("Issuer: CN = safegate development CA"));
  EXPECT_THAT(crl, HasSubstr("Next Update:"));
}

TEST_F(MakeDevCertsTest, ExpiredCertificateIsRefusedAsExpired) {
  auto result = Verify("wyp-expired");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.output, HasSubstr("certificate has expired"));
}

TEST_F(MakeDevCertsTest, RogueCertificateDoesNotChain) {
  auto result = Verify("rogue");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.output, HasSubstr("unable to get local issuer certificate"));
  EXPECT_THAT(Text("rogue"), HasSubstr("Subject: CN = wyp"));
  // It does chain to its own CA, so only the choice of CA refuses it.
  auto own = RunShell("openssl verify -CAfile " + Quoted(Path("rogue-ca.pem")) + " " +
                      Quoted(Path("rogue.pem")));
  EXPECT_EQ(own.exit_code, 0) << own.output;
}

TEST_F(MakeDevCertsTest, KeysArePrivateAndMatchTheirCertificates) {
  std::vector<std::string> names(std::begin(kAgencies), std::end(kAgencies));
  names.insert(names.end(), std::begin(kGateways), std::end(kGateways));
  for (const char* extra : {"ca", "wyp-revoked", "wyp-expired", "rogue-ca", "rogue"}) {
    names.emplace_back(extra);
  }
  for (const std::string& name : names) {
    struct stat st {};
    ASSERT_EQ(stat(Path(name + ".key").c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 07777, 0600u) << name;
    ASSERT_TRUE(fs::exists(Path(name + ".pem"))) << name;
    std::string from_cert =
        RunShell("openssl x509 -noout -pubkey -in " + Quoted(Path(name + ".pem"))).output;
    std::string from_key =
        RunShell("openssl pkey -pubout -in " + Quoted(Path(name + ".key"))).output;
    EXPECT_EQ(from_cert, from_key) << name;
  }
}

TEST_F(MakeDevCertsTest, FingerprintsFileListsEveryCertificate) {
  auto fingerprints = testing::ReadFingerprintsFile(Path("fingerprints.txt"));
  EXPECT_EQ(fingerprints.size(), 16u);
  for (const char* id : kAgencies) {
    ASSERT_EQ(fingerprints.count(id), 1u) << id;
    // Independent check: SHA-256 of the DER written by openssl.
    std::string der_sha =
        RunShell("openssl x509 -outform DER -in " + Quoted(Path(std::string(id) + ".pem")) +
                 " | openssl dgst -sha256 -r")
            .output;
    EXPECT_EQ(der_sha.substr(0, 64), fingerprints.at(id)) << id;
  }
}

TEST(MakeDevCertsRunTest, RefusesToReplaceACaKeyWithoutForce) {
  TempDir dir;
  testing::MakeDevCerts(dir / "certs");
  std::string ca_before = testing::ReadFile(dir / "certs/ca.pem");
  auto again = RunShell(Quoted(testing::MakeDevCertsScript()) + " " + Quoted(dir / "certs"));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.output, HasSubstr("--force"));
  EXPECT_EQ(testing::ReadFile(dir / "certs/ca.pem"), ca_before);

  auto forced =
      RunShell(Quoted(testing::MakeDevCertsScript()) + " --force " + Quoted(dir / "certs"));
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_NE(testing::ReadFile(dir / "certs/ca.pem"), ca_before);
}

TEST(MakeDevCertsRunTest, RejectsBadArguments) {
  EXPECT_EQ(RunShell(Quoted(testing::MakeDevCertsScript())).exit_code, 2);
  EXPECT_EQ(RunShell(Quoted(testing::MakeDevCertsScript()) + " --bogus /tmp/x").exit_code, 2);
}

}  // namespace
}  // namespace safegate::config
