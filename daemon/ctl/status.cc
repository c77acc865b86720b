#include "daemon/ctl/status.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <sstream>

#include "daemon/ctl/fd.h"

namespace safegate::ctl {
namespace {

using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits until `fd` is ready for `events` or the deadline passes.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, MsLeft(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// "http://HOST:PORT[/]" -> host, port.
bool SplitUrl(const std::string& url, std::string* host, std::string* port) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return false;
  std::string rest = url.substr(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) return false;
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= rest.size()) return false;
  *host = rest.substr(0, colon);
  *port = rest.substr(colon + 1);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return std::all_of(port->begin(), port->end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Decodes a chunked body (RFC 9112 section 7.1); trailers are ignored.
std::string Unchunk(const std::string& body) {
  std::string out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t eol = body.find("\r\n", pos);
    if (eol == std::string::npos) break;
    const size_t size = std::strtoul(body.substr(pos, eol - pos).c_str(), nullptr, 16);
    if (size == 0) break;
    out += body.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Duration(double seconds) {
  if (seconds < 0) seconds = 0;
  char out[64];
  if (seconds < 60) {
    std::snprintf(out, sizeof out, "%.1fs", seconds);
  } else if (seconds < 3600) {
    std::snprintf(out, sizeof out, "%dm %02ds", static_cast<int>(seconds) / 60,
                  static_cast<int>(seconds) % 60);
  } else if (seconds < 86400) {
    std::snprintf(out, sizeof out, "%dh %02dm", static_cast<int>(seconds) / 3600,
                  (static_cast<int>(seconds) % 3600) / 60);
  } else {
    std::snprintf(out, sizeof out, "%dd %02dh", static_cast<int>(seconds) / 86400,
                  (static_cast<int>(seconds) % 86400) / 3600);
  }
  return out;
}

std::string Utc(double seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

std::string Count(double v) {
  char out[64];
  if (std::fabs(v - std::round(v)) < 1e-9) {
    std::snprintf(out, sizeof out, "%.0f", v);
  } else {
    std::snprintf(out, sizeof out, "%.2f", v);
  }
  return out;
}

}  // namespace

Result<std::vector<MetricSample>> ParsePrometheusText(const std::string& text) {
  std::vector<MetricSample> out;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    MetricSample s;
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    s.name = line.substr(0, pos);
    auto bad = [&](const std::string& what) {
      return Status::Invalid("metrics line " + std::to_string(number) + ": " + what + ": " + line);
    };
    if (s.name.empty()) return bad("no metric name");
    if (pos < line.size() && line[pos] == '{') {
      ++pos;
      while (pos < line.size() && line[pos] != '}') {
        const size_t eq = line.find('=', pos);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          return bad("malformed label");
        }
        std::string name = line.substr(pos, eq - pos);
        std::string value;
        pos = eq + 2;
        while (pos < line.size() && line[pos] != '"') {
          if (line[pos] == '\\' && pos + 1 < line.size()) {
            ++pos;
            value += line[pos] == 'n' ? '\n' : line[pos];
          } else {
            value += line[pos];
          }
          ++pos;
        }
        if (pos >= line.size()) return bad("unterminated label value");
        ++pos;  // closing quote
        s.labels[name] = value;
        if (pos < line.size() && line[pos] == ',') ++pos;
      }
      if (pos >= line.size()) return bad("unterminated labels");
      ++pos;  // '}'
    }
    while (pos < line.size() && line[pos] == ' ') ++pos;
    const std::string value = line.substr(pos, line.find(' ', pos) - pos);
    char* end = nullptr;
    s.value = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size()) return bad("no numeric value");
    out.push_back(std::move(s));
  }
  return out;
}

Result<HttpAnswer> PlainHttpGet(const std::string& base_url, const std::string& path,
                                std::chrono::milliseconds timeout) {
  std::string host, port;
  if (!SplitUrl(base_url, &host, &port)) {
    return Status::Invalid("--admin-url \"" + base_url +
                           "\" is not http://HOST:PORT (the admin listener, e.g. "
                           "http://127.0.0.1:9443)");
  }
  const auto deadline = Clock::now() + timeout;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status::Unavailable(base_url + ": cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addrs(found, ::freeaddrinfo);
  std::string why = "no address";
  for (addrinfo* a = addrs.get(); a != nullptr; a = a->ai_next) {
    Fd sock(
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (sock.get() < 0) {
      why = std::strerror(errno);
      continue;
    }
    if (::connect(sock.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        why = std::strerror(errno);
        continue;
      }
      if (!WaitFor(sock.get(), POLLOUT, deadline)) {
        why = "timed out connecting";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        why = std::strerror(err);
        continue;
      }
    }
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + port +
                                "\r\nConnection: close\r\nUser-Agent: safegatectl\r\n\r\n";
    size_t sent = 0;
    while (sent < request.size()) {
      if (!WaitFor(sock.get(), POLLOUT, deadline)) {
        return Status::Unavailable(base_url + ": timed out");
      }
      const ssize_t n =
          ::send(sock.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return Status::Unavailable(base_url + ": send: " + std::strerror(errno));
      }
      if (n > 0) sent += static_cast<size_t>(n);
    }
    std::string raw;
    char buf[16384];
    for (;;) {
      if (!WaitFor(sock.get(), POLLIN, deadline)) {
        return Status::Unavailable(base_url + path + ": no complete answer within " +
                                   std::to_string(timeout.count()) + " ms");
      }
      const ssize_t n = ::recv(sock.get(), buf, sizeof buf, 0);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return Status::Unavailable(base_url + ": receive: " + std::strerror(errno));
      }
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > (64u << 20)) return Status::Unavailable(base_url + ": answer too large");
    }
    const size_t head_end = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || raw.size() < 12) {
      return Status::Unavailable(base_url + path + ": not an HTTP answer");
    }
    HttpAnswer answer;
    answer.status = std::atoi(raw.substr(9, 3).c_str());
    answer.body = raw.substr(head_end + 4);
    if (Lower(raw.substr(0, head_end)).find("transfer-encoding: chunked") != std::string::npos) {
      answer.body = Unchunk(answer.body);
    }
    return answer;
  }
  return Status::Unavailable(base_url + ": cannot connect: " + why +
                             " (is the gateway running, and is this its [admin] address?)");
}

nlohmann::json GatewayStatus::ToJson() const {
  nlohmann::json certs = nlohmann::json::array();
  for (const auto& c : certificates) {
    certs.push_back({{"role", c.role},
                     {"name", c.name},
                     {"fingerprint", c.fingerprint},
                     {"days_left", c.days_left}});
  }
  nlohmann::json boxes = nlohmann::json::array();
  for (const auto& m : mailboxes) {
    boxes.push_back({{"agency", m.agency}, {"unacked", m.depth}, {"oldest_seconds", m.oldest_s}});
  }
  return {{"admin_url", admin_url},
          {"healthy", healthy},
          {"healthz_status", healthz_status},
          {"version", version},
          {"area", area},
          {"uptime_seconds", start_time_s > 0 ? now_s - start_time_s : 0},
          {"certificate_warning_days", warning_days},
          {"certificates", certs},
          {"mailboxes", boxes},
          {"audit_entries", audit_entries},
          {"tree_head_age_seconds",
           has_tree_head ? nlohmann::json(tree_head_age_s) : nlohmann::json(nullptr)},
          {"store_commits", commits},
          {"connections_open", connections_open},
          {"tls_handshakes", handshakes},
          {"tls_rejections", tls_rejections}};
}

Result<GatewayStatus> GetGatewayStatus(const std::string& admin_url,
                                       std::chrono::milliseconds timeout) {
  GatewayStatus st;
  st.admin_url = admin_url;
  auto health = PlainHttpGet(admin_url, "/healthz", timeout);
  if (!health.ok()) return health.status();
  st.healthz_status = health->status;
  st.healthy = health->status == 200;
  auto metrics = PlainHttpGet(admin_url, "/metrics", timeout);
  if (!metrics.ok()) return metrics.status();
  if (metrics->status != 200) {
    return Status::Unavailable(admin_url + "/metrics answered " + std::to_string(metrics->status));
  }
  auto samples = ParsePrometheusText(metrics->body);
  if (!samples.ok()) return samples.status();
  st.now_s = static_cast<double>(std::time(nullptr));
  std::map<std::string, GatewayStatus::Mailbox> boxes;
  for (const auto& s : *samples) {
    auto label = [&](const char* name) {
      auto it = s.labels.find(name);
      return it == s.labels.end() ? std::string() : it->second;
    };
    if (s.name == "safegate_build_info") {
      st.version = label("version");
      st.area = label("area");
    } else if (s.name == "safegate_start_time_seconds") {
      st.start_time_s = s.value;
    } else if (s.name == "safegate_certificate_expiry_days") {
      st.certificates.push_back({label("role"), label("name"), label("fingerprint"), s.value});
    } else if (s.name == "safegate_certificate_expiry_warning_days") {
      st.warning_days = s.value;
    } else if (s.name == "safegate_mailbox_depth") {
      boxes[label("agency")].agency = label("agency");
      boxes[label("agency")].depth = s.value;
    } else if (s.name == "safegate_mailbox_oldest_unacked_seconds") {
      boxes[label("agency")].agency = label("agency");
      boxes[label("agency")].oldest_s = s.value;
    } else if (s.name == "safegate_audit_entries") {
      st.audit_entries = s.value;
    } else if (s.name == "safegate_audit_tree_head_age_seconds") {
      st.has_tree_head = true;
      st.tree_head_age_s = s.value;
    } else if (s.name == "safegate_audit_tree_head_size") {
      st.tree_head_size = s.value;
    } else if (s.name == "safegate_store_commits_total") {
      st.commits = s.value;
    } else if (s.name == "safegate_store_committed_jobs_total") {
      st.committed_jobs = s.value;
    } else if (s.name == "safegate_store_last_commit_seconds") {
      st.last_commit_s = s.value;
    } else if (s.name == "safegate_connections_open") {
      st.connections_open = s.value;
    } else if (s.name == "safegate_tls_handshakes_total") {
      st.handshakes[label("result")] = s.value;
    } else if (s.name == "safegate_tls_rejections_total") {
      st.tls_rejections[label("reason")] = s.value;
    }
  }
  std::sort(st.certificates.begin(), st.certificates.end(),
            [](const auto& a, const auto& b) { return a.days_left < b.days_left; });
  for (auto& [agency, box] : boxes) st.mailboxes.push_back(box);
  return st;
}

std::string RenderStatus(const GatewayStatus& st) {
  std::ostringstream out;
  out << "gateway      " << (st.area.empty() ? "?" : st.area) << " at " << st.admin_url << "\n";
  out << "health       " << (st.healthy ? "ok" : "NOT HEALTHY")
      << " (GET /healthz: " << st.healthz_status << ")\n";
  out << "version      " << (st.version.empty() ? "unknown" : st.version);
  if (st.start_time_s > 0) {
    out << ", up " << Duration(st.now_s - st.start_time_s) << " (since " << Utc(st.start_time_s)
        << ")";
  }
  out << "\n";
  out << "certificates days left";
  if (st.warning_days > 0) out << " (warned within " << Count(st.warning_days) << " days)";
  out << "\n";
  if (st.certificates.empty()) out << "  (none reported)\n";
  for (const auto& c : st.certificates) {
    char line[256];
    std::snprintf(line, sizeof line, "  %-7s %-34s %8.1f", c.role.c_str(), c.name.c_str(),
                  c.days_left);
    out << line;
    if (c.days_left <= 0) {
      out << "  EXPIRED";
    } else if (st.warning_days > 0 && c.days_left <= st.warning_days) {
      out << "  expiring: renew";
    }
    out << "\n";
  }
  out << "mailboxes    unacknowledged, oldest\n";
  if (st.mailboxes.empty()) out << "  (none)\n";
  for (const auto& m : st.mailboxes) {
    char line[256];
    std::snprintf(line, sizeof line, "  %-34s %8s  %s", m.agency.c_str(), Count(m.depth).c_str(),
                  m.depth > 0 ? Duration(m.oldest_s).c_str() : "-");
    out << line << "\n";
  }
  out << "audit log    " << Count(st.audit_entries) << " entries";
  if (st.has_tree_head) {
    out << "; latest signed tree head " << Duration(st.tree_head_age_s) << " ago ("
        << Count(st.tree_head_size) << " entries)";
  } else {
    out << "; no signed tree head reported";
  }
  out << "\n";
  out << "store        " << Count(st.commits) << " commits";
  if (st.commits > 0) {
    char mean[32];
    std::snprintf(mean, sizeof mean, "%.1f", st.committed_jobs / st.commits);
    out << ", " << mean << " operations per commit, last commit "
        << Count(std::round(st.last_commit_s * 1e4) / 10) << " ms";
  }
  out << "\n";
  out << "connections  " << Count(st.connections_open) << " open; handshakes";
  if (st.handshakes.empty()) out << " none";
  for (const auto& [result, n] : st.handshakes) out << " " << result << "=" << Count(n);
  if (!st.tls_rejections.empty()) {
    out << "; refused";
    for (const auto& [reason, n] : st.tls_rejections) out << " " << reason << "=" << Count(n);
  }
  out << "\n";
  return out.str();
}

}  // namespace safegate::ctl
