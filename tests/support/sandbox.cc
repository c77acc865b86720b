#include "tests/support/sandbox.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "daemon/ctl/process.h"
#include "tests/support/test_data.h"

// Compiled in by tests/CMakeLists.txt; the environment may point elsewhere.
#ifndef SAFEGATECTL_PATH
#define SAFEGATECTL_PATH ""
#endif
#ifndef SAFEGATED_PATH
#define SAFEGATED_PATH ""
#endif

namespace safegate::testing {

std::string LoopbackGet(uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req =
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  return out;
}
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
constexpr std::chrono::seconds kBound{30};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<std::string> MakeTempDir() {
  std::string tmpl = (fs::temp_directory_path() / "safegate-it-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return Status::Internal("mkdtemp " + tmpl + ": " + std::strerror(errno));
  }
  return tmpl;
}

uint16_t PortOf(const std::string& url) {
  auto colon = url.rfind(':');
  return colon == std::string::npos ? 0 : static_cast<uint16_t>(std::atoi(url.c_str() + colon + 1));
}

}  // namespace

std::string SafegatectlPath() {
  const char* env = std::getenv("SAFEGATECTL");
  return env != nullptr && *env != '\0' ? env : SAFEGATECTL_PATH;
}
std::string SafegatedPath() {
  const char* env = std::getenv("SAFEGATE_DAEMON");
  return env != nullptr && *env != '\0' ? env : SAFEGATED_PATH;
}

Result<int> RunProgram(const std::vector<std::string>& argv, std::string* output) {
  Result<std::string> tmp = MakeTempDir();
  if (!tmp.ok()) return tmp.status();
  std::string log = *tmp + "/output";
  Result<int> rc = ctl::RunToCompletion({argv, log, false});
  if (output) *output = ReadFile(log);
  std::error_code ec;
  fs::remove_all(*tmp, ec);
  return rc;
}

Result<std::unique_ptr<Sandbox>> Sandbox::Up(const std::vector<std::string>& areas) {
  Result<std::string> dir = MakeTempDir();
  if (!dir.ok()) return dir.status();
  std::unique_ptr<Sandbox> sb(new Sandbox());
  sb->dir_ = *dir;  // from here on the destructor cleans up, whatever fails
  std::string joined;
  for (const auto& a : areas) joined += (joined.empty() ? "" : ",") + a;
  std::string output;
  Result<int> rc = RunProgram(
      {SafegatectlPath(), "sandbox", "up", "--dir", sb->dir_, "--areas", joined}, &output);
  if (!rc.ok()) return rc.status();
  if (*rc != 0) {
    return Status::Unavailable("safegatectl sandbox up exited with " + std::to_string(*rc) + ":\n" +
                               output);
  }
  sb->json_ = nlohmann::json::parse(ReadFile(sb->dir_ + "/sandbox.json"), nullptr, false);
  if (!sb->json_.is_object() || !sb->json_.contains("areas")) {
    return Status::Internal("sandbox.json is not the documented object: " + sb->json_.dump());
  }
  for (const auto& [name, info] : sb->json_["areas"].items()) {
    Area a;
    a.name = name;
    a.url = info.value("url", "");
    a.admin_url = info.value("admin_url", "");
    a.admin_port = PortOf(a.admin_url);
    a.pid = info.value("pid", 0);
    a.data_dir = info.value("data_dir", "");
    a.config = info.value("config", "");
    a.log = sb->dir_ + "/" + name + "/safegated.log";
    sb->areas_.push_back(a);
  }
  return sb;
}

Sandbox::~Sandbox() {
  if (dir_.empty()) return;
  std::string output;
  Result<int> rc = RunProgram({SafegatectlPath(), "sandbox", "down", "--dir", dir_}, &output);
  if (!rc.ok() || (*rc != 0 && output.find("no sandbox") == std::string::npos)) {
    ADD_FAILURE() << "safegatectl sandbox down failed: "
                  << (rc.ok() ? std::to_string(*rc) : rc.status().ToString()) << "\n"
                  << output;
  }
  // Reap gateways this process restarted itself.
  for (const auto& a : areas_) ctl::ProcessAlive(a.pid);
  if (std::getenv("SAFEGATE_KEEP_SANDBOX") != nullptr) {
    std::cerr << "sandbox kept in " << dir_ << "\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

const Sandbox::Area& Sandbox::area(const std::string& name) const {
  for (const auto& a : areas_) {
    if (a.name == name) return a;
  }
  static const Area kNone;
  ADD_FAILURE() << "no area " << name << " in the sandbox";
  return kNone;
}

Sandbox::Area& Sandbox::MutableArea(const std::string& name) {
  return const_cast<Area&>(area(name));
}

HttpsClient Sandbox::Client(const std::string& area_name, const std::string& agency) const {
  const nlohmann::json& agencies = json_["areas"][area_name]["agencies"];
  TlsIdentity id;
  id.ca = json_.value("ca", "");
  if (agencies.contains(agency)) {
    id.cert = agencies[agency].value("cert", "");
    id.key = agencies[agency].value("key", "");
  } else {
    ADD_FAILURE() << "sandbox.json has no agency " << agency << " in " << area_name;
  }
  return HttpsClient(area(area_name).url, id);
}

HttpsClient Sandbox::ClientWithCertificate(const std::string& area_name,
                                           const std::string& name) const {
  TlsIdentity id;
  id.ca = json_.value("ca", "");
  if (!name.empty()) {
    id.cert = CertsDir() + "/" + name + ".pem";
    id.key = CertsDir() + "/" + name + ".key";
  }
  return HttpsClient(area(area_name).url, id);
}

Status Sandbox::Stop(const std::string& area_name, int signal) {
  const Area& a = area(area_name);
  if (kill(a.pid, signal) != 0) {
    return Status::Internal("kill " + std::to_string(a.pid) + ": " + std::strerror(errno));
  }
  if (!ctl::WaitForExit(a.pid, kBound)) {
    return Status::Unavailable(area_name + " gateway pid " + std::to_string(a.pid) +
                               " still running " + std::to_string(kBound.count()) +
                               " s after signal " + std::to_string(signal));
  }
  return Status::Ok();
}

Status Sandbox::Restart(const std::string& area_name) {
  Area& a = MutableArea(area_name);
  std::string ports_file = a.data_dir + "/ports.json";
  std::error_code ec;
  fs::remove(ports_file, ec);
  Result<pid_t> pid = ctl::Spawn({{SafegatedPath(), "--config", a.config}, a.log, false});
  if (!pid.ok()) return pid.status();
  a.pid = *pid;
  auto deadline = SteadyClock::now() + kBound;
  nlohmann::json ports;
  for (;;) {
    std::string how;
    if (!ctl::ProcessAlive(a.pid, &how)) {
      return Status::Unavailable("restarted " + area_name + " gateway " + how + ":\n" +
                                 ctl::TailOfFile(a.log, 20));
    }
    ports = nlohmann::json::parse(ReadFile(ports_file), nullptr, false);
    if (ports.is_object() && ports.contains("admin")) break;
    if (SteadyClock::now() >= deadline) {
      return Status::Unavailable("restarted " + area_name + " gateway wrote no " + ports_file);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  uint16_t listen = ports.value("listen", 0), admin = ports.value("admin", 0);
  if (listen != PortOf(a.url) || admin != a.admin_port) {
    return Status::Internal("restarted " + area_name + " gateway listens on " +
                            std::to_string(listen) + "/" + std::to_string(admin) +
                            ", not on the sandbox's " + a.url + " / " + a.admin_url);
  }
  for (;;) {
    Result<int> code = ctl::LoopbackHttpGet(a.admin_port, "/healthz", std::chrono::seconds(2));
    if (code.ok() && *code == 200) return Status::Ok();
    std::string how;
    if (!ctl::ProcessAlive(a.pid, &how)) {
      return Status::Unavailable("restarted " + area_name + " gateway " + how);
    }
    if (SteadyClock::now() >= deadline) {
      return Status::Unavailable("restarted " + area_name + " gateway does not answer /healthz");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

std::string Sandbox::LogTails() const {
  std::string out;
  for (const auto& a : areas_) {
    out += "--- " + a.log + " (last lines)\n" + ctl::TailOfFile(a.log, 40);
  }
  return out;
}

void SandboxTest::SetUp() {
  Result<std::unique_ptr<Sandbox>> sb = Sandbox::Up({"bradford"});
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  sandbox_ = std::move(sb).value();
}

void SandboxTest::TearDown() {
  if (sandbox_ && HasFailure()) std::cerr << sandbox_->LogTails();
  sandbox_.reset();
}

std::vector<nlohmann::json> SandboxTest::AuditEntries(const std::string& query) {
  std::vector<nlohmann::json> entries;
  HttpsClient audit = Client("bradford-audit");
  std::string after;
  for (int page = 0; page < 1000; ++page) {
    std::string target = "/v1/audit?purpose=" + std::string(kAuditPurpose) + "&limit=1000";
    if (!query.empty()) target += "&" + query;
    if (!after.empty()) target += "&after=" + UrlEncode(after);
    Result<HttpResponse> r = audit.Get(target);
    if (!r.ok()) {
      ADD_FAILURE() << "GET " << target << ": " << r.status().ToString();
      return entries;
    }
    nlohmann::json body = r->Json();
    if (r->status != 200 || !body.is_object() || !body.contains("entries") ||
        !body["entries"].is_array()) {
      ADD_FAILURE() << "GET " << target << ": " << r->Describe();
      return entries;
    }
    for (const auto& e : body["entries"]) entries.push_back(e);
    if (!body.contains("next") || !body["next"].is_string() ||
        body["next"].get<std::string>().empty() || body["entries"].empty()) {
      return entries;
    }
    after = body["next"].get<std::string>();
  }
  ADD_FAILURE() << "audit paging did not end";
  return entries;
}

size_t SandboxTest::CountAudit(const std::string& action) {
  return AuditEntries("action=" + action).size();
}

}  // namespace safegate::testing
