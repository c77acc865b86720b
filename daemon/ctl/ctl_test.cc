// Unit tests of safegatectl's process utilities and of its command line (errors name what
// was wrong and exit 2). The sandbox itself is exercised end to end by tests/ (integration).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "daemon/ctl/process.h"
#include "daemon/ctl/sandbox.h"

namespace safegate::ctl {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "safegatectl-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs safegatectl with `args`; returns the exit status and its combined output.
int Ctl(const std::vector<std::string>& args, std::string* output) {
  TempDir tmp;
  std::vector<std::string> argv = {SAFEGATECTL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  Result<int> rc = RunToCompletion({argv, tmp.path() + "/out", false});
  *output = ReadFile(tmp.path() + "/out");
  return rc.ok() ? *rc : -1;
}

TEST(ProcessTest, SpawnReportsAProgramThatCannotStart) {
  Result<pid_t> pid = Spawn({{"/nonexistent/safegated", "--config", "x"}, "", false});
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.status().detail().find("/nonexistent/safegated"), std::string::npos)
      << pid.status().ToString();
}

TEST(ProcessTest, RunToCompletionGivesTheExitStatusAndOutput) {
  TempDir tmp;
  Result<int> rc =
      RunToCompletion({{"/bin/sh", "-c", "echo hello; exit 3"}, tmp.path() + "/log", false});
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  EXPECT_EQ(*rc, 3);
  EXPECT_EQ(ReadFile(tmp.path() + "/log"), "hello\n");
}

TEST(ProcessTest, AliveUntilKilledThenReaped) {
  Result<pid_t> pid = Spawn({{"/bin/sleep", "600"}, "", false});
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_TRUE(ProcessAlive(*pid));
  std::vector<std::string> args = ProcessArgs(*pid);
  ASSERT_EQ(args.size(), 2u);
  EXPECT_EQ(args[1], "600");
  ASSERT_EQ(kill(*pid, SIGKILL), 0);
  EXPECT_TRUE(WaitForExit(*pid, std::chrono::seconds(30)));
  EXPECT_FALSE(ProcessAlive(*pid));
  EXPECT_TRUE(ProcessArgs(*pid).empty());
}

TEST(ProcessTest, LoopbackHttpGetOnAClosedPortIsUnavailable) {
  // Bind port 0 to learn a free port, then close it so nothing listens there.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  Result<int> code = LoopbackHttpGet(ntohs(addr.sin_port), "/healthz", std::chrono::seconds(2));
  ASSERT_FALSE(code.ok());
  EXPECT_EQ(code.status().code(), ErrorCode::kUnavailable);
}

TEST(ProcessTest, TailOfFileKeepsTheLastLines) {
  TempDir tmp;
  std::ofstream(tmp.path() + "/f") << "one\ntwo\nthree\n";
  EXPECT_EQ(TailOfFile(tmp.path() + "/f", 2), "  | two\n  | three\n");
  EXPECT_EQ(TailOfFile(tmp.path() + "/missing", 2), "");
}

TEST(SafegatectlTest, HelpExitsZero) {
  std::string out;
  EXPECT_EQ(Ctl({"--help"}, &out), 0);
  EXPECT_NE(out.find("sandbox up --dir DIR"), std::string::npos) << out;
  EXPECT_NE(out.find("audit verify (--data-dir DIR | API)"), std::string::npos) << out;
  EXPECT_NE(out.find("keys show (--data-dir DIR [--area AREA] | --config FILE)"), std::string::npos)
      << out;
  EXPECT_NE(out.find("keys init (--data-dir DIR"), std::string::npos) << out;
  EXPECT_NE(out.find("DIR/transfer_signing.key and DIR/transfer_sealing.key separately"),
            std::string::npos)
      << out;
}

TEST(SafegatectlTest, UsageErrorsNameWhatWasWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{}, "Usage"},
      {{"frobnicate"}, "unknown command \"frobnicate\""},
      {{"sandbox"}, "expected up or down"},
      {{"sandbox", "sideways", "--dir", "x"}, "unknown sandbox action \"sideways\""},
      {{"sandbox", "up"}, "--dir DIR is required"},
      {{"sandbox", "up", "--dir"}, "--dir needs a value"},
      {{"sandbox", "up", "--dir", "x", "--bogus", "1"}, "unknown option --bogus"},
      {{"sandbox", "up", "--dir", "x", "--areas", "bradford,york"}, "unknown area \"york\""},
      {{"sandbox", "up", "--dir", "x", "--areas", "bradford,bradford"}, "given twice"},
      {{"sandbox", "up", "--dir", "x", "--timeout", "soon"}, "--timeout"},
      {{"sandbox", "down", "--dir", "x", "--areas", "bradford"}, "does not apply"},
      {{"audit", "verify"}, "--data-dir DIR (offline) or --url URL (through the API) is required"},
      {{"audit", "erase", "--data-dir", "x"}, "unknown audit action \"erase\""},
      {{"keys"}, "keys: expected show or init"},
      {{"keys", "rotate", "--data-dir", "x"}, "unknown keys action \"rotate\""},
      {{"keys", "show"}, "keys show: --data-dir DIR is required"},
      {{"keys", "init", "--data-dir", ""}, "keys init: --data-dir DIR is required"},
      {{"keys", "show", "--data-dir"}, "--data-dir needs a value"},
      {{"keys", "show", "--data-dir", "x", "extra"}, "unexpected argument extra"},
      {{"keys", "show", "--data-dir", "x", "--dir", "y"},
       "option --dir does not apply to `keys show`"},
      {{"keys", "show", "--data-dir", "x", "--area", "West Yorkshire"},
       "--area: \"West Yorkshire\" is not an area slug"},
      {{"keys", "show", "--data-dir", "x", "--config", "y"}, "not both"},
      {{"keys", "show", "--config", "/nonexistent/safegated.toml"},
       "/nonexistent/safegated.toml: cannot read: no such file"},
  };
  for (const auto& c : cases) {
    std::string out;
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    EXPECT_EQ(Ctl(c.args, &out), 2) << joined << "\n" << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << joined << "\n" << out;
  }
}

TEST(SafegatectlTest, SandboxDownWithoutASandboxSaysSo) {
  TempDir tmp;
  std::string out;
  EXPECT_EQ(Ctl({"sandbox", "down", "--dir", tmp.path()}, &out), 1);
  EXPECT_NE(out.find("no sandbox in " + tmp.path()), std::string::npos) << out;
}

TEST(SafegatectlTest, SandboxUpNamesAMissingDaemon) {
  TempDir tmp;
  std::string out;
  setenv("SAFEGATE_DAEMON", (tmp.path() + "/no-such-safegated").c_str(), 1);
  int rc = Ctl({"sandbox", "up", "--dir", tmp.path() + "/sb"}, &out);
  unsetenv("SAFEGATE_DAEMON");
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("SAFEGATE_DAEMON=" + tmp.path() + "/no-such-safegated"), std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(tmp.path() + "/sb/sandbox.json"));
}

TEST(SafegatectlTest, AuditVerifyOfADirectoryWithoutAStoreFails) {
  TempDir tmp;
  std::string out;
  EXPECT_EQ(Ctl({"audit", "verify", "--data-dir", tmp.path()}, &out), 2);
  EXPECT_NE(out.find(tmp.path()), std::string::npos) << out;
}

// `safegatectl policy ...` is policy::PolicyCommand (its own tests are in policy/); here only
// that it is wired: the shipped policy checks, a bad file is refused with file:line.
TEST(SafegatectlTest, PolicyCommandsAreWired) {
  const char* source = std::getenv("SAFEGATE_SOURCE_DIR");
  if (source == nullptr || *source == '\0') GTEST_SKIP() << "SAFEGATE_SOURCE_DIR is not set";
  std::string out;
  EXPECT_EQ(Ctl({"policy", "check", std::string(source) + "/policy/default.toml"}, &out), 0)
      << out;
  EXPECT_NE(out.find(": ok: policy"), std::string::npos) << out;
  TempDir tmp;
  const std::string bad = tmp.path() + "/bad.toml";
  std::ofstream(bad) << "[policy]\nname = \"x\"\ncolour = \"blue\"\n";
  EXPECT_EQ(Ctl({"policy", "check", bad}, &out), 1) << out;
  EXPECT_NE(out.find(bad + ":3:"), std::string::npos) << out;
  EXPECT_EQ(Ctl({"policy", "test", std::string(source) + "/policy/tests"}, &out), 0) << out;
}

TEST(SafegatectlTest, RetentionRunNeedsAStore) {
  std::string out;
  EXPECT_EQ(Ctl({"retention", "run"}, &out), 2);
  EXPECT_NE(out.find("give --config FILE or --data-dir DIR"), std::string::npos) << out;
  EXPECT_EQ(Ctl({"retention", "sweep"}, &out), 2);
  EXPECT_NE(out.find("retention: expected run"), std::string::npos) << out;
  TempDir tmp;
  EXPECT_EQ(Ctl({"retention", "run", "--data-dir", tmp.path()}, &out), 1);
  EXPECT_NE(out.find("no safegate store in " + tmp.path()), std::string::npos) << out;
}

// The value of `name = "..."` in TOML lines, or "" when absent.
std::string TomlString(const std::string& text, const std::string& name) {
  const std::string start = "\n" + name + " = \"";
  size_t at = text.find(start);
  if (at == std::string::npos) return "";
  at += start.size();
  size_t end = text.find('"', at);
  return end == std::string::npos ? "" : text.substr(at, end - at);
}

TEST(SafegatectlKeysTest, ShowNeverCreatesInitCreatesThenShowPrintsTheSameKeys) {
  TempDir tmp;
  const std::string dir = tmp.path();
  const std::string signing = dir + "/transfer_signing.key";
  const std::string sealing = dir + "/transfer_sealing.key";
  std::string out;

  // Nothing there: show fails, says how to get keys, and makes none.
  EXPECT_EQ(Ctl({"keys", "show", "--data-dir", dir}, &out), 1) << out;
  const std::string init = "`safegatectl keys init --data-dir " + dir + "`";
  EXPECT_NE(out.find("no transfer keys in " + dir +
                     "; safegated creates them at first start, or run " + init),
            std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(signing));
  EXPECT_FALSE(fs::exists(sealing));

  ASSERT_EQ(Ctl({"keys", "init", "--data-dir", dir, "--area", "bradford"}, &out), 0) << out;
  EXPECT_NE(out.find("created " + signing + " and " + sealing), std::string::npos) << out;
  for (const std::string& f : {signing, sealing}) {
    ASSERT_TRUE(fs::is_regular_file(f)) << f;
    EXPECT_EQ(fs::file_size(f), 32u) << f;
    EXPECT_EQ(fs::status(f).permissions(), fs::perms::owner_read | fs::perms::owner_write) << f;
  }
  const std::string init_signing = TomlString(out, "signing_public_key");
  const std::string init_sealing = TomlString(out, "sealing_public_key");
  EXPECT_EQ(TomlString(out, "area"), "bradford") << out;
  EXPECT_EQ(init_signing.size(), 44u) << out;  // base64 of 32 bytes
  EXPECT_EQ(init_sealing.size(), 44u) << out;
  EXPECT_NE(init_signing, init_sealing);

  // show prints the very same keys, and changes nothing.
  ASSERT_EQ(Ctl({"keys", "show", "--data-dir", dir, "--area", "bradford"}, &out), 0) << out;
  EXPECT_EQ(TomlString(out, "area"), "bradford") << out;
  EXPECT_EQ(TomlString(out, "signing_public_key"), init_signing) << out;
  EXPECT_EQ(TomlString(out, "sealing_public_key"), init_sealing) << out;
  EXPECT_NE(out.find("[[peer]]"), std::string::npos) << out;

  // Without an area: the key lines only.
  ASSERT_EQ(Ctl({"keys", "show", "--data-dir", dir}, &out), 0) << out;
  EXPECT_EQ(out.find("\narea = "), std::string::npos) << out;
  EXPECT_EQ(TomlString(out, "signing_public_key"), init_signing) << out;
  EXPECT_EQ(TomlString(out, "sealing_public_key"), init_sealing) << out;

  // init again keeps the keys.
  ASSERT_EQ(Ctl({"keys", "init", "--data-dir", dir}, &out), 0) << out;
  EXPECT_NE(out.find("exist already; nothing was created"), std::string::npos) << out;
  EXPECT_EQ(TomlString(out, "signing_public_key"), init_signing) << out;
  EXPECT_EQ(TomlString(out, "sealing_public_key"), init_sealing) << out;
}

TEST(SafegatectlKeysTest, ProblemsAreNamed) {
  TempDir tmp;
  std::string out;
  // A data directory that does not exist: show refuses it, init makes it (0700).
  const std::string missing = tmp.path() + "/data";
  EXPECT_EQ(Ctl({"keys", "show", "--data-dir", missing}, &out), 2) << out;
  EXPECT_NE(out.find("data directory " + missing + " does not exist"), std::string::npos) << out;
  ASSERT_EQ(Ctl({"keys", "init", "--data-dir", missing}, &out), 0) << out;
  EXPECT_EQ(fs::status(missing).permissions(), fs::perms::owner_all);
  EXPECT_TRUE(fs::exists(missing + "/transfer_sealing.key"));

  // Half a key set: show names the file that is there; init completes it.
  const std::string half = tmp.path() + "/half";
  ASSERT_EQ(Ctl({"keys", "init", "--data-dir", half}, &out), 0) << out;
  fs::remove(half + "/transfer_sealing.key");
  EXPECT_EQ(Ctl({"keys", "show", "--data-dir", half}, &out), 1) << out;
  EXPECT_NE(out.find("no transfer keys in " + half), std::string::npos) << out;
  EXPECT_NE(out.find(half + "/transfer_signing.key exists"), std::string::npos) << out;
  ASSERT_EQ(Ctl({"keys", "init", "--data-dir", half}, &out), 0) << out;
  EXPECT_NE(out.find("created " + half + "/transfer_sealing.key (mode 0600)"), std::string::npos)
      << out;

  // A key file others may read is refused, naming the file and the fix.
  fs::permissions(half + "/transfer_signing.key", fs::perms::others_read, fs::perm_options::add);
  EXPECT_EQ(Ctl({"keys", "show", "--data-dir", half}, &out), 1) << out;
  EXPECT_NE(out.find("chmod 600 " + half + "/transfer_signing.key"), std::string::npos) << out;
}

TEST(SandboxTest, AreasAreTheExampleAreas) {
  EXPECT_EQ(SandboxAreaNames(), (std::vector<std::string>{"bradford", "cambridgeshire"}));
}

}  // namespace
}  // namespace safegate::ctl
