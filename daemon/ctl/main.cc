// safegatectl: the administrators' and audit officers' command-line tool.
// This file only parses arguments and dispatches; the work is in sandbox.cc and the core.
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/ctl/keys.h"
#include "daemon/ctl/sandbox.h"
#include "daemon/ctl/status.h"
#include "policy/policy_tool.h"
#include "record/status.h"

#ifdef SAFEGATE_HAVE_CORE
#include "daemon/core/gateway.h"
#include "daemon/ctl/audit_tool.h"
#include "daemon/ctl/backup.h"
#include "daemon/ctl/retention.h"
#include "daemon/core/subjects.h"
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
      and write DIR/sandbox.json (URLs, pids, data directories, configs, agency certificates,
      each gateway's own certificate and key and its public transfer keys).
      Areas: bradford, cambridgeshire (default: both; each is the other's peer, with the
      other's gateway certificate and transfer keys in its registry).
      Certificates are made afresh each time; an existing DIR keeps its data directories.
      Finds make-dev-certs via $SAFEGATE_CERTS_SCRIPT, else ../share/safegate/ beside this
      program, else the source tree; safegated via $SAFEGATE_DAEMON, else beside this program,
      else the build tree.
  safegatectl sandbox down --dir DIR [--timeout SECONDS]
      Stop the sandbox's gateways (SIGTERM, then wait), including any restarted by hand with
      `safegated --config DIR/AREA/safegated.toml`.
  safegatectl audit verify (--data-dir DIR | API) [--public-key B64]
      Verify a gateway's audit log against its latest signed tree head (hash chain, Merkle
      tree, every signed head) and print a JSON report {"ok", "entries", "head",
      "first_bad_seq", "tree_head", "head_faults", ...}: offline and read-only from DIR, or
      through the API. --public-key pins the gateway's published signing key.
  safegatectl audit prove --seq N --out FILE (--data-dir DIR | API) [--public-key B64]
      Write an offline-verifiable proof bundle for entry N (the entry, its inclusion proof,
      the signed tree head and the public key), checked before it is written.
  safegatectl audit check-proof BUNDLE [--public-key B64]
      Verify a proof bundle without the gateway. Exit status 1 when it does not verify.
  safegatectl audit query API --purpose P [--subject REF] [--agency ID] [--action A]
                          [--from TIME] [--to TIME] [--limit N] [--after CURSOR]
  safegatectl audit tail API --purpose P [--lines N] [--follow] [--interval SECONDS] [filters]
      Read the audit log (GET /v1/audit): one page as JSON, or the last N entries as JSON
      lines and, with --follow, new entries as they are written. Every read states its
      purpose and is itself an audit entry.
      API is --url https://HOST:PORT --ca CA.pem --cert AUDIT.pem --key AUDIT.key: an audit
      agency's certificate (mutual TLS 1.3).
  safegatectl audit export --subject REF API [--format json|html] [--out FILE]
                           [--purpose P]
      The subject access report of one subject reference (docs/subject-access.md): every
      disclosure about it (what, to whom, when, purpose, lawful basis, consent), refusals,
      consents, who looked, and the signed tree head to verify it by. JSON (default) or a
      printable HTML page; to FILE or standard output. Purpose defaults to subject_access;
      the report is itself an audit entry.
  safegatectl subjects review --data-dir DIR
      List the subject links held for review (docs/subjects.md): records that resemble a
      known child but not enough to be linked, or whose identifiers disagree. JSON
      {"reviews": [{"review_id", "record_id", "subject", "reason", "candidates": [{"refs",
      "score", "evidence"}]}], "count"}: references and evidence, never names. Read-only;
      safe while the gateway runs.
  safegatectl keys show (--data-dir DIR [--area AREA] | --config FILE)
      Print the gateway's public transfer keys (of DIR/transfer_signing.key and
      DIR/transfer_sealing.key) as TOML lines for the [[peer]] block of this gateway in
      another gateway's registry; with --area (or the area of --config), the area line too.
      Never creates keys: safegated makes them on its first start.
  safegatectl keys init (--data-dir DIR [--area AREA] | --config FILE)
      Create the transfer keys in DIR if they are missing (0600, as safegated would), then
      print them as `keys show` does. Run it as the gateway's user.
  safegatectl backup --data-dir DIR --to FILE
      Copy the store of a gateway's data directory to FILE with SQLite's online backup API,
      while the gateway runs: one consistent snapshot in one self-contained file (0600),
      checked (integrity, audit log verified) before it replaces FILE. Prints a JSON report.
      The keys are NOT in the backup: back up DIR/store.key, DIR/signing.key,
      DIR/transfer_signing.key and DIR/transfer_sealing.key separately (the backup's record
      bodies cannot be read without store.key; peers know the gateway by its transfer keys).
      Run it as the data directory's owner
      (e.g. `runuser -u safegate -- safegatectl backup ...`).
  safegatectl restore --from FILE --data-dir DIR
      Put a backup back: refuses while a gateway runs on DIR (it holds DIR/safegate.lock);
      verifies the backup's integrity and audit log first (nothing changes if it fails);
      moves the store it replaces into DIR/pre-restore-<UTC time>/; prints a JSON report
      naming any key file the gateway will need that is missing from DIR.
  safegatectl status --admin-url URL [--json] [--timeout SECONDS]
      A gateway's health, version, uptime, certificate expiry (days left, flagged within the
      warning window), mailbox backlogs, audit log and store, from its admin listener's
      /healthz and /metrics (URL: http://HOST:PORT, e.g. http://127.0.0.1:9443). --json
      prints the same as one JSON object. Exit status 1 when it is unreachable or unhealthy.
  safegatectl policy check FILE
  safegatectl policy explain [--policy FILE | --config FILE] --case CASE.json [--json]
  safegatectl policy test DIR [--policy FILE] [--verbose]
      Check a sharing policy file (every problem with file:line), decide one case and show
      every rule that fired, or run table-driven cases (policy/tests/*.toml); see
      docs/policy.md. Without --policy, explain uses the policy of the gateway --config names.
  safegatectl retention run (--config FILE | --data-dir DIR [--policy FILE])
      Delete record bodies and redacted copies past their retention period (R9), each
      deletion audited; prints a JSON report. The gateway must be stopped (a running gateway
      sweeps hourly itself). The policy gives periods to bodies stored before one was set.
  safegatectl --help

Exit status: 0 success (audit chain intact), 1 failure (audit chain broken, backup or
restore failed or refused, no transfer keys to show), 2 bad usage or unreadable input.
--timeout bounds each wait (default 30 seconds).
)";

struct Args {
  std::vector<std::string> words;              // positional: command, subcommand
  std::map<std::string, std::string> options;  // --name value
  bool help = false;
};

// Options that take a value; anything else starting with "--" is an error.
const std::vector<std::string> kValueOptions = {
    "--dir",  "--areas", "--timeout", "--data-dir", "--to",      "--from",       "--admin-url",
    "--config", "--policy", "--area",
    // audit
    "--seq", "--out", "--url", "--ca", "--cert", "--key", "--purpose", "--public-key",
    "--subject", "--agency", "--action", "--limit", "--after", "--lines", "--interval",
    "--format"};
// Options that take no value (recorded as "1").
const std::vector<std::string> kFlagOptions = {"--json", "--follow"};

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
      bool is_flag = false;
      for (const auto& o : kFlagOptions) is_flag = is_flag || o == name;
      if (is_flag && !inline_value) {
        if (args.options.count(name)) {
          *error = "option " + name + " given twice";
          return std::nullopt;
        }
        args.options[name] = "1";
        continue;
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
#ifdef SAFEGATE_HAVE_CORE
  return safegate::ctl::AuditCommand(
      action, args.options, std::vector<std::string>(args.words.begin() + 2, args.words.end()),
      std::cout, std::cerr);
#else
  std::cerr << "safegatectl audit " << action
            << ": this safegatectl was built without the store (safegate_core)\n";
  return kExitUsage;
#endif
}

int GatewayStatusCommand(const Args& args) {
  if (args.words.size() > 1) return UsageError("unexpected argument " + args.words[1]);
  for (const auto& [name, value] : args.options) {
    if (name != "--admin-url" && name != "--json" && name != "--timeout") {
      return UsageError("option " + name + " does not apply to `status`");
    }
  }
  auto url = args.options.find("--admin-url");
  if (url == args.options.end() || url->second.empty()) {
    return UsageError(
        "status: --admin-url URL is required (the gateway's [admin] listener, "
        "e.g. http://127.0.0.1:9443)");
  }
  std::chrono::milliseconds timeout{10'000};
  if (auto t = args.options.find("--timeout"); t != args.options.end()) {
    char* end = nullptr;
    long seconds = std::strtol(t->second.c_str(), &end, 10);
    if (end == t->second.c_str() || *end != '\0' || seconds <= 0 || seconds > 3600) {
      return UsageError("--timeout: \"" + t->second + "\" is not a number of seconds in 1..3600");
    }
    timeout = std::chrono::seconds(seconds);
  }
  auto status = safegate::ctl::GetGatewayStatus(url->second, timeout);
  if (!status.ok()) {
    std::cerr << "safegatectl status: " << status.status().ToString() << "\n";
    return status.status().code() == safegate::ErrorCode::kInvalidInput ? kExitUsage : kExitFailed;
  }
  if (args.options.count("--json")) {
    std::cout << status->ToJson().dump(2) << "\n";
  } else {
    std::cout << safegate::ctl::RenderStatus(*status);
  }
  return status->healthy ? kExitOk : kExitFailed;
}

#ifdef SAFEGATE_HAVE_CORE
// backup / restore. Their words go to stderr, the JSON report to stdout.
int BackupOrRestore(const Args& args) {
  const std::string& command = args.words[0];
  std::string error;
  if (args.words.size() > 1) return UsageError("unexpected argument " + args.words[1]);
  const bool backup = command == "backup";
  const std::vector<std::string> allowed = {"--data-dir", backup ? "--to" : "--from"};
  for (const auto& [name, value] : args.options) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == name;
    if (!ok) return UsageError("option " + name + " does not apply to `" + command + "`");
  }
  for (const auto& name : allowed) {
    auto it = args.options.find(name);
    if (it == args.options.end() || it->second.empty()) {
      return UsageError(command + ": " + name + (name == "--data-dir" ? " DIR" : " FILE") +
                        " is required");
    }
  }
  const std::string& dir = args.options.at("--data-dir");
  if (backup) {
    auto report = safegate::ctl::BackupStore(dir, args.options.at("--to"));
    if (!report.ok()) {
      std::cerr << "safegatectl backup: " << report.status().ToString() << "\n";
      return report.status().code() == safegate::ErrorCode::kInvalidInput ? kExitUsage
                                                                          : kExitFailed;
    }
    std::cout << report->ToJson().dump(2) << "\n";
    if (!report->audit.ok) {
      std::cerr << "safegatectl backup: written to " << report->file
                << ", but its audit log does not verify (see \"audit\" above): the store "
                   "itself is damaged\n";
      return kExitFailed;
    }
    std::cerr << "safegatectl backup: " << report->file << " written (" << report->bytes
              << " bytes, audit log of " << report->audit.entries
              << " entries verified). The keys are not in it: back up " << report->key_files
              << " separately.\n";
    return kExitOk;
  }
  auto report = safegate::ctl::RestoreStore(args.options.at("--from"), dir);
  if (!report.ok()) {
    std::cerr << "safegatectl restore: " << report.status().ToString() << "\n";
    return kExitFailed;
  }
  std::cout << report->ToJson().dump(2) << "\n";
  std::cerr << "safegatectl restore: " << report->restored_from << " restored into "
            << report->data_dir << " (audit log of " << report->audit.entries
            << " entries verified)";
  if (!report->previous_store.empty()) {
    std::cerr << "; the store it replaced is in " << report->previous_store;
  }
  std::cerr << ".\n";
  for (const auto& key : report->missing_keys) {
    std::cerr << "safegatectl restore: " << key
              << " is missing: put the key file that belongs with this store back (mode 0600) "
                 "before starting the gateway\n";
  }
  return kExitOk;
}
#endif

// `safegatectl policy ...`: everything after "policy" goes to policy::PolicyCommand, except
// `--config FILE`, whose policy file is explain's default.
int PolicyTool(int argc, char** argv) {
  std::vector<std::string> args;
  std::optional<std::string> default_policy;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" || a.rfind("--config=", 0) == 0) {
      std::string file = a == "--config" ? (i + 1 < argc ? argv[++i] : "") : a.substr(9);
      if (file.empty()) return UsageError("option --config needs a value");
      try {
        default_policy = safegate::config::LoadConfig(file).policy;
      } catch (const std::exception& e) {
        std::cerr << "safegatectl policy: " << e.what() << "\n";
        return kExitUsage;
      }
      if (default_policy->empty()) {
        return UsageError("policy: " + file + " names no policy file (key `policy`)");
      }
      continue;
    }
    args.push_back(a);
  }
  return safegate::policy::PolicyCommand(args, std::cout, std::cerr, default_policy);
}

#ifdef SAFEGATE_HAVE_CORE
// `safegatectl subjects review --data-dir DIR`: the held links, offline (read-only).
int SubjectsReview(const Args& args) {
  if (args.words.size() < 2 || args.words[1] != "review") {
    return UsageError("subjects: expected review");
  }
  if (args.words.size() > 2) return UsageError("unexpected argument " + args.words[2]);
  std::string error;
  if (!OnlyOptions(args, {"--data-dir"}, &error)) return UsageError(error);
  auto dir = args.options.find("--data-dir");
  if (dir == args.options.end() || dir->second.empty()) {
    return UsageError("subjects review: --data-dir DIR is required");
  }
  auto reviews = safegate::core::ListLinkReviews(dir->second);
  if (!reviews.ok()) {
    std::cerr << "safegatectl subjects review: " << dir->second << ": "
              << reviews.status().ToString() << "\n";
    return kExitUsage;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : *reviews) list.push_back(r.ToJson());
  std::cout << nlohmann::json({{"reviews", list}, {"count", reviews->size()}}).dump(2) << "\n";
  return kExitOk;
}

int Retention(const Args& args) {
  if (args.words.size() < 2 || args.words[1] != "run") {
    return UsageError("retention: expected run");
  }
  if (args.words.size() > 2) return UsageError("unexpected argument " + args.words[2]);
  std::string error;
  if (!OnlyOptions(args, {"--config", "--data-dir", "--policy"}, &error)) return UsageError(error);
  safegate::ctl::RetentionOptions options;
  if (auto it = args.options.find("--config"); it != args.options.end()) options.config = it->second;
  if (auto it = args.options.find("--data-dir"); it != args.options.end()) {
    options.data_dir = it->second;
  }
  if (auto it = args.options.find("--policy"); it != args.options.end()) options.policy = it->second;
  if (options.config.empty() == options.data_dir.empty()) {
    return UsageError("retention run: give --config FILE or --data-dir DIR (not both)");
  }
  auto report = safegate::ctl::RunRetention(options);
  if (!report.ok()) {
    std::cerr << "safegatectl retention run: " << report.status().ToString() << "\n";
    for (const auto& p : report.status().problems()) {
      std::cerr << "  " << p.where << ": " << p.what << "\n";
    }
    return report.status().code() == safegate::ErrorCode::kInvalidInput ? kExitUsage
                                                                          : kExitFailed;
  }
  std::cout << report->ToJson().dump(2) << "\n";
  return kExitOk;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  // The policy commands have options of their own (policy/policy_tool.h).
  if (argc >= 2 && std::string(argv[1]) == "policy") return PolicyTool(argc, argv);
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
  if (command == "status") return GatewayStatusCommand(*args);
  if (command == "retention") {
#ifdef SAFEGATE_HAVE_CORE
    return Retention(*args);
#else
    std::cerr << "safegatectl retention: this safegatectl was built without the store "
                 "(safegate_core)\n";
    return kExitUsage;
#endif
  }
  if (command == "backup" || command == "restore") {
#ifdef SAFEGATE_HAVE_CORE
    return BackupOrRestore(*args);
#else
    std::cerr << "safegatectl " << command
              << ": this safegatectl was built without the store (safegate_core)\n";
    return kExitUsage;
#endif
  }
  if (command == "subjects") {
#ifdef SAFEGATE_HAVE_CORE
    return SubjectsReview(*args);
#else
    std::cerr << "safegatectl subjects: this safegatectl was built without the store "
                 "(safegate_core)\n";
    return kExitUsage;
#endif
  }
  if (command == "keys") {
    if (args->words.size() < 2) return UsageError("keys: expected show or init");
    if (args->words.size() > 2) return UsageError("unexpected argument " + args->words[2]);
    return safegate::ctl::KeysCommand(args->words[1], args->options, std::cout, std::cerr);
  }
  if (command != "sandbox" && command != "audit") {
    return UsageError("unknown command \"" + command +
                      "\" (expected sandbox, audit, status, keys, backup, restore, policy, "
                      "retention or subjects)");
  }
  if (args->words.size() < 2) {
    return UsageError(command == "sandbox" ? "sandbox: expected up or down"
                                           : "audit: expected verify, prove, check-proof, "
                                             "query, tail or export");
  }
  return command == "sandbox" ? Sandbox(*args, argv[0]) : Audit(*args);
}
