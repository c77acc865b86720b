#include "daemon/ctl/sandbox.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "daemon/ctl/process.h"
#include "daemon/transfer/gateway_keys.h"

#ifndef SAFEGATE_SOURCE_CERTS_SCRIPT
#define SAFEGATE_SOURCE_CERTS_SCRIPT ""
#endif
#ifndef SAFEGATE_BUILD_DAEMON_PATH
#define SAFEGATE_BUILD_DAEMON_PATH ""
#endif
#ifndef SAFEGATE_SOURCE_POLICY
#define SAFEGATE_SOURCE_POLICY ""
#endif

namespace safegate::ctl {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPollInterval{25};

struct AgencySpec {
  const char* id;
  const char* name;
  const char* role;
  // Further certificates made by make-dev-certs that are registered under this agency, so
  // that a refusal of them is for the reason they were made for (revoked, expired) and not
  // because they are unknown.
  std::vector<const char*> extra_certs;
};

struct AreaSpec {
  const char* name;
  std::vector<AgencySpec> agencies;
};

// DOMAIN.md, "Agencies in the example configs".
const std::vector<AreaSpec>& ExampleAreas() {
  static const std::vector<AreaSpec> kAreas = {
      {"bradford",
       {
           {"bradford-csc", "Bradford Children's Social Care", "csc", {}},
           {"wyp", "West Yorkshire Police", "police", {"wyp-revoked", "wyp-expired"}},
           {"bthft", "Bradford Teaching Hospitals NHS Foundation Trust", "health", {}},
           {"bradford-audit", "Bradford audit officers and Data Protection Officer", "audit", {}},
           {"bradford-scrutiny",
            "Bradford Children's Services Overview and Scrutiny Committee",
            "committee",
            {}},
       }},
      {"cambridgeshire",
       {
           {"cambs-csc", "Cambridgeshire Children's Social Care", "csc", {}},
           {"cambs-police", "Cambridgeshire Constabulary", "police", {}},
           {"cuh", "Cambridge University Hospitals NHS Foundation Trust", "health", {}},
           {"cambs-audit",
            "Cambridgeshire audit officers and Data Protection Officer",
            "audit",
            {}},
       }},
  };
  return kAreas;
}

const AreaSpec* FindArea(const std::string& name) {
  for (const auto& a : ExampleAreas()) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

// A TOML basic string.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
  return out + "\"";
}

// Writes through a temporary file and rename, so a reader never sees half a file.
Status WriteFileAtomically(const fs::path& path, const std::string& content) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Internal("cannot write " + tmp.string() + ": " + std::strerror(errno));
    out << content;
    out.flush();
    if (!out) return Status::Internal("cannot write " + tmp.string() + ": " + std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    return Status::Internal("cannot rename " + tmp.string() + " to " + path.string() + ": " +
                            ec.message());
  return Status::Ok();
}

bool IsExecutable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0;
}

// Finds a program: the environment variable if set (which must then be right), else the
// candidates in order.
Result<std::string> FindProgram(const char* what, const char* env_var,
                                const std::vector<fs::path>& candidates) {
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') {
    if (IsExecutable(env)) return std::string(env);
    return Status::Invalid(std::string(env_var) + "=" + env + " is not an executable file");
  }
  std::string looked;
  for (const auto& c : candidates) {
    if (c.empty()) continue;
    if (IsExecutable(c)) return c.lexically_normal().string();
    looked += "\n  " + c.lexically_normal().string();
  }
  return Status::Unavailable(std::string("cannot find ") + what + "; set " + env_var +
                             " or install it. Looked in:" + looked);
}

// Finds a data file as FindProgram finds a program: the environment variable if set (which
// must then name a readable file), else the first readable candidate.
Result<std::string> FindReadableFile(const char* what, const char* env_var,
                                     const std::vector<fs::path>& candidates) {
  auto readable = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) && access(p.c_str(), R_OK) == 0;
  };
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') {
    if (readable(env)) return std::string(env);
    return Status::Invalid(std::string(env_var) + "=" + env + " is not a readable file");
  }
  std::string looked;
  for (const auto& c : candidates) {
    if (c.empty()) continue;
    if (readable(c)) return c.lexically_normal().string();
    looked += "\n  " + c.lexically_normal().string();
  }
  return Status::Unavailable(std::string("cannot find ") + what + "; set " + env_var +
                             " or install it. Looked in:" + looked);
}

struct AreaRun {
  const AreaSpec* spec = nullptr;
  fs::path policy;    // the sharing policy the config names (the shipped default)
  fs::path dir;       // DIR/<area>
  fs::path data_dir;  // DIR/<area>/data
  fs::path config;    // DIR/<area>/safegated.toml
  fs::path registry;  // DIR/<area>/registry.toml
  fs::path log;       // DIR/<area>/safegated.log
  pid_t pid = 0;
  uint16_t listen_port = 0;
  uint16_t admin_port = 0;
  std::set<std::string> peers_written;  // areas whose endpoint the registry on disk names
  // The public halves of the gateway's transfer keys (base64), made in data_dir before it
  // starts so that the other areas' registries name them from the first write.
  std::string signing_public_key;
  std::string sealing_public_key;

  std::string Url() const { return "https://127.0.0.1:" + std::to_string(listen_port); }
  std::string AdminUrl() const { return "http://127.0.0.1:" + std::to_string(admin_port); }
};

std::string RegistryText(const AreaRun& area, const fs::path& certs,
                         const std::vector<const AreaRun*>& peers) {
  std::ostringstream out;
  out << "# Agencies of the " << area.spec->name
      << " sandbox gateway, written by `safegatectl sandbox up`.\n"
      << "# Each agency is identified by the certificates listed (their SHA-256 fingerprints).\n";
  for (const auto& a : area.spec->agencies) {
    out << "\n[[agency]]\n"
        << "id = " << Quote(a.id) << "\n"
        << "name = " << Quote(a.name) << "\n"
        << "role = " << Quote(a.role) << "\n"
        << "area = " << Quote(area.spec->name) << "\n"
        << "certificates = [" << Quote((certs / (std::string(a.id) + ".pem")).string());
    for (const char* extra : a.extra_certs) {
      out << ", " << Quote((certs / (std::string(extra) + ".pem")).string());
    }
    out << "]\n";
  }
  // A peer gateway is identified by its own certificate (the one its config serves and
  // presents as a client), and trusted for transfers by its public keys.
  for (const AreaRun* p : peers) {
    out << "\n[[peer]]\n"
        << "area = " << Quote(p->spec->name) << "\n"
        << "endpoint = " << Quote(p->Url()) << "\n"
        << "certificates = ["
        << Quote((certs / ("gateway-" + std::string(p->spec->name) + ".pem")).string()) << "]\n"
        << "signing_public_key = " << Quote(p->signing_public_key) << "\n"
        << "sealing_public_key = " << Quote(p->sealing_public_key) << "\n";
  }
  return out.str();
}

std::string ConfigText(const AreaRun& area, const fs::path& certs) {
  std::string gateway = "gateway-" + std::string(area.spec->name);
  std::ostringstream out;
  out << "# safegated configuration of the " << area.spec->name
      << " sandbox gateway, written by `safegatectl sandbox up`.\n"
      << "# The ports are the ones the gateway was given on its first start, so that\n"
      << "# `safegated --config " << area.config.string()
      << "` restarts it on the same addresses.\n"
      << "area = " << Quote(area.spec->name) << "\n"
      << "data_dir = " << Quote(area.data_dir.string()) << "\n"
      << "registry = " << Quote(area.registry.string()) << "\n"
      << "policy = " << Quote(area.policy.string()) << "\n"
      << "\n[listen]\naddress = \"127.0.0.1\"\nport = " << area.listen_port << "\n"
      << "\n[admin]\naddress = \"127.0.0.1\"\nport = " << area.admin_port << "\n"
      << "\n[tls]\n"
      << "cert = " << Quote((certs / (gateway + ".pem")).string()) << "\n"
      << "key = " << Quote((certs / (gateway + ".key")).string()) << "\n"
      << "ca = " << Quote((certs / "ca.pem").string()) << "\n"
      << "crl = " << Quote((certs / "crl.pem").string()) << "\n";
  return out.str();
}

// Peers of `area` whose URL is known (started), in start order.
std::vector<const AreaRun*> KnownPeers(const AreaRun& area, const std::vector<AreaRun>& all) {
  std::vector<const AreaRun*> peers;
  for (const auto& other : all) {
    if (&other != &area && other.listen_port != 0) peers.push_back(&other);
  }
  return peers;
}

Status WriteRegistry(AreaRun& area, const fs::path& certs, const std::vector<AreaRun>& all) {
  std::vector<const AreaRun*> peers = KnownPeers(area, all);
  Status s = WriteFileAtomically(area.registry, RegistryText(area, certs, peers));
  if (!s.ok()) return s;
  area.peers_written.clear();
  for (const AreaRun* p : peers) area.peers_written.insert(p->spec->name);
  return Status::Ok();
}

Status DaemonFailed(const AreaRun& area, const std::string& what) {
  std::string tail = TailOfFile(area.log.string(), 15);
  std::string msg =
      "safegated for " + std::string(area.spec->name) + " " + what + "; log " + area.log.string();
  if (!tail.empty()) msg += ":\n" + tail;
  return Status::Unavailable(msg);
}

// Reads data_dir/ports.json once the daemon has written it (atomically) after binding.
Status WaitForPorts(AreaRun& area, std::chrono::milliseconds bound) {
  fs::path ports_file = area.data_dir / "ports.json";
  auto deadline = SteadyClock::now() + bound;
  for (;;) {
    std::string how;
    if (!ProcessAlive(area.pid, &how)) return DaemonFailed(area, how + " while starting");
    std::ifstream in(ports_file);
    if (in) {
      nlohmann::json ports = nlohmann::json::parse(in, nullptr, false);
      if (!ports.is_discarded() && ports.is_object() && ports.contains("listen") &&
          ports.contains("admin") && ports["listen"].is_number_unsigned() &&
          ports["admin"].is_number_unsigned()) {
        auto listen = ports["listen"].get<uint64_t>();
        auto admin = ports["admin"].get<uint64_t>();
        if (listen == 0 || listen > 65535 || admin == 0 || admin > 65535) {
          return DaemonFailed(area, "wrote ports out of range in " + ports_file.string());
        }
        area.listen_port = static_cast<uint16_t>(listen);
        area.admin_port = static_cast<uint16_t>(admin);
        return Status::Ok();
      }
    }
    if (SteadyClock::now() >= deadline) {
      return DaemonFailed(area, "did not write " + ports_file.string() + " within " +
                                    std::to_string(bound.count()) + " ms");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

Status WaitForHealth(const AreaRun& area, std::chrono::milliseconds bound) {
  auto deadline = SteadyClock::now() + bound;
  std::string last = "no answer";
  for (;;) {
    std::string how;
    if (!ProcessAlive(area.pid, &how)) return DaemonFailed(area, how);
    Result<int> code = LoopbackHttpGet(area.admin_port, "/healthz", std::chrono::seconds(2));
    if (code.ok() && *code == 200) return Status::Ok();
    last = code.ok() ? "status " + std::to_string(*code) : code.status().detail();
    if (SteadyClock::now() >= deadline) {
      return DaemonFailed(area, "did not answer " + area.AdminUrl() + "/healthz with 200 within " +
                                    std::to_string(bound.count()) + " ms (last: " + last + ")");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

// SIGTERM, then wait; SIGKILL only when the bound passes (and say so).
Status StopPid(pid_t pid, const std::string& area, std::chrono::milliseconds bound) {
  if (kill(pid, SIGTERM) != 0 && errno != ESRCH) {
    return Status::Internal("cannot signal " + area + " gateway pid " + std::to_string(pid) + ": " +
                            std::strerror(errno));
  }
  if (WaitForExit(pid, bound)) return Status::Ok();
  kill(pid, SIGKILL);
  WaitForExit(pid, std::chrono::seconds(5));
  return Status::Unavailable(area + " gateway pid " + std::to_string(pid) +
                             " did not exit within " + std::to_string(bound.count()) +
                             " ms of SIGTERM; it was killed with SIGKILL");
}

void StopStarted(const std::vector<AreaRun>& areas, std::chrono::milliseconds bound) {
  for (const auto& a : areas) {
    if (a.pid > 0 && ProcessAlive(a.pid)) {
      Status ignored = StopPid(a.pid, a.spec->name, bound);
      (void)ignored;
    }
  }
}

Result<std::vector<std::string>> ChosenAreas(const std::vector<std::string>& requested) {
  if (requested.empty()) return SandboxAreaNames();
  std::vector<std::string> chosen;
  for (const auto& name : requested) {
    if (FindArea(name) == nullptr) {
      std::string known;
      for (const auto& a : SandboxAreaNames()) known += (known.empty() ? "" : ", ") + a;
      return Status::Invalid("--areas: unknown area \"" + name + "\" (known: " + known + ")");
    }
    if (std::find(chosen.begin(), chosen.end(), name) != chosen.end()) {
      return Status::Invalid("--areas: area \"" + name + "\" given twice");
    }
    chosen.push_back(name);
  }
  // Start in the examples' order whatever order was given.
  std::vector<std::string> ordered;
  for (const auto& a : SandboxAreaNames()) {
    if (std::find(chosen.begin(), chosen.end(), a) != chosen.end()) ordered.push_back(a);
  }
  return ordered;
}

// Gateways already running for this sandbox directory, by area.
std::map<std::string, std::vector<pid_t>> RunningGateways(const fs::path& dir) {
  std::map<std::string, std::vector<pid_t>> running;
  std::set<pid_t> seen;
  auto add = [&](const std::string& area, pid_t pid) {
    if (seen.insert(pid).second) running[area].push_back(pid);
  };
  std::ifstream in(dir / "sandbox.json");
  nlohmann::json sandbox = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json(nullptr);
  if (sandbox.is_object() && sandbox.contains("areas") && sandbox["areas"].is_object()) {
    for (const auto& [area, info] : sandbox["areas"].items()) {
      if (!info.is_object()) continue;
      std::string config = info.contains("config") && info["config"].is_string()
                               ? info["config"].get<std::string>()
                               : std::string();
      pid_t pid = info.contains("pid") && info["pid"].is_number_integer()
                      ? static_cast<pid_t>(info["pid"].get<int64_t>())
                      : 0;
      if (pid > 0 && !config.empty() && ProcessAlive(pid)) {
        std::vector<std::string> args = ProcessArgs(pid);
        if (std::find(args.begin(), args.end(), config) != args.end()) add(area, pid);
      }
      if (!config.empty()) {
        for (pid_t p : FindDaemonsByConfig(config)) add(area, p);
      }
    }
  }
  for (const auto& a : SandboxAreaNames()) {
    for (pid_t p : FindDaemonsByConfig((dir / a / "safegated.toml").string())) add(a, p);
  }
  return running;
}

Result<fs::path> SandboxDir(const std::string& dir, bool create) {
  if (dir.empty()) return Status::Invalid("--dir DIR is required");
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  if (ec) return Status::Invalid("--dir " + dir + ": " + ec.message());
  if (create) {
    fs::create_directories(p, ec);
    if (ec) return Status::Invalid("--dir " + dir + ": cannot create: " + ec.message());
  }
  fs::path canonical = fs::weakly_canonical(p, ec);
  return ec ? p.lexically_normal() : canonical;
}

fs::path ProgramDir(const std::string& program_path) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec || self.empty()) self = fs::absolute(program_path, ec);
  return self.parent_path();
}

}  // namespace

std::vector<std::string> SandboxAreaNames() {
  std::vector<std::string> names;
  for (const auto& a : ExampleAreas()) names.emplace_back(a.name);
  return names;
}

Status SandboxUp(const SandboxOptions& options) {
  Result<std::vector<std::string>> area_names = ChosenAreas(options.areas);
  if (!area_names.ok()) return area_names.status();
  Result<fs::path> dir_or = SandboxDir(options.dir, /*create=*/true);
  if (!dir_or.ok()) return dir_or.status();
  const fs::path dir = *dir_or;

  auto running = RunningGateways(dir);
  if (!running.empty()) {
    std::string which;
    for (const auto& [area, pids] : running) {
      for (pid_t p : pids) which += " " + area + " (pid " + std::to_string(p) + ")";
    }
    return Status::Conflict("a sandbox is already running in " + dir.string() + ":" + which +
                            "; stop it first with `safegatectl sandbox down --dir " + dir.string() +
                            "`");
  }
  std::error_code ec;
  fs::remove(dir / "sandbox.json", ec);

  fs::path program_dir = ProgramDir(options.program_path);
  Result<std::string> certs_script =
      FindProgram("make-dev-certs", "SAFEGATE_CERTS_SCRIPT",
                  {program_dir / ".." / "share" / "safegate" / "make-dev-certs",
                   fs::path(SAFEGATE_SOURCE_CERTS_SCRIPT)});
  if (!certs_script.ok()) return certs_script.status();
  Result<std::string> daemon =
      FindProgram("safegated", "SAFEGATE_DAEMON",
                  {program_dir / "safegated", program_dir / ".." / "sbin" / "safegated",
                   fs::path(SAFEGATE_BUILD_DAEMON_PATH)});
  if (!daemon.ok()) return daemon.status();
  // The shipped sharing policy (policy/default.toml), found like make-dev-certs.
  Result<std::string> policy =
      FindReadableFile("the default policy (policy/default.toml)", "SAFEGATE_POLICY",
                       {program_dir / ".." / "share" / "safegate" / "policy" / "default.toml",
                        fs::path(SAFEGATE_SOURCE_POLICY)});
  if (!policy.ok()) return policy.status();

  // Fresh certificates every time: a sandbox never reuses another one's CA.
  const fs::path certs = dir / "certs";
  fs::remove_all(certs, ec);
  if (ec) return Status::Internal("cannot clear " + certs.string() + ": " + ec.message());
  fs::create_directories(certs, ec);
  if (ec) return Status::Internal("cannot create " + certs.string() + ": " + ec.message());
  const fs::path certs_log = dir / "make-dev-certs.log";
  fs::remove(certs_log, ec);
  Result<int> made = RunToCompletion({{*certs_script, certs.string()}, certs_log.string(), false});
  if (!made.ok()) return made.status();
  if (*made != 0) {
    return Status::Internal(*certs_script + " " + certs.string() + " failed with status " +
                            std::to_string(*made) + "; its output (" + certs_log.string() + "):\n" +
                            TailOfFile(certs_log.string(), 15));
  }

  std::vector<AreaRun> areas;
  for (const auto& name : *area_names) {
    AreaRun a;
    a.spec = FindArea(name);
    a.policy = *policy;
    a.dir = dir / name;
    a.data_dir = a.dir / "data";
    a.config = a.dir / "safegated.toml";
    a.registry = a.dir / "registry.toml";
    a.log = a.dir / "safegated.log";
    areas.push_back(std::move(a));
  }

  // Everything the configs will name must exist before a daemon is asked to read it.
  std::vector<std::string> needed = {"ca.pem", "crl.pem"};
  for (const auto& a : areas) {
    needed.push_back("gateway-" + std::string(a.spec->name) + ".pem");
    needed.push_back("gateway-" + std::string(a.spec->name) + ".key");
    for (const auto& ag : a.spec->agencies) {
      needed.push_back(std::string(ag.id) + ".pem");
      needed.push_back(std::string(ag.id) + ".key");
      for (const char* extra : ag.extra_certs) needed.push_back(std::string(extra) + ".pem");
    }
  }
  for (const auto& f : needed) {
    if (!fs::exists(certs / f)) {
      return Status::Internal(*certs_script + " did not make " + (certs / f).string());
    }
  }

  // Every gateway's transfer keys before any registry is written: each registry names the
  // other gateways' public keys, so a two-area sandbox can exchange sealed bundles at once.
  // The keys are made as safegated makes them (and kept with the data directory, so a
  // sandbox brought up again in the same DIR keeps its keys).
  for (auto& a : areas) {
    fs::create_directories(a.data_dir, ec);
    if (ec) return Status::Internal("cannot create " + a.data_dir.string() + ": " + ec.message());
    auto keys = transfer::GatewayKeys::LoadOrCreate(a.data_dir.string());
    if (!keys.ok()) {
      return Status::Internal("transfer keys of the " + std::string(a.spec->name) +
                              " gateway: " + keys.status().detail());
    }
    a.signing_public_key = (*keys)->SigningPublicKeyBase64();
    a.sealing_public_key = (*keys)->SealingPublicKeyBase64();
  }

  for (auto& a : areas) {
    // A ports.json left by an earlier run would be read as this run's.
    fs::remove(a.data_dir / "ports.json", ec);
    Status s = WriteRegistry(a, certs, areas);
    if (s.ok()) s = WriteFileAtomically(a.config, ConfigText(a, certs));
    if (!s.ok()) {
      StopStarted(areas, options.timeout);
      return s;
    }
    Result<pid_t> pid = Spawn({{*daemon, "--config", a.config.string()}, a.log.string(), true});
    if (!pid.ok()) {
      StopStarted(areas, options.timeout);
      return pid.status();
    }
    a.pid = *pid;
    s = WaitForPorts(a, options.timeout);
    // From here on the config holds the concrete ports, for restarts.
    if (s.ok()) s = WriteFileAtomically(a.config, ConfigText(a, certs));
    if (s.ok()) s = WaitForHealth(a, options.timeout);
    if (!s.ok()) {
      StopStarted(areas, options.timeout);
      return s;
    }
  }

  // Areas started before a later one do not yet name it as a peer: rewrite and reload them.
  for (auto& a : areas) {
    if (a.peers_written.size() + 1 == areas.size()) continue;
    Status s = WriteRegistry(a, certs, areas);
    if (s.ok() && kill(a.pid, SIGHUP) != 0) {
      s = Status::Internal("cannot send SIGHUP to " + std::string(a.spec->name) + " gateway pid " +
                           std::to_string(a.pid) + ": " + std::strerror(errno));
    }
    if (s.ok()) s = WaitForHealth(a, options.timeout);
    if (!s.ok()) {
      StopStarted(areas, options.timeout);
      return s;
    }
  }

  nlohmann::ordered_json sandbox;
  sandbox["ca"] = (certs / "ca.pem").string();
  sandbox["areas"] = nlohmann::ordered_json::object();
  for (const auto& a : areas) {
    nlohmann::ordered_json area;
    area["url"] = a.Url();
    area["admin_url"] = a.AdminUrl();
    area["pid"] = a.pid;
    area["data_dir"] = a.data_dir.string();
    area["config"] = a.config.string();
    nlohmann::ordered_json agencies = nlohmann::ordered_json::object();
    for (const auto& ag : a.spec->agencies) {
      agencies[ag.id] = {{"cert", (certs / (std::string(ag.id) + ".pem")).string()},
                         {"key", (certs / (std::string(ag.id) + ".key")).string()},
                         {"role", ag.role}};
    }
    area["agencies"] = std::move(agencies);
    // The gateway's own identity, so that a test can act as this gateway towards its peers
    // (for example to send them forged or replayed transfer messages).
    const std::string gateway = "gateway-" + std::string(a.spec->name);
    area["gateway_cert"] = (certs / (gateway + ".pem")).string();
    area["gateway_key"] = (certs / (gateway + ".key")).string();
    area["signing_public_key"] = a.signing_public_key;
    area["sealing_public_key"] = a.sealing_public_key;
    sandbox["areas"][a.spec->name] = std::move(area);
  }
  Status s = WriteFileAtomically(dir / "sandbox.json", sandbox.dump(2) + "\n");
  if (!s.ok()) {
    StopStarted(areas, options.timeout);
    return s;
  }
  for (const auto& a : areas) {
    std::cout << a.spec->name << ": " << a.Url() << " (admin " << a.AdminUrl() << ", pid " << a.pid
              << ", log " << a.log.string() << ")\n";
  }
  std::cout << "sandbox: " << (dir / "sandbox.json").string() << "\n";
  return Status::Ok();
}

Status SandboxDown(const SandboxOptions& options) {
  Result<fs::path> dir_or = SandboxDir(options.dir, /*create=*/false);
  if (!dir_or.ok()) return dir_or.status();
  const fs::path dir = *dir_or;
  auto running = RunningGateways(dir);
  // A sandbox that failed half-way has no sandbox.json but may have gateways running.
  if (running.empty() && !fs::exists(dir / "sandbox.json")) {
    return Status::NotFound("no sandbox in " + dir.string() + ": " +
                            (dir / "sandbox.json").string() + " does not exist");
  }
  Status result;
  std::set<std::string> stopped_areas;
  for (const auto& [area, pids] : running) {
    for (pid_t pid : pids) {
      Status s = StopPid(pid, area, options.timeout);
      if (s.ok()) {
        std::cout << area << ": stopped pid " << pid << "\n";
      } else if (result.ok()) {
        result = s;
      }
    }
    stopped_areas.insert(area);
  }
  for (const auto& a : SandboxAreaNames()) {
    if (!stopped_areas.count(a) && fs::exists(dir / a)) std::cout << a << ": not running\n";
  }
  return result;
}

}  // namespace safegate::ctl
