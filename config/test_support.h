// Small helpers shared by the config and certificate tests: a private temporary directory,
// running a shell command, reading and writing files, and making the development PKI with
// certs/make-dev-certs. Test code only; not thread-safe; failures are gtest assertions or
// exceptions thrown to the test.
#pragma once

#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

namespace safegate::config::testing {

// The repository root: $SAFEGATE_SOURCE_DIR (set by CTest), else the one this was built from.
inline std::string SourceDir() {
  if (const char* dir = std::getenv("SAFEGATE_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return SAFEGATE_TEST_SOURCE_DIR;
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                          "/safegate-config-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh; arguments must already be quoted.
inline CommandResult RunShell(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline std::string Quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::string MakeDevCertsScript() { return SourceDir() + "/certs/make-dev-certs"; }

// Runs certs/make-dev-certs into `dir`; throws with the script's output if it fails.
inline void MakeDevCerts(const std::string& dir) {
  CommandResult result = RunShell(Quoted(MakeDevCertsScript()) + " " + Quoted(dir));
  if (result.exit_code != 0) {
    throw std::runtime_error("make-dev-certs failed (" + std::to_string(result.exit_code) +
                             "): " + result.output);
  }
}

// fingerprints.txt as name -> lower-case hex SHA-256.
inline std::map<std::string, std::string> ReadFingerprintsFile(const std::string& path) {
  std::map<std::string, std::string> out;
  std::istringstream in(ReadFile(path));
  std::string name, fingerprint;
  while (in >> name >> fingerprint) out[name] = fingerprint;
  return out;
}

}  // namespace safegate::config::testing
