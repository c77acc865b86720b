// safegatectl: the administrators' and audit officers' command-line tool.
// This file only parses arguments and dispatches; the work is in sandbox.cc and the core.
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/ctl/sandbox.h"
#include "record/status.h"

#ifdef SAFEGATE_HAVE_CORE
#include "daemon/core/gateway.h"
#endif

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;  // the action failed, or the audit chain is not intact
constexpr int kExitUsage = 2;   // wrong arguments, or a data directory that cannot be read

constexpr const char* kUsage =
    R"(safegatectl: administer safegate gateways and verify their audit logs.

Usage:
  safegatectl sandbox up --dir DIR [--areas AREA,...] [--timeout SECONDS]
      Make development certificates for every example agency, write a registry and a config
      per area, start one safegated per area on free loopback ports, wait until each answers,
      and write DIR/sandbox.json (URLs, pids, data directories, configs, agency certificates).
      Areas: bradford, cambridgeshire (default: both; each is the other's peer).
      Certificates are made afresh each time; an existing DIR keeps its data directories.
      Finds make-dev-certs via $SAFEGATE_CERTS_SCRIPT, else ../share/safegate/ beside this
      program, else the source tree; safegated via $SAFEGATE_DAEMON, else beside this program,
      else the build tree.
  safegatectl sandbox down --dir DIR [--timeout SECONDS]
      Stop the sandbox's gateways (SIGTERM, then wait), including any restarted by hand with
      `safegated --config DIR/AREA/safegated.toml`.
  safegatectl audit verify --data-dir DIR
      Verify the hash chain of a gateway's audit log offline and print a JSON report
      {"ok", "entries", "head", "first_bad_seq", ...}.
  safegatectl --help

Exit status: 0 success (audit chain intact), 1 failure (audit chain broken), 2 bad usage or
unreadable input. --timeout bounds each wait (default 30 seconds).
)";

struct Args {
  std::vector<std::string> words;              // positional: command, subcommand
  std::map<std::string, std::string> options;  // --name value
  bool help = false;
};

// Options that take a value; anything else starting with "--" is an error.
const std::vector<std::string> kValueOptions = {"--dir", "--areas", "--timeout", "--data-dir"};

std::optional<Args> Parse(int argc, char** argv, std::string* error) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h" || a == "help") {
      args.help = true;
      continue;
    }
    if (a.rfind("--", 0) == 0) {
      std::string name = a, value;
      bool inline_value = false;
      if (auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        inline_value = true;
      }
      bool known = false;
      for (const auto& o : kValueOptions) known = known || o == name;
      if (!known) {
        *error = "unknown option " + name;
        return std::nullopt;
      }
      if (!inline_value) {
        if (i + 1 >= argc) {
          *error = "option " + name + " needs a value";
          return std::nullopt;
        }
        value = argv[++i];
      }
      if (args.options.count(name)) {
        *error = "option " + name + " given twice";
        return std::nullopt;
      }
      args.options[name] = value;
      continue;
    }
    args.words.push_back(a);
  }
  return args;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    std::string part = s.substr(start, comma - start);
    if (!part.empty()) out.push_back(part);
    start = comma + 1;
  }
  return out;
}

int UsageError(const std::string& what) {
  std::cerr << "safegatectl: " << what << "\nRun `safegatectl --help` for usage.\n";
  return kExitUsage;
}

// Rejects options that the command does not take, naming them.
bool OnlyOptions(const Args& args, const std::vector<std::string>& allowed, std::string* error) {
  for (const auto& [name, value] : args.options) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == name;
    if (!ok) {
      *error =
          "option " + name + " does not apply to `" + args.words[0] + " " + args.words[1] + "`";
      return false;
    }
  }
  return true;
}

int Sandbox(const Args& args, const char* program) {
  const std::string& action = args.words[1];
  std::string error;
  safegate::ctl::SandboxOptions options;
  options.program_path = program;
  if (args.words.size() > 2) return UsageError("unexpected argument " + args.words[2]);
  if (action == "up") {
    if (!OnlyOptions(args, {"--dir", "--areas", "--timeout"}, &error)) return UsageError(error);
  } else if (action == "down") {
    if (!OnlyOptions(args, {"--dir", "--timeout"}, &error)) return UsageError(error);
  } else {
    return UsageError("unknown sandbox action \"" + action + "\" (expected up or down)");
  }
  auto dir = args.options.find("--dir");
  if (dir == args.options.end() || dir->second.empty()) {
    return UsageError("sandbox " + action + ": --dir DIR is required");
  }
  options.dir = dir->second;
  if (auto areas = args.options.find("--areas"); areas != args.options.end()) {
    options.areas = SplitComma(areas->second);
    if (options.areas.empty()) return UsageError("--areas: no area given");
  }
  if (auto t = args.options.find("--timeout"); t != args.options.end()) {
    char* end = nullptr;
    long seconds = std::strtol(t->second.c_str(), &end, 10);
    if (end == t->second.c_str() || *end != '\0' || seconds <= 0 || seconds > 3600) {
      return UsageError("--timeout: \"" + t->second + "\" is not a number of seconds in 1..3600");
    }
    options.timeout = std::chrono::seconds(seconds);
  }
  safegate::Status s =
      action == "up" ? safegate::ctl::SandboxUp(options) : safegate::ctl::SandboxDown(options);
  if (!s.ok()) {
    std::cerr << "safegatectl sandbox " << action << ": " << s.ToString() << "\n";
    return s.code() == safegate::ErrorCode::kInvalidInput ? kExitUsage : kExitFailed;
  }
  return kExitOk;
}

int Audit(const Args& args) {
  const std::string& action = args.words[1];
  std::string error;
  if (action != "verify") {
    return UsageError("unknown audit action \"" + action + "\" (expected verify)");
  }
  if (args.words.size() > 2) return UsageError("unexpected argument " + args.words[2]);
  if (!OnlyOptions(args, {"--data-dir"}, &error)) return UsageError(error);
  auto dir = args.options.find("--data-dir");
  if (dir == args.options.end() || dir->second.empty()) {
    return UsageError("audit verify: --data-dir DIR is required");
  }
#ifdef SAFEGATE_HAVE_CORE
  safegate::Result<safegate::VerifyReport> report = safegate::VerifyAuditChain(dir->second);
  if (!report.ok()) {
    std::cerr << "safegatectl audit verify: " << dir->second << ": " << report.status().ToString()
              << "\n";
    return kExitUsage;
  }
  std::cout << report->ToJson().dump(2) << "\n";
  return report->ok ? kExitOk : kExitFailed;
#else
  std::cerr << "safegatectl audit verify: this safegatectl was built without the store "
               "(safegate_core), so it cannot read "
            << dir->second << "\n";
  return kExitUsage;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  std::optional<Args> args = Parse(argc, argv, &error);
  if (!args) return UsageError(error);
  if (args->help) {
    std::cout << kUsage;
    return kExitOk;
  }
  if (args->words.empty()) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string& command = args->words[0];
  if (command != "sandbox" && command != "audit") {
    return UsageError("unknown command \"" + command + "\" (expected sandbox or audit)");
  }
  if (args->words.size() < 2) {
    return UsageError(command == "sandbox" ? "sandbox: expected up or down"
                                           : "audit: expected verify");
  }
  return command == "sandbox" ? Sandbox(*args, argv[0]) : Audit(*args);
}
