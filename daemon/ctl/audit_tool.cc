#include "daemon/ctl/audit_tool.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "daemon/audit/encoding.h"
#include "daemon/audit/proof_bundle.h"
#include "daemon/audit/tree_head.h"
#include "daemon/core/gateway.h"
#include "daemon/ctl/fd.h"
#include "daemon/ctl/subject_report_html.h"

namespace safegate::ctl {
namespace {

using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// ---- HTTPS ------------------------------------------------------------------------------

std::string OpensslError(std::string_view what) {
  std::string out(what);
  unsigned long e = 0;
  bool first = true;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += first ? ": " : "; ";
    out += buf;
    first = false;
  }
  return out;
}

struct Url {
  std::string host;  // without brackets
  std::string port;
  bool is_ip = false;
};

std::optional<Url> ParseUrl(const std::string& text) {
  constexpr std::string_view kScheme = "https://";
  if (text.rfind(kScheme, 0) != 0) return std::nullopt;
  std::string rest = text.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  Url url;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return std::nullopt;
    }
    url.host = rest.substr(1, close - 1);
    url.port = rest.substr(close + 2);
    url.is_ip = true;
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    url.host = rest.substr(0, colon);
    url.port = rest.substr(colon + 1);
    url.is_ip = !url.host.empty() && url.host.find_first_not_of("0123456789.") == std::string::npos;
  }
  if (url.host.empty() || url.port.empty() ||
      url.port.find_first_not_of("0123456789") != std::string::npos ||
      url.host.find('/') != std::string::npos) {
    return std::nullopt;
  }
  return url;
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

// Connects a TCP socket within `timeout`; the socket is left blocking with send and receive
// timeouts of `timeout`.
Result<std::unique_ptr<Fd>> Connect(const Url& url, std::chrono::milliseconds timeout,
                                    const std::string& base) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); rc != 0) {
    return Status::Unavailable(base + ": cannot resolve " + url.host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addrs(found, ::freeaddrinfo);
  std::string why = "no address";
  for (addrinfo* a = addrs.get(); a != nullptr; a = a->ai_next) {
    auto fd = std::make_unique<Fd>(
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (fd->get() < 0) {
      why = std::strerror(errno);
      continue;
    }
    if (::connect(fd->get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        why = std::strerror(errno);
        continue;
      }
      pollfd p{fd->get(), POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
        why = "timed out connecting";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        why = std::strerror(err);
        continue;
      }
    }
    const int flags = ::fcntl(fd->get(), F_GETFL);
    ::fcntl(fd->get(), F_SETFL, flags & ~O_NONBLOCK);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd->get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
  }
  return Status::Unavailable(base + ": cannot connect: " + why);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Decodes a chunked body; nullopt when it is malformed.
std::optional<std::string> Unchunk(const std::string& in) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    const size_t eol = in.find("\r\n", pos);
    if (eol == std::string::npos) return std::nullopt;
    size_t size = 0;
    std::istringstream hex(in.substr(pos, eol - pos));
    if (!(hex >> std::hex >> size)) return std::nullopt;
    pos = eol + 2;
    if (size == 0) return out;
    if (pos + size > in.size()) return std::nullopt;
    out.append(in, pos, size);
    pos += size + 2;
  }
}

Result<ApiAnswer> ParseAnswer(const std::string& raw, const std::string& where) {
  const size_t head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos || raw.size() < 12) {
    return Status::Unavailable(where + ": not an HTTP answer");
  }
  ApiAnswer answer;
  answer.status = std::atoi(raw.substr(9, 3).c_str());
  const std::string head = Lower(raw.substr(0, head_end));
  std::string body = raw.substr(head_end + 4);
  if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    auto unchunked = Unchunk(body);
    if (!unchunked) return Status::Unavailable(where + ": malformed chunked answer");
    body = std::move(*unchunked);
  } else if (auto cl = head.find("\r\ncontent-length:"); cl != std::string::npos) {
    const size_t n = std::strtoull(head.c_str() + cl + 17, nullptr, 10);
    if (body.size() < n) return Status::Unavailable(where + ": the answer was cut short");
    body.resize(n);
  }
  answer.body = std::move(body);
  return answer;
}

// The API's error body, in words.
std::string DescribeError(const ApiAnswer& a) {
  const json body = json::parse(a.body, nullptr, false);
  std::string out = "HTTP " + std::to_string(a.status);
  if (body.is_object()) {
    out += " " + body.value("error", std::string()) + ": " + body.value("detail", std::string());
    if (body.contains("problems") && body["problems"].is_array()) {
      for (const json& p : body["problems"]) {
        out += "\n  " + p.value("where", std::string()) + ": " + p.value("what", std::string());
      }
    }
  } else {
    out += ": " + a.body.substr(0, 200);
  }
  return out;
}

// ---- helpers ----------------------------------------------------------------------------

using Options = std::map<std::string, std::string>;

std::string Opt(const Options& o, const std::string& name) {
  auto it = o.find(name);
  return it == o.end() ? "" : it->second;
}

// Rejects options `action` does not take.
bool OnlyOptions(const std::string& action, const Options& options,
                 const std::vector<std::string>& allowed, std::ostream& err) {
  for (const auto& [name, value] : options) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      err << "safegatectl: option " << name << " does not apply to `audit " << action
          << "`\nRun `safegatectl --help` for usage.\n";
      return false;
    }
  }
  return true;
}

int Usage(std::ostream& err, const std::string& what) {
  err << "safegatectl: " << what << "\nRun `safegatectl --help` for usage.\n";
  return kExitUsage;
}

const std::vector<std::string> kApiOptions = {"--url", "--ca", "--cert", "--key", "--timeout"};

std::vector<std::string> With(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The endpoint from --url/--ca/--cert/--key[/--timeout]; nullopt (usage message written) when
// one is missing.
std::optional<ApiEndpoint> Endpoint(const std::string& action, const Options& o,
                                    std::ostream& err) {
  ApiEndpoint e;
  e.url = Opt(o, "--url");
  e.ca = Opt(o, "--ca");
  e.cert = Opt(o, "--cert");
  e.key = Opt(o, "--key");
  for (const auto& [name, value] : {std::pair<const char*, std::string*>{"--url", &e.url},
                                    {"--ca", &e.ca},
                                    {"--cert", &e.cert},
                                    {"--key", &e.key}}) {
    if (value->empty()) {
      Usage(err, "audit " + action + ": " + name +
                     " is required (the gateway's URL, its CA, and an audit agency's "
                     "certificate and key)");
      return std::nullopt;
    }
  }
  if (auto t = Opt(o, "--timeout"); !t.empty()) {
    char* end = nullptr;
    const long seconds = std::strtol(t.c_str(), &end, 10);
    if (end == t.c_str() || *end != '\0' || seconds <= 0 || seconds > 3600) {
      Usage(err, "--timeout: \"" + t + "\" is not a number of seconds in 1..3600");
      return std::nullopt;
    }
    e.timeout = std::chrono::seconds(seconds);
  }
  return e;
}

// GET as JSON: the parsed body of a 200, else a Status carrying the API's error.
Result<json> GetJson(const ApiEndpoint& e, const std::string& target) {
  auto answer = ApiGet(e, target);
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) {
    return Status(answer->status == 404 ? ErrorCode::kNotFound : ErrorCode::kForbidden,
                  e.url + target + ": " + DescribeError(*answer));
  }
  json body = json::parse(answer->body, nullptr, false);
  if (body.is_discarded()) return Status::Unavailable(e.url + target + ": the answer is not JSON");
  return body;
}

std::optional<audit::PublicKey> PinnedKey(const Options& o, std::ostream& err, bool* bad) {
  *bad = false;
  const std::string text = Opt(o, "--public-key");
  if (text.empty()) return std::nullopt;
  auto key = audit::ParsePublicKey(text);
  if (!key) {
    Usage(err, "--public-key: \"" + text + "\" is not a base64 Ed25519 public key (32 bytes)");
    *bad = true;
  }
  return key;
}

std::optional<int64_t> PositiveInt(const std::string& text) {
  if (text.empty() || text.size() > 16 || text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int64_t v = std::stoll(text);
  if (v < 1) return std::nullopt;
  return v;
}

std::string TimeText(uint64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03uZ", buf, static_cast<unsigned>(ms % 1000));
  return out;
}

// ---- the commands -----------------------------------------------------------------------

int Verify(const Options& o, std::ostream& out, std::ostream& err) {
  if (!OnlyOptions("verify", o, With(kApiOptions, {"--data-dir", "--public-key"}), err)) {
    return kExitUsage;
  }
  bool bad_key = false;
  const auto pinned = PinnedKey(o, err, &bad_key);
  if (bad_key) return kExitUsage;
  const std::string dir = Opt(o, "--data-dir");
  if (!dir.empty() && !Opt(o, "--url").empty()) {
    return Usage(err, "audit verify: give --data-dir DIR or --url URL, not both");
  }
  if (!dir.empty()) {
    auto report = VerifyAuditChain(dir, Opt(o, "--public-key"));
    if (!report.ok()) {
      err << "safegatectl audit verify: " << dir << ": " << report.status().ToString() << "\n";
      return kExitUsage;
    }
    out << report->ToJson().dump(2) << "\n";
    return report->ok ? kExitOk : kExitFailed;
  }
  if (Opt(o, "--url").empty()) {
    return Usage(err, "audit verify: --data-dir DIR (offline) or --url URL (through the API) "
                      "is required");
  }
  auto endpoint = Endpoint("verify", o, err);
  if (!endpoint) return kExitUsage;
  auto report = GetJson(*endpoint, "/v1/audit/verify");
  if (!report.ok()) {
    err << "safegatectl audit verify: " << report.status().detail() << "\n";
    return kExitFailed;
  }
  out << report->dump(2) << "\n";
  bool ok = report->value("ok", false);
  // The gateway's own verdict, and the signed head it reports, checked here too.
  if (report->contains("tree_head") && (*report)["tree_head"].is_object()) {
    auto head = audit::TreeHeadFromJson((*report)["tree_head"], "/tree_head");
    if (!head.ok() || !audit::VerifyTreeHead(head->head, head->public_key).ok()) {
      err << "safegatectl audit verify: the latest tree head's signature does not verify\n";
      ok = false;
    } else if (pinned && head->public_key != *pinned) {
      err << "safegatectl audit verify: the tree head is signed by "
          << audit::ToBase64(std::span<const uint8_t>(head->public_key))
          << ", not by the pinned --public-key\n";
      ok = false;
    }
  }
  return ok ? kExitOk : kExitFailed;
}

int Prove(const Options& o, std::ostream& out, std::ostream& err) {
  if (!OnlyOptions("prove", o,
                   With(kApiOptions, {"--data-dir", "--seq", "--out", "--public-key"}), err)) {
    return kExitUsage;
  }
  const auto seq = PositiveInt(Opt(o, "--seq"));
  if (!seq) return Usage(err, "audit prove: --seq N (an entry's seq, 1 or more) is required");
  const std::string file = Opt(o, "--out");
  if (file.empty()) return Usage(err, "audit prove: --out FILE is required");
  bool bad_key = false;
  const auto pinned = PinnedKey(o, err, &bad_key);
  if (bad_key) return kExitUsage;
  const std::string dir = Opt(o, "--data-dir");
  if (dir.empty() == Opt(o, "--url").empty()) {
    return Usage(err, "audit prove: give --data-dir DIR (offline) or --url URL (through the "
                      "API)");
  }

  json bundle;
  if (!dir.empty()) {
    auto made = MakeAuditProofBundle(dir, *seq);
    if (!made.ok()) {
      err << "safegatectl audit prove: " << dir << ": " << made.status().ToString() << "\n";
      return made.status().code() == ErrorCode::kNotFound ? kExitFailed : kExitUsage;
    }
    bundle = std::move(*made);
  } else {
    auto endpoint = Endpoint("prove", o, err);
    if (!endpoint) return kExitUsage;
    auto head = GetJson(*endpoint, "/v1/audit/tree-head");
    if (!head.ok()) {
      err << "safegatectl audit prove: " << head.status().detail() << "\n";
      return kExitFailed;
    }
    const int64_t size = head->value("tree_size", int64_t{0});
    auto proof = GetJson(*endpoint, "/v1/audit/proof/inclusion?seq=" + std::to_string(*seq) +
                                        "&tree_size=" + std::to_string(size));
    if (!proof.ok()) {
      err << "safegatectl audit prove: " << proof.status().detail() << "\n";
      return kExitFailed;
    }
    bundle = *proof;
    bundle["format"] = std::string(audit::kBundleFormat);
    bundle["tree_head"] = *head;
  }

  // Never write a bundle that does not verify, or that a different key signed.
  const std::string text = bundle.dump(2);
  auto parsed = audit::BundleFromJson(bundle);
  if (!parsed.ok()) {
    err << "safegatectl audit prove: the gateway's answer is not a bundle: "
        << parsed.status().ToString() << "\n";
    return kExitFailed;
  }
  if (Status s = audit::VerifyBundleJson(text, pinned ? &*pinned : &parsed->public_key);
      !s.ok()) {
    err << "safegatectl audit prove: the proof does not verify: " << s.detail() << "\n";
    for (const auto& p : s.problems()) err << "  " << p.where << ": " << p.what << "\n";
    return kExitFailed;
  }
  const std::string tmp = file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text << "\n";
    if (!f.good()) {
      err << "safegatectl audit prove: cannot write " << tmp << "\n";
      return kExitUsage;
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) {
    err << "safegatectl audit prove: cannot write " << file << ": " << ec.message() << "\n";
    return kExitUsage;
  }
  err << "safegatectl audit prove: entry " << *seq << " is in the tree of "
      << parsed->tree_size << " entries signed by "
      << audit::ToBase64(std::span<const uint8_t>(parsed->public_key)) << " at "
      << TimeText(parsed->tree_head.timestamp_ms) << "; bundle written to " << file << "\n";
  out << file << "\n";
  return kExitOk;
}

int CheckProof(const Options& o, const std::vector<std::string>& positional, std::ostream& out,
               std::ostream& err) {
  if (!OnlyOptions("check-proof", o, {"--public-key"}, err)) return kExitUsage;
  if (positional.size() != 1) return Usage(err, "audit check-proof: expected one BUNDLE file");
  bool bad_key = false;
  const auto pinned = PinnedKey(o, err, &bad_key);
  if (bad_key) return kExitUsage;
  std::ifstream f(positional[0], std::ios::binary);
  if (!f) {
    err << "safegatectl audit check-proof: cannot read " << positional[0] << "\n";
    return kExitUsage;
  }
  std::ostringstream text;
  text << f.rdbuf();
  const Status s = audit::VerifyBundleJson(text.str(), pinned ? &*pinned : nullptr);
  if (!s.ok()) {
    out << "REJECTED: " << positional[0] << ": " << s.detail() << "\n";
    for (const auto& p : s.problems()) out << "  " << p.where << ": " << p.what << "\n";
    return kExitFailed;
  }
  const json bundle = json::parse(text.str(), nullptr, false);
  auto parsed = audit::BundleFromJson(bundle);
  if (!parsed.ok()) return kExitFailed;  // VerifyBundleJson accepted it: cannot happen
  out << "OK: entry " << parsed->leaf_index + 1 << " (leaf " << parsed->leaf_index
      << ") is in the tree of " << parsed->tree_size << " entries signed by "
      << audit::ToBase64(std::span<const uint8_t>(parsed->public_key)) << " at "
      << TimeText(parsed->tree_head.timestamp_ms) << "\n";
  if (!pinned) {
    err << "safegatectl audit check-proof: no --public-key given: this shows only that the key "
           "inside the bundle signed it; compare that key with the gateway's published one\n";
  }
  return kExitOk;
}

const std::vector<std::string> kFilterOptions = {"--purpose", "--subject", "--agency",
                                                 "--action",  "--from",    "--to"};

// "purpose=P&subject=S..." from the filter options; "" (and a usage message) without purpose.
std::optional<std::string> FilterQuery(const std::string& action, const Options& o,
                                       std::ostream& err) {
  if (Opt(o, "--purpose").empty()) {
    Usage(err, "audit " + action + ": --purpose PURPOSE is required (every audit query states "
                                   "why it is made, and is itself audited)");
    return std::nullopt;
  }
  std::string q;
  for (const std::string& name : kFilterOptions) {
    const std::string v = Opt(o, name);
    if (v.empty()) continue;
    q += (q.empty() ? "" : "&") + name.substr(2) + "=" + QueryEscape(v);
  }
  return q;
}

int Query(const Options& o, std::ostream& out, std::ostream& err) {
  if (!OnlyOptions("query", o, With(With(kApiOptions, kFilterOptions), {"--limit", "--after"}),
                   err)) {
    return kExitUsage;
  }
  auto endpoint = Endpoint("query", o, err);
  if (!endpoint) return kExitUsage;
  auto filter = FilterQuery("query", o, err);
  if (!filter) return kExitUsage;
  std::string target = "/v1/audit?" + *filter;
  for (const char* name : {"--limit", "--after"}) {
    if (const std::string v = Opt(o, name); !v.empty()) {
      target += std::string("&") + (name + 2) + "=" + QueryEscape(v);
    }
  }
  auto page = GetJson(*endpoint, target);
  if (!page.ok()) {
    err << "safegatectl audit query: " << page.status().detail() << "\n";
    return kExitFailed;
  }
  out << page->dump(2) << "\n";
  return kExitOk;
}

int Tail(const Options& o, std::ostream& out, std::ostream& err) {
  if (!OnlyOptions("tail", o,
                   With(With(kApiOptions, kFilterOptions), {"--lines", "--follow", "--interval"}),
                   err)) {
    return kExitUsage;
  }
  auto endpoint = Endpoint("tail", o, err);
  if (!endpoint) return kExitUsage;
  auto filter = FilterQuery("tail", o, err);
  if (!filter) return kExitUsage;
  int64_t lines = 10;
  if (const std::string v = Opt(o, "--lines"); !v.empty()) {
    auto n = PositiveInt(v);
    if (!n || *n > 1'000'000) return Usage(err, "--lines: \"" + v + "\" is not a count in 1..1000000");
    lines = *n;
  }
  int64_t interval = 2;
  if (const std::string v = Opt(o, "--interval"); !v.empty()) {
    auto n = PositiveInt(v);
    if (!n || *n > 3600) return Usage(err, "--interval: \"" + v + "\" is not 1..3600 seconds");
    interval = *n;
  }
  const bool follow = !Opt(o, "--follow").empty();

  // Start `lines` entries before the end of the signed log (entries are numbered 1, 2, ...;
  // the paging cursor is the last seq seen).
  int64_t after = 0;
  auto head = GetJson(*endpoint, "/v1/audit/tree-head");
  if (head.ok()) {
    after = std::max<int64_t>(0, head->value("tree_size", int64_t{0}) - lines);
  } else if (head.status().code() != ErrorCode::kNotFound) {
    err << "safegatectl audit tail: " << head.status().detail() << "\n";
    return kExitFailed;
  }
  for (;;) {
    auto page = GetJson(*endpoint, "/v1/audit?" + *filter + "&limit=1000&after=" +
                                       std::to_string(after));
    if (!page.ok()) {
      err << "safegatectl audit tail: " << page.status().detail() << "\n";
      return kExitFailed;
    }
    for (const json& e : (*page)["entries"]) {
      out << e.dump() << "\n";
      after = std::max(after, e.value("seq", after));
    }
    out.flush();
    const json& next = (*page)["next"];
    if (next.is_string()) {
      after = std::max<int64_t>(after, std::stoll(next.get<std::string>()));
      continue;
    }
    if (!follow) return kExitOk;
    std::this_thread::sleep_for(std::chrono::seconds(interval));
  }
}

// `audit export --subject REF`: the subject access report (docs/subject-access.md), as the
// API's JSON or as the printable page of subject_report_html.h.
int Export(const Options& o, std::ostream& out, std::ostream& err) {
  if (!OnlyOptions("export", o, With(kApiOptions, {"--subject", "--format", "--out", "--purpose"}),
                   err)) {
    return kExitUsage;
  }
  const std::string subject = Opt(o, "--subject");
  if (subject.empty()) {
    return Usage(err, "audit export: --subject REF is required (a subject reference such as "
                      "nhs:9990000018)");
  }
  const std::string format = Opt(o, "--format").empty() ? "json" : Opt(o, "--format");
  if (format != "json" && format != "html") {
    return Usage(err, "audit export: --format: \"" + format + "\" is not json or html");
  }
  // The report states its purpose like every audit read; a subject access request by default.
  const std::string purpose =
      Opt(o, "--purpose").empty() ? "subject_access" : Opt(o, "--purpose");
  auto endpoint = Endpoint("export", o, err);
  if (!endpoint) return kExitUsage;
  auto report = GetJson(*endpoint, "/v1/audit/subjects/" + QueryEscape(subject) +
                                       "/report?purpose=" + QueryEscape(purpose));
  if (!report.ok()) {
    err << "safegatectl audit export: " << report.status().detail() << "\n";
    return kExitFailed;
  }
  const std::string text =
      format == "html" ? RenderSubjectReportHtml(*report) : report->dump(2) + "\n";
  auto count = [&](const char* key) -> size_t {
    auto it = report->find(key);
    return it != report->end() && it->is_array() ? it->size() : 0;
  };
  const std::string file = Opt(o, "--out");
  if (file.empty()) {
    out << text;
  } else {
    const std::string tmp = file + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc | std::ios::binary);
      f << text;
      if (!f.good()) {
        err << "safegatectl audit export: cannot write " << tmp << "\n";
        return kExitUsage;
      }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, file, ec);
    if (ec) {
      err << "safegatectl audit export: cannot write " << file << ": " << ec.message() << "\n";
      return kExitUsage;
    }
    out << file << "\n";
  }
  err << "safegatectl audit export: subject access report for " << subject << ": "
      << count("disclosures") << " disclosures, " << count("refusals") << " refusals, "
      << count("reads") << " reads; the report is audit entry "
      << report->value("report_seq", int64_t{0}) << "\n";
  return kExitOk;
}

}  // namespace

std::string QueryEscape(const std::string& value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<ApiAnswer> ApiGet(const ApiEndpoint& e, const std::string& target) {
  auto url = ParseUrl(e.url);
  if (!url) {
    return Status::Invalid("--url \"" + e.url + "\" is not https://HOST:PORT",
                           {{"--url", "must be https://HOST:PORT"}});
  }
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Status::Internal(OpensslError("TLS context"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), e.ca.c_str(), nullptr) != 1) {
    return Status::Invalid(OpensslError("--ca " + e.ca + " is not a readable PEM CA bundle"));
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), e.cert.c_str()) != 1) {
    return Status::Invalid(OpensslError("--cert " + e.cert + " is not a readable PEM certificate"));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), e.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return Status::Invalid(OpensslError("--key " + e.key + " is not the private key of --cert"));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);

  auto fd = Connect(*url, e.timeout, e.url);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  if (!ssl) return Status::Internal(OpensslError("TLS session"));
  SSL_set_fd(ssl.get(), (*fd)->get());
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (url->is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, url->host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl.get(), url->host.c_str());
    X509_VERIFY_PARAM_set1_host(param, url->host.c_str(), 0);
  }
  if (SSL_connect(ssl.get()) != 1) {
    const long verify = SSL_get_verify_result(ssl.get());
    std::string why = OpensslError(e.url + ": TLS handshake failed");
    if (verify != X509_V_OK) {
      why += " (the gateway's certificate: " +
             std::string(X509_verify_cert_error_string(verify)) + ")";
    }
    return Status::Unavailable(why);
  }
  const std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + url->host + ":" +
                              url->port +
                              "\r\nAccept: application/json\r\nConnection: close\r\n"
                              "User-Agent: safegatectl\r\n\r\n";
  if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) <= 0) {
    return Status::Unavailable(OpensslError(e.url + ": sending the request failed"));
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    const int n = SSL_read(ssl.get(), buf, sizeof buf);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > (256u << 20)) return Status::Unavailable(e.url + ": answer too large");
      continue;
    }
    const int code = SSL_get_error(ssl.get(), n);
    if (code == SSL_ERROR_ZERO_RETURN || raw.find("\r\n\r\n") != std::string::npos) break;
    // TLS 1.3 reports a refused client certificate as an alert on the first read.
    return Status::Unavailable(OpensslError(e.url + target + ": no answer"));
  }
  ERR_clear_error();
  return ParseAnswer(raw, e.url + target);
}

int AuditCommand(const std::string& action, const Options& options,
                 const std::vector<std::string>& positional, std::ostream& out,
                 std::ostream& err) {
  if (action != "check-proof" && !positional.empty()) {
    return Usage(err, "unexpected argument " + positional[0]);
  }
  if (action == "verify") return Verify(options, out, err);
  if (action == "prove") return Prove(options, out, err);
  if (action == "check-proof") return CheckProof(options, positional, out, err);
  if (action == "query") return Query(options, out, err);
  if (action == "tail") return Tail(options, out, err);
  if (action == "export") return Export(options, out, err);
  return Usage(err, "unknown audit action \"" + action +
                        "\" (expected verify, prove, check-proof, query, tail or export)");
}

}  // namespace safegate::ctl
