#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "config/test_support.h"

namespace safegate::config {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

const std::string kFpA(64, 'a');
const std::string kFpB(64, 'b');
const std::string kFpC(64, 'c');

// A minimal valid configuration. The TLS files only have to exist and be readable for
// LoadConfig, which does not parse them (the server does), so placeholders do here.
constexpr const char* kMinimal = R"(area = "bradford"
data_dir = "data"
registry = "registry.toml"

[tls]
cert = "tls/gateway.pem"
key = "tls/gateway.key"
ca = "tls/ca.pem"
)";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "tls/gateway.pem", "placeholder\n");
    WriteFile(dir_ / "tls/gateway.key", "placeholder\n");
    WriteFile(dir_ / "tls/ca.pem", "placeholder\n");
    WriteFile(dir_ / "registry.toml",
              "[[agency]]\nid = \"wyp\"\nname = \"W\"\nrole = \"police\"\n"
              "area = \"bradford\"\nfingerprints = [\"" +
                  kFpA + "\"]\n");
  }

  std::string Write(const std::string& text, const std::string& name = "safegated.toml") {
    std::string path = dir_ / name;
    WriteFile(path, text);
    return path;
  }

  Config Load(const std::string& text) { return LoadConfig(Write(text)); }

  // Loads `text`, expecting a ConfigError for `key` at `line` whose message contains `what`.
  void ExpectError(const std::string& text, const std::string& key, int64_t line,
                   const std::string& what) {
    std::string path = Write(text);
    try {
      LoadConfig(path);
      ADD_FAILURE() << "loaded without error; expected an error for " << key;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.file, fs::path(path).lexically_normal().string());
      EXPECT_EQ(e.key, key) << e.what();
      EXPECT_EQ(e.line, line) << e.what();
      EXPECT_THAT(e.message, HasSubstr(what)) << e.what();
      std::string prefix = e.file + ":" + std::to_string(line) + ": " + key + ": ";
      EXPECT_EQ(std::string(e.what()).substr(0, prefix.size()), prefix);
    }
  }

  TempDir dir_;
};

TEST(ParseDurationTest, AcceptsEachUnit) {
  EXPECT_EQ(ParseDuration("250ms"), milliseconds{250});
  EXPECT_EQ(ParseDuration("30s"), milliseconds{30'000});
  EXPECT_EQ(ParseDuration("15m"), milliseconds{15 * 60'000});
  EXPECT_EQ(ParseDuration("1h"), milliseconds{3'600'000});
  EXPECT_EQ(ParseDuration("5d"), milliseconds{5 * 86'400'000ll});
  EXPECT_EQ(ParseDuration("0s"), milliseconds{0});
}

TEST(ParseDurationTest, RejectsMalformed) {
  for (const char* bad : {"", "s", "30", "30 s", " 30s", "30s ", "-5s", "1.5h", "30S", "30sec",
                          "1h30m", "0x10s", "99999999999999999999d", "999999999999999d"}) {
    EXPECT_EQ(ParseDuration(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(ParseDurationTest, FormatRoundTrips) {
  EXPECT_EQ(FormatDuration(milliseconds{250}), "250ms");
  EXPECT_EQ(FormatDuration(milliseconds{90'000}), "90s");
  EXPECT_EQ(FormatDuration(milliseconds{3'600'000}), "1h");
  EXPECT_EQ(FormatDuration(milliseconds{30ll * 86'400'000}), "30d");
  EXPECT_EQ(FormatDuration(milliseconds{0}), "0s");
  for (int64_t ms : {1ll, 999ll, 1000ll, 61'000ll, 7'200'000ll, 90'061'001ll}) {
    EXPECT_EQ(ParseDuration(FormatDuration(milliseconds{ms})), milliseconds{ms});
  }
}

TEST(RoleTest, NamesRoundTrip) {
  for (Role role :
       {Role::kPolice, Role::kHealth, Role::kCsc, Role::kAudit, Role::kCommittee, Role::kGateway}) {
    EXPECT_EQ(ParseRole(RoleName(role)), role);
  }
  EXPECT_EQ(ParseRole("Police"), std::nullopt);
  EXPECT_EQ(ParseRole("council"), std::nullopt);
}

TEST_F(ConfigTest, MinimalConfigGetsDefaultsAndAbsolutePaths) {
  Config c = Load(kMinimal);
  const fs::path base = dir_.path();
  EXPECT_EQ(c.source_file, (base / "safegated.toml").string());
  EXPECT_EQ(c.area, "bradford");
  EXPECT_EQ(c.data_dir, (base / "data").string());
  EXPECT_EQ(c.registry, (base / "registry.toml").string());
  EXPECT_EQ(c.tls.cert, (base / "tls/gateway.pem").string());
  EXPECT_EQ(c.tls.key, (base / "tls/gateway.key").string());
  EXPECT_EQ(c.tls.ca, (base / "tls/ca.pem").string());
  EXPECT_EQ(c.tls.crl, "");
  EXPECT_EQ(c.store.key_file, (base / "data/store.key").string());
  // Defaults, as documented in config.h.
  Config defaults;
  EXPECT_EQ(c.listen.address, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 0);
  EXPECT_EQ(c.admin.address, "127.0.0.1");
  EXPECT_EQ(c.threads, defaults.threads);
  EXPECT_EQ(c.limits.max_body_bytes, 16u * 1024 * 1024);
  EXPECT_EQ(c.limits.read_timeout, milliseconds{30'000});
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, "json");
  EXPECT_EQ(c.mailbox.ack_deadline, milliseconds{24 * 3'600'000ll});
  EXPECT_EQ(c.mailbox.ack_deadline_by_purpose.at("missing_child"), milliseconds{3'600'000});
  EXPECT_EQ(c.store.max_batch, 512u);
  EXPECT_EQ(c.audit.sth_interval, milliseconds{100});
  EXPECT_EQ(c.audit.sth_max_entries, 1000u);
}

TEST_F(ConfigTest, ReadsEveryKey) {
  WriteFile(dir_ / "tls/crl.pem", "placeholder\n");
  Config c = Load(std::string(kMinimal) + R"(crl = "tls/crl.pem"
[listen]
address = "::"
port = 8443
[admin]
address = "127.0.0.2"
port = 9443
[limits]
max_body_bytes = 1048576
max_header_bytes = 8192
max_connections = 10
handshake_timeout = "5s"
read_timeout = "250ms"
idle_timeout = "2m"
[log]
level = "debug"
format = "text"
[mailbox]
ack_deadline = "2h"
renotice_interval = "30m"
expire_after = "5d"
sweep_interval = "1s"
[mailbox.ack_deadline_by_purpose]
child_protection = "4h"
[store]
key_file = "/secure/store.key"
max_batch = 64
[audit]
sth_interval = "2s"
sth_max_entries = 50
)");
  EXPECT_EQ(c.tls.crl, (dir_.path() / "tls/crl.pem").string());
  EXPECT_EQ(c.listen.address, "::");
  EXPECT_EQ(c.listen.port, 8443);
  EXPECT_EQ(c.admin.address, "127.0.0.2");
  EXPECT_EQ(c.admin.port, 9443);
  EXPECT_EQ(c.limits.max_body_bytes, 1048576u);
  EXPECT_EQ(c.limits.max_header_bytes, 8192u);
  EXPECT_EQ(c.limits.max_connections, 10u);
  EXPECT_EQ(c.limits.handshake_timeout, milliseconds{5000});
  EXPECT_EQ(c.limits.read_timeout, milliseconds{250});
  EXPECT_EQ(c.limits.idle_timeout, milliseconds{120'000});
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, "text");
  EXPECT_EQ(c.mailbox.ack_deadline, milliseconds{7'200'000});
  EXPECT_EQ(c.mailbox.renotice_interval, milliseconds{1'800'000});
  EXPECT_EQ(c.mailbox.expire_after, milliseconds{5 * 86'400'000ll});
  EXPECT_EQ(c.mailbox.sweep_interval, milliseconds{1000});
  // A purpose given in the file is added; the built-in ones stay.
  EXPECT_EQ(c.mailbox.ack_deadline_by_purpose.at("child_protection"), milliseconds{14'400'000});
  EXPECT_EQ(c.mailbox.ack_deadline_by_purpose.at("missing_child"), milliseconds{3'600'000});
  EXPECT_EQ(c.store.key_file, "/secure/store.key");
  EXPECT_EQ(c.store.max_batch, 64u);
  EXPECT_EQ(c.audit.sth_interval, milliseconds{2000});
  EXPECT_EQ(c.audit.sth_max_entries, 50u);
}

TEST_F(ConfigTest, PurposeDeadlineOverridesBuiltIn) {
  Config c =
      Load(std::string(kMinimal) + "[mailbox.ack_deadline_by_purpose]\nmissing_child = \"15m\"\n");
  EXPECT_EQ(c.mailbox.ack_deadline_by_purpose.at("missing_child"), milliseconds{900'000});
}

TEST_F(ConfigTest, UnknownKeyAtTopNamesFileLineAndKey) {
  ExpectError(std::string(kMinimal).insert(0, "\n\nthread = 4\n"), "thread", 3,
              "unknown key (did you mean \"threads\"?)");
}

TEST_F(ConfigTest, UnknownKeyInTableNamesDottedKey) {
  ExpectError(std::string(kMinimal) + "[limits]\nmax_body_bytes = 10\nread_timout = \"5s\"\n",
              "limits.read_timout", 11, "unknown key");
}

TEST_F(ConfigTest, UnknownTable) {
  ExpectError(std::string(kMinimal) + "[listener]\nport = 1\n", "listener", 9, "unknown key");
}

TEST_F(ConfigTest, UnknownKeyInTls) {
  ExpectError(std::string(kMinimal) + "ciphers = \"ALL\"\n", "tls.ciphers", 9, "unknown key");
}

TEST_F(ConfigTest, WrongTypeNamesExpectedAndFound) {
  ExpectError(std::string(kMinimal) + "[listen]\nport = \"8443\"\n", "listen.port", 10,
              "expected an integer, found a string");
  ExpectError(std::string(kMinimal) + "[log]\nlevel = 3\n", "log.level", 10,
              "expected a string, found an integer");
  ExpectError(
      "area = \"bradford\"\ndata_dir = \"data\"\nregistry = \"registry.toml\"\n"
      "tls = \"x\"\n",
      "tls", 4, "expected a table, found a string");
  ExpectError(std::string(kMinimal) + "[limits]\nread_timeout = 30\n", "limits.read_timeout", 10,
              "expected a duration string");
}

TEST_F(ConfigTest, MissingRequiredKeys) {
  struct Case {
    std::string drop;  // the line removed from kMinimal
    std::string key;
    int64_t line;  // where the error points: the table that lacks the key (the file: 1)
  };
  for (const Case& c :
       {Case{"area = \"bradford\"\n", "area", 1}, Case{"data_dir = \"data\"\n", "data_dir", 1},
        Case{"registry = \"registry.toml\"\n", "registry", 1},
        Case{"cert = \"tls/gateway.pem\"\n", "tls.cert", 5},
        Case{"key = \"tls/gateway.key\"\n", "tls.key", 5},
        Case{"ca = \"tls/ca.pem\"\n", "tls.ca", 5}}) {
    SCOPED_TRACE(c.key);
    std::string text = kMinimal;
    text.erase(text.find(c.drop), c.drop.size());
    std::string path = Write(text);
    try {
      LoadConfig(path);
      ADD_FAILURE() << "loaded without " << c.key;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.key, c.key) << e.what();
      EXPECT_EQ(e.message, "required key is missing");
      EXPECT_EQ(e.line, c.line) << e.what();
      EXPECT_THAT(e.what(), HasSubstr(path));
    }
  }
}

TEST_F(ConfigTest, MissingTlsTable) {
  Write("area = \"bradford\"\ndata_dir = \"data\"\nregistry = \"registry.toml\"\n");
  try {
    LoadConfig(dir_ / "safegated.toml");
    ADD_FAILURE() << "loaded without [tls]";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key, "tls");
    EXPECT_EQ(e.line, 1);
    EXPECT_THAT(e.message, HasSubstr("required table [tls] is missing"));
  }
}

TEST_F(ConfigTest, EmptyRequiredString) {
  std::string text = kMinimal;
  text.replace(text.find("\"bradford\""), 10, "\"\"");
  ExpectError(text, "area", 1, "must not be empty");
}

TEST_F(ConfigTest, BadDuration) {
  ExpectError(std::string(kMinimal) + "[limits]\nread_timeout = \"30 seconds\"\n",
              "limits.read_timeout", 10, "bad duration \"30 seconds\"");
  ExpectError(std::string(kMinimal) + "[mailbox]\nsweep_interval = \"0s\"\n",
              "mailbox.sweep_interval", 10, "must be more than 0");
  ExpectError(std::string(kMinimal) + "[mailbox.ack_deadline_by_purpose]\nmissing_child = \"1w\"\n",
              "mailbox.ack_deadline_by_purpose.missing_child", 10, "bad duration");
}

TEST_F(ConfigTest, ExpiryShorterThanAckDeadline) {
  ExpectError(std::string(kMinimal) + "[mailbox]\nack_deadline = \"2d\"\nexpire_after = \"1d\"\n",
              "mailbox.expire_after", 11, "must not be shorter than mailbox.ack_deadline");
}

TEST_F(ConfigTest, AdminMustBeLoopback) {
  ExpectError(std::string(kMinimal) + "[admin]\naddress = \"0.0.0.0\"\n", "admin.address", 10,
              "not a loopback address");
  ExpectError(std::string(kMinimal) + "[admin]\naddress = \"192.168.1.10\"\n", "admin.address", 10,
              "not a loopback address");
  ExpectError(std::string(kMinimal) + "[admin]\naddress = \"::\"\n", "admin.address", 10,
              "not a loopback address");
  ExpectError(std::string(kMinimal) + "[admin]\naddress = \"localhost\"\n", "admin.address", 10,
              "not an IPv4 or IPv6 address");
  EXPECT_EQ(Load(std::string(kMinimal) + "[admin]\naddress = \"::1\"\n").admin.address, "::1");
  EXPECT_EQ(Load(std::string(kMinimal) + "[admin]\naddress = \"127.9.9.9\"\n").admin.address,
            "127.9.9.9");
}

TEST_F(ConfigTest, BadValues) {
  ExpectError(std::string(kMinimal) + "[listen]\nport = 65536\n", "listen.port", 10,
              "between 0 and 65535");
  ExpectError(std::string(kMinimal) + "[listen]\nport = -1\n", "listen.port", 10,
              "between 0 and 65535");
  ExpectError(std::string(kMinimal) + "[listen]\naddress = \"example.org\"\n", "listen.address", 10,
              "not an IPv4 or IPv6 address");
  ExpectError(std::string(kMinimal) + "[log]\nlevel = \"verbose\"\n", "log.level", 10,
              "unknown level \"verbose\"");
  ExpectError(std::string(kMinimal) + "[log]\nformat = \"xml\"\n", "log.format", 10,
              "unknown format");
  ExpectError(std::string(kMinimal).insert(0, "threads = 0\n"), "threads", 1, "between 1 and 256");
  ExpectError(std::string(kMinimal) + "[store]\nmax_batch = 0\n", "store.max_batch", 10,
              "between 1");
  ExpectError(std::string(kMinimal) + "[audit]\nsth_max_entries = 0\n", "audit.sth_max_entries",
              10, "between 1");
  ExpectError(std::string(kMinimal) + "[audit]\nsth_interval = \"0ms\"\n", "audit.sth_interval",
              10, "more than 0");
  ExpectError(std::string(kMinimal) + "[audit]\nsth_every = 5\n", "audit.sth_every", 10,
              "unknown key");
  std::string text = kMinimal;
  text.replace(text.find("\"bradford\""), 10, "\"Bradford\"");
  ExpectError(text, "area", 1, "not a slug");
}

TEST_F(ConfigTest, MissingFilesNameKeyAndPath) {
  fs::remove(dir_ / "tls/ca.pem");
  ExpectError(kMinimal, "tls.ca", 8, "file not found: " + (dir_ / "tls/ca.pem"));
  ExpectError(std::string(kMinimal) + "crl = \"nowhere/crl.pem\"\n", "tls.ca", 8, "file not found");
  WriteFile(dir_ / "tls/ca.pem", "placeholder\n");
  ExpectError(std::string(kMinimal) + "crl = \"nowhere/crl.pem\"\n", "tls.crl", 9,
              "file not found: " + (dir_ / "nowhere/crl.pem"));
  fs::remove(dir_ / "registry.toml");
  ExpectError(kMinimal, "registry", 3, "file not found: " + (dir_ / "registry.toml"));
  fs::create_directory(dir_ / "registry.toml");
  ExpectError(kMinimal, "registry", 3, "not a regular file");
}

// Root reads any file through CAP_DAC_OVERRIDE; the loader's own check is what is under test,
// so the load runs in a child process that has given up the capabilities that bypass modes.
TEST_F(ConfigTest, UnreadableFile) {
  fs::permissions(dir_ / "tls/gateway.key", fs::perms::none);
  const std::string path = Write(kMinimal);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &header, data) != 0) _exit(3);
    for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH}) {
      data[cap / 32].effective &= ~(1u << (cap % 32));
    }
    if (syscall(SYS_capset, &header, data) != 0) _exit(3);
    std::string out = "loaded";
    try {
      LoadConfig(path);
    } catch (const ConfigError& e) {
      out = e.key + "|" + std::to_string(e.line) + "|" + e.message;
    }
    if (write(fds[1], out.data(), out.size()) < 0) _exit(4);
    _exit(0);
  }
  close(fds[1]);
  std::string got;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "child status " << wstatus;
  EXPECT_THAT(got, ::testing::StartsWith("tls.key|7|"));
  EXPECT_THAT(got, HasSubstr("cannot read"));
}

TEST_F(ConfigTest, DataDirMayNotExistButMustBeADirectory) {
  EXPECT_FALSE(fs::exists(dir_ / "data"));
  EXPECT_NO_THROW(Load(kMinimal));
  WriteFile(dir_ / "data", "not a directory");
  ExpectError(kMinimal, "data_dir", 2, "not a directory");
}

TEST_F(ConfigTest, TomlSyntaxErrorHasLine) {
  std::string path = Write("area = \"bradford\"\n\n[tls\ncert = 1\n");
  try {
    LoadConfig(path);
    ADD_FAILURE() << "loaded a file with a syntax error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.line, 3) << e.what();
    EXPECT_THAT(e.message, HasSubstr("TOML syntax error"));
    EXPECT_THAT(e.what(), HasSubstr(path + ":3: TOML syntax error"));
  }
}

TEST_F(ConfigTest, MissingConfigFile) {
  try {
    LoadConfig(dir_ / "absent.toml");
    ADD_FAILURE() << "loaded a file that does not exist";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file, dir_ / "absent.toml");
    EXPECT_THAT(e.what(), HasSubstr("no such file"));
  }
}

TEST_F(ConfigTest, PrintConfigRoundTrips) {
  WriteFile(dir_ / "tls/crl.pem", "placeholder\n");
  Config first = Load(std::string(kMinimal) + R"(crl = "tls/crl.pem"
[listen]
port = 8443
[limits]
read_timeout = "1500ms"
[mailbox.ack_deadline_by_purpose]
child_protection = "4h"
)");
  std::string printed = PrintConfig(first);
  // Every key is shown, defaults included.
  for (const char* key : {"threads = 2", "[admin]", "max_connections = 1024",
                          "idle_timeout = \"1m\"", "expire_after = \"30d\"",
                          "\"missing_child\" = \"1h\"", "max_batch = 512", "key_file = \"/",
                          "[audit]", "sth_interval = \"100ms\"", "sth_max_entries = 1000"}) {
    EXPECT_THAT(printed, HasSubstr(key));
  }
  // Paths are absolute, so the printed file loads from anywhere to the same configuration.
  TempDir elsewhere;
  std::string copy = elsewhere / "printed.toml";
  WriteFile(copy, printed);
  Config second = LoadConfig(copy);
  EXPECT_EQ(second.source_file, copy);
  second.source_file = first.source_file;
  EXPECT_EQ(PrintConfig(second), printed);
  EXPECT_EQ(second.data_dir, first.data_dir);
  EXPECT_EQ(second.tls.crl, first.tls.crl);
  EXPECT_EQ(second.store.key_file, first.store.key_file);
  EXPECT_EQ(second.limits.read_timeout, milliseconds{1500});
  EXPECT_EQ(second.mailbox.ack_deadline_by_purpose, first.mailbox.ack_deadline_by_purpose);
}

TEST_F(ConfigTest, PrintConfigEscapesStrings) {
  fs::create_directories(dir_ / "we\"ird\\dir");
  WriteFile(dir_ / "we\"ird\\dir/gateway.pem", "placeholder\n");
  std::string text = kMinimal;
  std::string from = "cert = \"tls/gateway.pem\"";
  text.replace(text.find(from), from.size(), "cert = 'we\"ird\\dir/gateway.pem'");
  Config c = Load(text);
  TempDir elsewhere;
  WriteFile(elsewhere / "printed.toml", PrintConfig(c));
  EXPECT_EQ(LoadConfig(elsewhere / "printed.toml").tls.cert, c.tls.cert);
}

// ---- Registry ----

class RegistryTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    std::string path = dir_ / "registry.toml";
    WriteFile(path, text);
    return path;
  }

  void ExpectError(const std::string& text, const std::string& key, int64_t line,
                   const std::string& what) {
    std::string path = Write(text);
    try {
      LoadRegistry(path);
      ADD_FAILURE() << "loaded without error; expected an error for " << key;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.file, path);
      EXPECT_EQ(e.key, key) << e.what();
      EXPECT_EQ(e.line, line) << e.what();
      EXPECT_THAT(e.message, HasSubstr(what)) << e.what();
    }
  }

  static std::string AgencyText(const std::string& id, const std::string& role,
                                const std::string& fingerprint,
                                const std::string& area = "bradford") {
    return "[[agency]]\nid = \"" + id + "\"\nname = \"Name of " + id + "\"\nrole = \"" + role +
           "\"\narea = \"" + area + "\"\nfingerprints = [\"" + fingerprint + "\"]\n";
  }

  TempDir dir_;
};

TEST_F(RegistryTest, LoadsAgenciesAndPeers) {
  std::string colon_upper;
  for (size_t i = 0; i < kFpB.size(); i += 2) {
    if (i > 0) colon_upper += ':';
    colon_upper += "BB";
  }
  Registry r = LoadRegistry(Write(AgencyText("wyp", "police", kFpA) +
                                  AgencyText("bradford-csc", "csc", colon_upper) +
                                  AgencyText("bradford-audit", "audit", kFpC) + R"(
[[peer]]
area = "cambridgeshire"
endpoint = "https://127.0.0.1:8444"
fingerprints = [")" + std::string(64, 'd') +
                                  R"("]
signing_public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
sealing_public_key = ""
)"));
  EXPECT_EQ(r.source_file, dir_ / "registry.toml");
  ASSERT_EQ(r.agencies.size(), 3u);
  const Agency* wyp = r.Find("wyp");
  ASSERT_NE(wyp, nullptr);
  EXPECT_EQ(wyp->name, "Name of wyp");
  EXPECT_EQ(wyp->role, Role::kPolice);
  EXPECT_EQ(wyp->area, "bradford");
  EXPECT_EQ(wyp->fingerprints, std::vector<std::string>{kFpA});
  // The colon, upper-case form is stored normalised and found in either form.
  EXPECT_EQ(r.Find("bradford-csc")->fingerprints, std::vector<std::string>{kFpB});
  EXPECT_EQ(r.FindByFingerprint(kFpB), r.Find("bradford-csc"));
  EXPECT_EQ(r.FindByFingerprint(colon_upper), r.Find("bradford-csc"));
  EXPECT_EQ(r.FindByFingerprint(std::string(64, 'e')), nullptr);
  EXPECT_EQ(r.FindByFingerprint("not hex"), nullptr);
  EXPECT_EQ(r.FindByRole("bradford", Role::kAudit), r.Find("bradford-audit"));
  EXPECT_EQ(r.FindByRole("cambridgeshire", Role::kAudit), nullptr);
  EXPECT_EQ(r.Find("nobody"), nullptr);
  ASSERT_EQ(r.peers.size(), 1u);
  EXPECT_EQ(r.FindPeer("cambridgeshire"), &r.peers[0]);
  EXPECT_EQ(r.peers[0].endpoint, "https://127.0.0.1:8444");
  EXPECT_EQ(r.FindPeerByFingerprint(std::string(64, 'D')), &r.peers[0]);
  EXPECT_EQ(r.FindPeerByFingerprint(kFpA), nullptr);
  EXPECT_EQ(r.FindByFingerprint(std::string(64, 'd')), nullptr);
  EXPECT_EQ(r.peers[0].signing_public_key.size(), 44u);
}

TEST_F(RegistryTest, DuplicateAgencyId) {
  ExpectError(AgencyText("wyp", "police", kFpA) + AgencyText("wyp", "police", kFpB), "agency[1].id",
              8, "agency \"wyp\" is listed twice");
}

TEST_F(RegistryTest, FingerprintSharedByTwoAgencies) {
  ExpectError(AgencyText("wyp", "police", kFpA) + AgencyText("bthft", "health", kFpA), "agency[1]",
              7, "already registered to agency wyp");
}

TEST_F(RegistryTest, FingerprintSharedByAgencyAndPeer) {
  ExpectError(AgencyText("wyp", "police", kFpA) +
                  "[[peer]]\narea = \"cambridgeshire\"\nendpoint = \"https://x:1\"\n"
                  "fingerprints = [\"" +
                  kFpA + "\"]\n",
              "peer[0]", 7, "already registered to agency wyp");
}

TEST_F(RegistryTest, UnknownRole) {
  ExpectError(AgencyText("wyp", "constabulary", kFpA), "agency[0].role", 4,
              "unknown role \"constabulary\"");
}

TEST_F(RegistryTest, AgencyWithoutFingerprint) {
  ExpectError("[[agency]]\nid = \"wyp\"\nname = \"W\"\nrole = \"police\"\narea = \"bradford\"\n",
              "agency[0]", 1, "no certificate identifies this agency");
}

TEST_F(RegistryTest, BadFingerprint) {
  ExpectError(AgencyText("wyp", "police", "abc123"), "agency[0].fingerprints[0]", 6,
              "not a SHA-256 fingerprint");
  ExpectError(AgencyText("wyp", "police", std::string(63, 'a') + "g"), "agency[0].fingerprints[0]",
              6, "not a SHA-256 fingerprint");
}

TEST_F(RegistryTest, BadIdAndUnknownKey) {
  ExpectError(AgencyText("West Yorkshire", "police", kFpA), "agency[0].id", 2, "not a slug");
  ExpectError(AgencyText("wyp", "police", kFpA) + "colour = \"blue\"\n", "agency[0].colour", 7,
              "unknown key");
  ExpectError(AgencyText("wyp", "police", kFpA) + "[settings]\n", "settings", 7, "unknown key");
  ExpectError("agency = 3\n", "agency", 1, "expected an array");
  ExpectError("", "agency", 1, "no [[agency]]");
}

TEST_F(RegistryTest, MissingCertificateFile) {
  ExpectError(AgencyText("wyp", "police", kFpA) + "certificates = [\"certs/wyp.pem\"]\n",
              "agency[0].certificates[0]", 7, "file not found: " + (dir_ / "certs/wyp.pem"));
  WriteFile(dir_ / "certs/wyp.pem", "not a certificate\n");
  ExpectError(AgencyText("wyp", "police", kFpA) + "certificates = [\"certs/wyp.pem\"]\n",
              "agency[0].certificates[0]", 7, "no PEM certificate");
}

TEST_F(RegistryTest, BadPeer) {
  std::string base = AgencyText("wyp", "police", kFpA);
  ExpectError(base +
                  "[[peer]]\narea = \"cambridgeshire\"\nendpoint = \"http://x:1\"\n"
                  "fingerprints = [\"" +
                  kFpB + "\"]\n",
              "peer[0].endpoint", 9, "not an https:// URL");
  ExpectError(base + "[[peer]]\narea = \"cambridgeshire\"\nendpoint = \"https://x:1\"\n", "peer[0]",
              7, "no certificate identifies this peer");
  ExpectError(base +
                  "[[peer]]\narea = \"cambridgeshire\"\nendpoint = \"https://x:1\"\n"
                  "fingerprints = [\"" +
                  kFpB + "\"]\nsealing_public_key = \"c2hvcnQ=\"\n",
              "peer[0].sealing_public_key", 11, "32 bytes");
}

// ---- The example configurations, with real development certificates ----

// Lays out DIR/certs (made by certs/make-dev-certs) and DIR/bradford, DIR/cambridgeshire
// (copies of config/examples), mirroring the relative paths the examples use.
class ExampleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    testing::MakeDevCerts(*dir_ / "certs");
    for (const char* area : {"bradford", "cambridgeshire"}) {
      fs::copy(testing::SourceDir() + "/config/examples/" + area, *dir_ / area,
               fs::copy_options::recursive);
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static TempDir* dir_;
};
TempDir* ExampleTest::dir_ = nullptr;

TEST_F(ExampleTest, BradfordLoads) {
  Config c = LoadConfig(*dir_ / "bradford/safegated.toml");
  EXPECT_EQ(c.area, "bradford");
  EXPECT_EQ(c.tls.cert, *dir_ / "certs/gateway-bradford.pem");
  EXPECT_EQ(c.tls.crl, *dir_ / "certs/crl.pem");
  EXPECT_EQ(c.registry, *dir_ / "bradford/registry.toml");
  EXPECT_EQ(c.data_dir, *dir_ / "bradford/data");

  Registry r = LoadRegistry(c.registry);
  auto fingerprints = testing::ReadFingerprintsFile(*dir_ / "certs/fingerprints.txt");
  std::vector<std::pair<std::string, Role>> expected = {{"bradford-csc", Role::kCsc},
                                                        {"wyp", Role::kPolice},
                                                        {"bthft", Role::kHealth},
                                                        {"bradford-audit", Role::kAudit},
                                                        {"bradford-scrutiny", Role::kCommittee}};
  ASSERT_EQ(r.agencies.size(), expected.size());
  for (const auto& [id, role] : expected) {
    SCOPED_TRACE(id);
    const Agency* agency = r.Find(id);
    ASSERT_NE(agency, nullptr);
    EXPECT_EQ(agency->role, role);
    EXPECT_EQ(agency->area, "bradford");
    ASSERT_EQ(agency->fingerprints.size(), 1u);
    // The fingerprint taken from the PEM file is the one openssl reports for it.
    ASSERT_EQ(fingerprints.count(id), 1u);
    EXPECT_EQ(agency->fingerprints[0], fingerprints.at(id));
    EXPECT_EQ(r.FindByFingerprint(fingerprints.at(id)), agency);
  }
  // Certificates that must not identify anyone.
  for (const char* other : {"wyp-revoked", "wyp-expired", "rogue", "ca", "cambs-csc"}) {
    EXPECT_EQ(r.FindByFingerprint(fingerprints.at(other)), nullptr) << other;
  }
  const Peer* peer = r.FindPeer("cambridgeshire");
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(peer->fingerprints,
            std::vector<std::string>{fingerprints.at("gateway-cambridgeshire")});
  EXPECT_EQ(r.FindPeerByFingerprint(fingerprints.at("gateway-cambridgeshire")), peer);

  // The example states the transfer defaults and keeps the built-in bank holidays.
  EXPECT_EQ(c.transfers.acceptance_working_days, Config().transfers.acceptance_working_days);
  EXPECT_EQ(c.transfers.conference_working_days, Config().transfers.conference_working_days);
  EXPECT_EQ(c.transfers.escalation_interval, Config().transfers.escalation_interval);
  EXPECT_EQ(c.transfers.retry_max, Config().transfers.retry_max);
  EXPECT_EQ(c.transfers.bank_holidays, std::nullopt);
}

TEST_F(ExampleTest, CambridgeshireLoads) {
  Config c = LoadConfig(*dir_ / "cambridgeshire/safegated.toml");
  EXPECT_EQ(c.area, "cambridgeshire");
  EXPECT_NE(c.listen.port, LoadConfig(*dir_ / "bradford/safegated.toml").listen.port);
  Registry r = LoadRegistry(c.registry);
  auto fingerprints = testing::ReadFingerprintsFile(*dir_ / "certs/fingerprints.txt");
  for (const char* id : {"cambs-csc", "cambs-police", "cuh", "cambs-audit"}) {
    const Agency* agency = r.Find(id);
    ASSERT_NE(agency, nullptr) << id;
    EXPECT_EQ(agency->area, "cambridgeshire");
    EXPECT_EQ(agency->fingerprints, std::vector<std::string>{fingerprints.at(id)});
  }
  EXPECT_EQ(r.agencies.size(), 4u);
  EXPECT_EQ(r.FindByRole("cambridgeshire", Role::kHealth), r.Find("cuh"));
  ASSERT_NE(r.FindPeer("bradford"), nullptr);
  EXPECT_EQ(r.FindPeer("bradford")->fingerprints,
            std::vector<std::string>{fingerprints.at("gateway-bradford")});
}

TEST_F(ExampleTest, PrintedExampleRoundTrips) {
  Config first = LoadConfig(*dir_ / "bradford/safegated.toml");
  std::string printed = PrintConfig(first);
  TempDir elsewhere;
  WriteFile(elsewhere / "safegated.toml", printed);
  Config second = LoadConfig(elsewhere / "safegated.toml");
  second.source_file = first.source_file;
  EXPECT_EQ(PrintConfig(second), printed);
  EXPECT_EQ(second.listen.port, 8443);
  EXPECT_EQ(second.tls.key, first.tls.key);
}

// The policy file: optional, resolved against the config's directory, must be readable.
std::string WithPolicy(const std::string& value) {
  std::string text = kMinimal;
  const std::string after = "registry = \"registry.toml\"\n";
  text.insert(text.find(after) + after.size(), "policy = " + value + "\n");
  return text;
}

TEST_F(ConfigTest, PolicyIsOptional) {
  Config c = Load(kMinimal);
  EXPECT_EQ(c.policy, "");
  EXPECT_THAT(PrintConfig(c), ::testing::Not(HasSubstr("policy =")));
}

TEST_F(ConfigTest, PolicyIsResolvedAndPrinted) {
  WriteFile(dir_ / "policy/sharing.toml", "# placeholder\n");
  Config c = Load(WithPolicy("\"policy/sharing.toml\""));
  EXPECT_EQ(c.policy, (dir_.path() / "policy/sharing.toml").string());
  const std::string printed = PrintConfig(c);
  EXPECT_THAT(printed, HasSubstr("policy = \"" + c.policy + "\""));
  TempDir elsewhere;
  WriteFile(elsewhere / "printed.toml", printed);
  EXPECT_EQ(LoadConfig(elsewhere / "printed.toml").policy, c.policy);
}

TEST_F(ConfigTest, PolicyMustBeAReadableFile) {
  ExpectError(WithPolicy("\"absent.toml\""), "policy", 4,
              "file not found: " + (dir_ / "absent.toml"));
  ExpectError(WithPolicy("\"\""), "policy", 4, "must name a file");
  ExpectError(WithPolicy("7"), "policy", 4, "expected a string");
  fs::create_directory(dir_ / "policy.d");
  ExpectError(WithPolicy("\"policy.d\""), "policy", 4, "not a regular file");
}

// kMinimal is 8 lines; a [[drop]] written after it starts on line 9.
TEST_F(ConfigTest, DropFoldersAreReadResolvedAndPrinted) {
  Config none = Load(kMinimal);
  EXPECT_TRUE(none.drops.empty());
  EXPECT_THAT(PrintConfig(none), ::testing::Not(HasSubstr("[[drop]]")));

  Config c = Load(std::string(kMinimal) + R"([[drop]]
agency = "wyp"
format = "niche-xml"
dir = "drop/wyp"
purpose = "safeguarding"

[[drop]]
agency = "bthft"
format = "fhir-flag"
dir = "/srv/drop/bthft"
purpose = "child_protection"
recipients = ["bradford-csc", "wyp"]
)");
  ASSERT_EQ(c.drops.size(), 2u);
  EXPECT_EQ(c.drops[0].agency, "wyp");
  EXPECT_EQ(c.drops[0].format, "niche-xml");
  EXPECT_EQ(c.drops[0].dir, (dir_.path() / "drop/wyp").string());
  EXPECT_EQ(c.drops[0].purpose, "safeguarding");
  EXPECT_TRUE(c.drops[0].recipients.empty());
  EXPECT_EQ(c.drops[1].dir, "/srv/drop/bthft");
  EXPECT_EQ(c.drops[1].recipients, (std::vector<std::string>{"bradford-csc", "wyp"}));

  const std::string printed = PrintConfig(c);
  EXPECT_THAT(printed, HasSubstr("[[drop]]\nagency = \"wyp\"\nformat = \"niche-xml\""));
  TempDir elsewhere;
  WriteFile(elsewhere / "printed.toml", printed);
  Config again = LoadConfig(elsewhere / "printed.toml");
  again.source_file = c.source_file;
  EXPECT_EQ(PrintConfig(again), printed);
}

TEST_F(ConfigTest, DropFolderProblemsNameTheKey) {
  const std::string base = std::string(kMinimal) + "[[drop]]\n";
  ExpectError(base + "agency = \"wyp\"\nformat = \"niche-xml\"\ndir = \"d\"\n", "drop[0].purpose",
              9, "required key is missing");
  ExpectError(base + "agency = \"West Yorkshire\"\n", "drop[0].agency", 10, "not an agency id");
  ExpectError(base + "agency = \"wyp\"\nformat = \"Niche XML\"\n", "drop[0].format", 11,
              "not a format name");
  ExpectError(base + "agency = \"wyp\"\nformat = \"niche-xml\"\npurpose = \"Safe Guarding\"\n",
              "drop[0].purpose", 12, "purpose names use");
  ExpectError(base + "agency = \"wyp\"\nformat = \"niche-xml\"\npurpose = \"p\"\ndir = \"data\"\n",
              "drop[0].dir", 13, "must not be the data directory");
  WriteFile(dir_ / "afile", "x\n");
  ExpectError(base + "agency = \"wyp\"\nformat = \"niche-xml\"\npurpose = \"p\"\ndir = \"afile\"\n",
              "drop[0].dir", 13, "exists and is not a directory");
  ExpectError(base + "agency = \"wyp\"\nformat = \"niche-xml\"\npurpose = \"p\"\ndir = \"d\"\n" +
                  "recipients = [\"Bradford CSC\"]\n",
              "drop[0].recipients[0]", 14, "not an agency id");
  ExpectError(base + "agency = \"wyp\"\nformat = \"niche-xml\"\npurpose = \"p\"\ndir = \"d\"\n" +
                  "watch = true\n",
              "drop[0].watch", 14, "unknown key");
  ExpectError(base + "agency = \"wyp\"\nformat = \"niche-xml\"\npurpose = \"p\"\ndir = \"d\"\n" +
                  "[[drop]]\nagency = \"bthft\"\nformat = \"fhir-flag\"\npurpose = \"p\"\n" +
                  "dir = \"./d\"\n",
              "drop[1].dir", 18, "another [[drop]] already watches");
}

// ---- [transfers] ----

TEST_F(ConfigTest, TransfersDefaults) {
  Config c = Load(kMinimal);
  EXPECT_EQ(c.transfers.acceptance_working_days, 1u);
  EXPECT_EQ(c.transfers.conference_working_days, 15u);
  EXPECT_EQ(c.transfers.escalation_interval, milliseconds{24 * 3'600'000ll});
  EXPECT_EQ(c.transfers.bank_holidays, std::nullopt);  // the built-in list
  EXPECT_EQ(c.transfers.retry_initial, milliseconds{1000});
  EXPECT_EQ(c.transfers.retry_max, milliseconds{300'000});
  const std::string printed = PrintConfig(c);
  EXPECT_THAT(printed, HasSubstr("[transfers]\nacceptance_working_days = 1\n"
                                 "conference_working_days = 15\nescalation_interval = \"1d\"\n"
                                 "# bank_holidays: not set, the built-in England and Wales list\n"
                                 "retry_initial = \"1s\"\nretry_max = \"5m\"\n"));
}

TEST_F(ConfigTest, TransfersReadsEveryKey) {
  // Holidays as strings or as TOML dates, in any order; stored as "YYYY-MM-DD".
  Config c = Load(std::string(kMinimal) + R"([transfers]
acceptance_working_days = 2
conference_working_days = 10
escalation_interval = "12h"
bank_holidays = ["2027-01-01", 2027-01-04, "2026-12-25"]
retry_initial = "250ms"
retry_max = "1m"
)");
  EXPECT_EQ(c.transfers.acceptance_working_days, 2u);
  EXPECT_EQ(c.transfers.conference_working_days, 10u);
  EXPECT_EQ(c.transfers.escalation_interval, milliseconds{12 * 3'600'000ll});
  EXPECT_EQ(c.transfers.bank_holidays,
            (std::vector<std::string>{"2027-01-01", "2027-01-04", "2026-12-25"}));
  EXPECT_EQ(c.transfers.retry_initial, milliseconds{250});
  EXPECT_EQ(c.transfers.retry_max, milliseconds{60'000});

  // Printed, and loaded again to the same values.
  const std::string printed = PrintConfig(c);
  EXPECT_THAT(printed,
              HasSubstr("bank_holidays = [\"2027-01-01\", \"2027-01-04\", \"2026-12-25\"]\n"));
  TempDir elsewhere;
  WriteFile(elsewhere / "printed.toml", printed);
  Config again = LoadConfig(elsewhere / "printed.toml");
  again.source_file = c.source_file;
  EXPECT_EQ(PrintConfig(again), printed);
  EXPECT_EQ(again.transfers.bank_holidays, c.transfers.bank_holidays);
  EXPECT_EQ(again.transfers.retry_initial, c.transfers.retry_initial);

  // An empty list is kept as empty (weekends only), not taken for "not set".
  Config none = Load(std::string(kMinimal) + "[transfers]\nbank_holidays = []\n");
  ASSERT_TRUE(none.transfers.bank_holidays.has_value());
  EXPECT_TRUE(none.transfers.bank_holidays->empty());
  EXPECT_THAT(PrintConfig(none), HasSubstr("bank_holidays = []\n"));
}

// kMinimal is 8 lines: [transfers] is line 9, its first key line 10.
TEST_F(ConfigTest, TransfersProblemsNameFileLineAndKey) {
  const std::string base = std::string(kMinimal) + "[transfers]\n";
  ExpectError(base + "acceptance_working_dayz = 1\n", "transfers.acceptance_working_dayz", 10,
              "unknown key (did you mean \"acceptance_working_days\"?)");
  ExpectError(base + "acceptance_working_days = 0\n", "transfers.acceptance_working_days", 10,
              "must be between 1 and 365, not 0");
  ExpectError(base + "conference_working_days = \"15\"\n", "transfers.conference_working_days", 10,
              "expected an integer, found a string");
  ExpectError(base + "conference_working_days = 400\n", "transfers.conference_working_days", 10,
              "must be between 1 and 365");
  ExpectError(base + "escalation_interval = \"1 day\"\n", "transfers.escalation_interval", 10,
              "bad duration \"1 day\"");
  ExpectError(base + "escalation_interval = 24\n", "transfers.escalation_interval", 10,
              "expected a duration string");
  ExpectError(base + "escalation_interval = \"0s\"\n", "transfers.escalation_interval", 10,
              "must be more than 0");
  ExpectError(base + "retry_initial = \"10s\"\nretry_max = \"5s\"\n", "transfers.retry_max", 11,
              "must not be shorter than transfers.retry_initial (10s)");
  ExpectError(base + "retry_initial = \"1h\"\n", "transfers.retry_initial", 10,
              "must not be longer than transfers.retry_max (5m, the default)");
  ExpectError(base + "bank_holidays = \"2026-12-25\"\n", "transfers.bank_holidays", 10,
              "expected an array, found a string");
  ExpectError(base + "bank_holidays = [\"2026-12-25\",\n  \"2026-02-30\"]\n",
              "transfers.bank_holidays[1]", 11,
              "\"2026-02-30\" is not a real date written YYYY-MM-DD");
  ExpectError(base + "bank_holidays = [\"25/12/2026\"]\n", "transfers.bank_holidays[0]", 10,
              "is not a real date");
  ExpectError(base + "bank_holidays = [\"2026-12-25 \"]\n", "transfers.bank_holidays[0]", 10,
              "is not a real date");
  ExpectError(base + "bank_holidays = [\"2027-02-29\"]\n", "transfers.bank_holidays[0]", 10,
              "is not a real date");
  ExpectError(base + "bank_holidays = [20261225]\n", "transfers.bank_holidays[0]", 10,
              "expected a date such as \"2026-12-25\", found an integer");
  ExpectError(base + "bank_holidays = [2026-12-25T00:00:00Z]\n", "transfers.bank_holidays[0]", 10,
              "found a date-time");
  ExpectError(base + "bank_holidays = [2026-12-25, \"2026-12-25\"]\n", "transfers.bank_holidays[1]",
              10, "2026-12-25 is listed twice");
  ExpectError("transfers = 1\n" + std::string(kMinimal), "transfers", 1,
              "expected a table, found an integer");
  // A leap day is a real date in a leap year.
  Config leap = Load(base + "bank_holidays = [\"2028-02-29\", \"2000-02-29\"]\n");
  EXPECT_EQ(leap.transfers.bank_holidays->size(), 2u);
}

// [audit.forward] (docs/audit-log.md, "Forwarding"). kMinimal is 8 lines: [audit.forward] is
// line 9, its first key line 10.
TEST_F(ConfigTest, AuditForwardReadsEveryKeyAndPrintsThem) {
  WriteFile(dir_ / "tls/collector-ca.pem", "placeholder\n");
  Config none = Load(kMinimal);
  EXPECT_FALSE(none.audit.forward.has_value());
  EXPECT_THAT(PrintConfig(none), HasSubstr("# [audit.forward]: not set"));

  Config c = Load(std::string(kMinimal) + R"([audit.forward]
address = "logs.example.org:6514"
ca = "tls/collector-ca.pem"
cert = "tls/gateway.pem"
key = "tls/gateway.key"
server_name = "collector.example.org"
app_name = "safegate-bradford"
hostname = "gw1.bradford.example"
retry_initial = "250ms"
retry_max = "30s"
poll_interval = "50ms"
timeout = "5s"
)");
  ASSERT_TRUE(c.audit.forward.has_value());
  const auto& f = *c.audit.forward;
  EXPECT_EQ(f.address, "logs.example.org:6514");
  EXPECT_EQ(f.host, "logs.example.org");
  EXPECT_EQ(f.port, "6514");
  EXPECT_EQ(f.ca, dir_ / "tls/collector-ca.pem");
  EXPECT_EQ(f.cert, dir_ / "tls/gateway.pem");
  EXPECT_EQ(f.key, dir_ / "tls/gateway.key");
  EXPECT_EQ(f.server_name, "collector.example.org");
  EXPECT_EQ(f.app_name, "safegate-bradford");
  EXPECT_EQ(f.hostname, "gw1.bradford.example");
  EXPECT_EQ(f.retry_initial, milliseconds{250});
  EXPECT_EQ(f.retry_max, milliseconds{30'000});
  EXPECT_EQ(f.poll_interval, milliseconds{50});
  EXPECT_EQ(f.timeout, milliseconds{5000});

  // Printed, and loaded again to the same values.
  const std::string printed = PrintConfig(c);
  EXPECT_THAT(printed, HasSubstr("[audit.forward]\naddress = \"logs.example.org:6514\"\n"));
  TempDir elsewhere;
  WriteFile(elsewhere / "printed.toml", printed);
  Config again = LoadConfig(elsewhere / "printed.toml");
  again.source_file = c.source_file;
  EXPECT_EQ(PrintConfig(again), printed);

  // Defaults: the server name is the address's host; IPv6 in brackets.
  Config d = Load(std::string(kMinimal) +
                  "[audit.forward]\naddress = \"[::1]:6514\"\nca = \"tls/ca.pem\"\n");
  ASSERT_TRUE(d.audit.forward.has_value());
  EXPECT_EQ(d.audit.forward->host, "::1");
  EXPECT_EQ(d.audit.forward->server_name, "::1");
  EXPECT_EQ(d.audit.forward->app_name, "safegate");
  EXPECT_EQ(d.audit.forward->hostname, "");
  EXPECT_TRUE(d.audit.forward->cert.empty());
  EXPECT_EQ(d.audit.forward->retry_initial, milliseconds{1000});
  EXPECT_EQ(d.audit.forward->retry_max, milliseconds{60'000});
  EXPECT_THAT(PrintConfig(d), HasSubstr("# hostname: not set, the system host name\n"));
}

TEST_F(ConfigTest, AuditForwardProblemsNameFileLineAndKey) {
  const std::string base = std::string(kMinimal) + "[audit.forward]\n";
  const std::string ok = "ca = \"tls/ca.pem\"\n";
  ExpectError(base + "address = \"h:1\"\n" + ok + "adress = \"x\"\n", "audit.forward.adress", 12,
              "unknown key (did you mean \"address\"?)");
  ExpectError(base + ok, "audit.forward.address", 9, "required key is missing");
  ExpectError(base + "address = \"h:1\"\n", "audit.forward.ca", 9, "required key is missing");
  ExpectError(base + "address = \"logs.example.org\"\n" + ok, "audit.forward.address", 10,
              "\"logs.example.org\" has no port");
  ExpectError(base + "address = \"logs:65536\"\n" + ok, "audit.forward.address", 10,
              "has a port that is not a number from 1 to 65535");
  ExpectError(base + "address = \"logs:syslog\"\n" + ok, "audit.forward.address", 10,
              "has a port that is not a number");
  ExpectError(base + "address = \":6514\"\n" + ok, "audit.forward.address", 10, "has no host");
  ExpectError(base + "address = \"::1:6514\"\n" + ok, "audit.forward.address", 10,
              "has an IPv6 address without [ ]");
  ExpectError(base + "address = \"[::1:6514\"\n" + ok, "audit.forward.address", 10,
              "has an unclosed IPv6 address");
  ExpectError(base + "address = \"h:1\"\nca = \"tls/nope.pem\"\n", "audit.forward.ca", 11,
              "file not found: " + (dir_ / "tls/nope.pem"));
  ExpectError(base + "address = \"h:1\"\n" + ok + "cert = \"tls/gateway.pem\"\n",
              "audit.forward.cert", 12, "needs its private key: add audit.forward.key");
  ExpectError(base + "address = \"h:1\"\n" + ok + "key = \"tls/gateway.key\"\n",
              "audit.forward.key", 12, "needs its certificate: add audit.forward.cert");
  ExpectError(base + "address = \"h:1\"\n" + ok + "app_name = \"safe gate\"\n",
              "audit.forward.app_name", 12, "is not an RFC 5424 APP-NAME");
  ExpectError(base + "address = \"h:1\"\n" + ok + "app_name = \"" + std::string(49, 'a') + "\"\n",
              "audit.forward.app_name", 12, "is not an RFC 5424 APP-NAME");
  ExpectError(base + "address = \"h:1\"\n" + ok + "hostname = \"\"\n", "audit.forward.hostname",
              12, "is not an RFC 5424 HOSTNAME");
  ExpectError(base + "address = \"h:1\"\n" + ok + "server_name = \"a b\"\n",
              "audit.forward.server_name", 12, "is not a host name or IP address");
  ExpectError(base + "address = \"h:1\"\n" + ok + "retry_initial = \"1h\"\n",
              "audit.forward.retry_initial", 12,
              "must not be longer than audit.forward.retry_max (1m, the default)");
  ExpectError(base + "address = \"h:1\"\n" + ok + "retry_initial = \"10s\"\nretry_max = \"5s\"\n",
              "audit.forward.retry_max", 13, "must not be shorter than audit.forward.retry_initial");
  ExpectError(base + "address = \"h:1\"\n" + ok + "poll_interval = \"0ms\"\n",
              "audit.forward.poll_interval", 12, "must be more than 0");
  ExpectError(std::string(kMinimal) + "[audit]\nforward = \"h:1\"\n", "audit.forward", 10,
              "expected a table, found a string");
}

}  // namespace
}  // namespace safegate::config
