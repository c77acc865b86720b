// safegate-load: a closed-loop mTLS load generator for safegated (and, as a ceiling, for any
// HTTPS server that answers the same requests, such as nginx returning a fixed body).
//
// It opens N keep-alive TLS 1.3 connections with a client certificate, then each connection
// sends one request at a time (no pipelining) until M requests have been sent in total. In
// push mode every request is `POST /v1/records` with a record no earlier request carried
// (bench/record_gen.h), so each success is a new durable record; only a 201 counts as one.
// In get mode every request is `GET --path` and a 200 counts.
//
// Phases: connect all N (handshakes are not timed), send --warmup requests (not counted),
// then send the M measured requests. Latency is measured per request from just before the
// write to the end of the response, so it includes queueing in the server but not the
// time the client spends building the request.
//
// Two client models, so the client's own CPU cost can be compared (it shares the machine
// with the server it measures):
//   --model async    (default) all connections on one io_context run by --threads threads,
//                    each connection a coroutine on its own strand;
//   --model threads  one blocking thread per connection.
// The report includes the client's CPU time (getrusage) over the measured phase.
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

#include "bench/record_gen.h"

namespace safegate::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

// ---------------------------------------------------------------------------------------
// Options

struct Options {
  std::string url;
  std::string host;
  std::string port;
  std::string server_name;  // SNI and the name the server certificate must carry
  std::string ca, cert, key;
  size_t connections = 32;
  uint64_t requests = 10'000;
  uint64_t warmup = 0;
  enum class Mode { kPush, kGet } mode = Mode::kPush;
  std::string path = "/v1/mailbox?limit=1";  // get mode
  PushTemplate push;
  enum class Model { kAsync, kThreads } model = Model::kAsync;
  int threads = 1;  // async model
  int expect = 0;   // 0: 201 for push, 200 for get
  int timeout_s = 30;
  bool json = false;
  std::vector<int> server_pids;  // processes whose CPU time is reported (with children)
};

constexpr const char* kUsage = R"(usage: safegate-load --url https://HOST:PORT --ca CA.pem --cert CERT.pem --key KEY.pem
                     [--mode push|get] [--connections N] [--requests M] [--warmup K] [--json]

  --url URL           the server, https://HOST:PORT (any path is ignored)
  --ca FILE           CA bundle the server certificate must chain to
  --cert FILE         client certificate chain (PEM); --key FILE its private key
  --server-name NAME  name (or IP) the server certificate must carry; default: HOST
  --mode push|get     push: POST /v1/records, a new record each time, success = 201 (default)
                      get: GET --path, success = 200
  --path PATH         request target in get mode (default /v1/mailbox?limit=1)
  --connections N     keep-alive connections (default 32)
  --requests M        measured requests over all connections (default 10000)
  --warmup K          requests sent first and not counted (default 0)
  --agency ID         source.agency of pushed records: the client certificate's agency (wyp)
  --system NAME       source.system (niche)
  --recipients A,B    recipients of each push (default: none given; the gateway decides)
  --purpose P         purpose of each push (safeguarding)
  --run-id ID         makes record ids unique across runs (default: random)
  --subjects S        distinct children the records are about (default 100000)
  --expect STATUS     the status that counts as success (default 201 push, 200 get)
  --model async|threads  one io_context for all connections, or a thread per connection
  --threads T         threads running the io_context in the async model (default 1)
  --timeout S         seconds allowed per request (default 30)
  --server-pid P,Q    report the CPU time these processes and their children use during
                      the measured phase (the server on the same machine)
  --json              print the result as one JSON object
Exit status: 0 all measured requests succeeded, 1 some failed, 2 bad usage or setup.
)";

bool ParseUint(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

std::vector<std::string> SplitCommas(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// Returns an error message naming the bad option, or nullopt when the options are usable.
std::optional<std::string> ParseOptions(int argc, char** argv, Options& o) {
  bool run_id_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--json") {
      o.json = true;
      continue;
    }
    if (flag == "-h" || flag == "--help") return std::string("help");
    if (i + 1 >= argc) return "option " + std::string(flag) + " needs a value";
    std::string_view value = argv[++i];
    auto number = [&](uint64_t& out, uint64_t min, uint64_t max) -> std::optional<std::string> {
      if (!ParseUint(value, out) || out < min || out > max)
        return "option " + std::string(flag) + ": expected a whole number from " +
               std::to_string(min) + " to " + std::to_string(max) + ", got '" +
               std::string(value) + "'";
      return std::nullopt;
    };
    uint64_t n = 0;
    std::optional<std::string> err;
    if (flag == "--url") {
      o.url = value;
    } else if (flag == "--ca") {
      o.ca = value;
    } else if (flag == "--cert") {
      o.cert = value;
    } else if (flag == "--key") {
      o.key = value;
    } else if (flag == "--server-name") {
      o.server_name = value;
    } else if (flag == "--mode") {
      if (value == "push") o.mode = Options::Mode::kPush;
      else if (value == "get") o.mode = Options::Mode::kGet;
      else return "option --mode: expected push or get, got '" + std::string(value) + "'";
    } else if (flag == "--path") {
      if (value.empty() || value[0] != '/') return "option --path: must start with '/'";
      o.path = value;
    } else if (flag == "--connections") {
      if ((err = number(n, 1, 10'000))) return err;
      o.connections = n;
    } else if (flag == "--requests") {
      if ((err = number(n, 1, 1'000'000'000))) return err;
      o.requests = n;
    } else if (flag == "--warmup") {
      if ((err = number(n, 0, 1'000'000'000))) return err;
      o.warmup = n;
    } else if (flag == "--agency") {
      o.push.agency = value;
    } else if (flag == "--system") {
      o.push.system = value;
    } else if (flag == "--recipients") {
      o.push.recipients = SplitCommas(value);
    } else if (flag == "--purpose") {
      o.push.purpose = value;
    } else if (flag == "--run-id") {
      o.push.run_id = value;
      run_id_given = true;
    } else if (flag == "--subjects") {
      if ((err = number(n, 1, kNhsNumbers))) return err;
      o.push.subjects = n;
    } else if (flag == "--expect") {
      if ((err = number(n, 100, 599))) return err;
      o.expect = static_cast<int>(n);
    } else if (flag == "--model") {
      if (value == "async") o.model = Options::Model::kAsync;
      else if (value == "threads") o.model = Options::Model::kThreads;
      else return "option --model: expected async or threads, got '" + std::string(value) + "'";
    } else if (flag == "--threads") {
      if ((err = number(n, 1, 64))) return err;
      o.threads = static_cast<int>(n);
    } else if (flag == "--server-pid") {
      for (const std::string& item : SplitCommas(value)) {
        if (!ParseUint(item, n) || n == 0 || n > 1u << 30)
          return "option --server-pid: expected process ids, got '" + item + "'";
        o.server_pids.push_back(static_cast<int>(n));
      }
    } else if (flag == "--timeout") {
      if ((err = number(n, 1, 3600))) return err;
      o.timeout_s = static_cast<int>(n);
    } else {
      return "unknown option '" + std::string(flag) + "'";
    }
  }
  if (o.url.empty()) return std::string("--url is required");
  if (o.ca.empty() || o.cert.empty() || o.key.empty())
    return std::string("--ca, --cert and --key are required (the server wants mutual TLS)");
  constexpr std::string_view kScheme = "https://";
  if (o.url.compare(0, kScheme.size(), kScheme) != 0)
    return "--url must start with https://, got '" + o.url + "'";
  std::string authority = o.url.substr(kScheme.size());
  authority = authority.substr(0, authority.find('/'));
  size_t colon = authority.rfind(':');
  if (colon == std::string::npos || colon + 1 == authority.size())
    return "--url needs an explicit port, got '" + o.url + "'";
  o.host = authority.substr(0, colon);
  o.port = authority.substr(colon + 1);
  if (o.host.size() >= 2 && o.host.front() == '[' && o.host.back() == ']')
    o.host = o.host.substr(1, o.host.size() - 2);
  if (o.server_name.empty()) o.server_name = o.host;
  if (o.expect == 0) o.expect = o.mode == Options::Mode::kPush ? 201 : 200;
  if (!run_id_given) {
    // Record ids must not repeat across runs against the same store, or a push would be an
    // idempotent replay (200) instead of a new record (201).
    std::random_device rd;
    char id[24];
    std::snprintf(id, sizeof id, "%08x%08x", rd(), rd());
    o.push.run_id = id;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------
// Requests and results

// Builds the raw bytes of request n: headers and body in one buffer, written in one call.
class RequestFactory {
 public:
  explicit RequestFactory(const Options& o) : o_(o) {
    host_header_ = o.host.find(':') != std::string::npos ? "[" + o.host + "]:" + o.port
                                                         : o.host + ":" + o.port;
  }

  void Build(uint64_t n, std::string& out) const {
    out.clear();
    if (o_.mode == Options::Mode::kGet) {
      out += "GET " + o_.path + " HTTP/1.1\r\nHost: " + host_header_ +
             "\r\nAccept: application/json\r\n\r\n";
      return;
    }
    body_.clear();
    AppendPushBody(o_.push, n, body_);
    out += "POST /v1/records HTTP/1.1\r\nHost: ";
    out += host_header_;
    out += "\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ";
    out += std::to_string(body_.size());
    out += "\r\n\r\n";
    out += body_;
  }

 private:
  const Options& o_;
  std::string host_header_;
  // Scratch space; each connection owns its own factory, so no sharing between threads.
  mutable std::string body_;
};

// What one connection saw. Each connection fills its own; they are merged at the end.
struct Stats {
  uint64_t succeeded = 0;
  std::vector<int64_t> latency_ns;  // successful requests only
  std::map<std::string, uint64_t> errors;         // "409", "transport: ...", ...
  std::map<std::string, std::string> error_samples;  // first response body per status

  void Success(int64_t ns) {
    ++succeeded;
    latency_ns.push_back(ns);
  }
  void Failure(const std::string& what, std::string_view body = {}) {
    ++errors[what];
    if (!body.empty() && !error_samples.count(what))
      error_samples[what] = std::string(body.substr(0, 300));
  }
  void Merge(Stats&& other) {
    succeeded += other.succeeded;
    latency_ns.insert(latency_ns.end(), other.latency_ns.begin(), other.latency_ns.end());
    for (auto& [k, v] : other.errors) errors[k] += v;
    for (auto& [k, v] : other.error_samples) error_samples.emplace(k, std::move(v));
  }
  uint64_t ErrorCount() const {
    uint64_t n = 0;
    for (auto& [k, v] : errors) n += v;
    return n;
  }
};

// A batch of requests shared by all connections: each takes the next index until none are
// left, so fast connections do more of the work, as real clients would.
struct Phase {
  uint64_t base = 0;   // sequence number of the first request (keeps record ids unique)
  uint64_t total = 0;
  std::atomic<uint64_t> next{0};
};

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

// CPU seconds (user + system) used so far by `pid`, all its threads, and its direct children
// (an nginx master and its workers). 0 for a process that is gone.
double ProcessTreeCpuSeconds(int pid) {
  auto one = [](int p) -> double {
    std::ifstream in("/proc/" + std::to_string(p) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close = stat.rfind(')');  // the command name may hold spaces and parentheses
    if (close == std::string::npos) return 0;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {  // fields are numbered from 1
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  };
  double total = one(pid);
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream children(task.path() / "children");
    int child = 0;
    while (children >> child) total += one(child);
  }
  return total;
}

double ServerCpuSeconds(const Options& o) {
  double total = 0;
  for (int pid : o.server_pids) total += ProcessTreeCpuSeconds(pid);
  return total;
}

std::string ErrorText(const char* stage, const error_code& ec) {
  return std::string("transport: ") + stage + ": " + ec.message();
}

ssl::context MakeTlsContext(const Options& o) {
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_3_VERSION);
  ctx.set_verify_mode(ssl::verify_peer);
  ctx.load_verify_file(o.ca);
  ctx.use_certificate_chain_file(o.cert);
  ctx.use_private_key_file(o.key, ssl::context::pem);
  return ctx;
}

// SNI takes host names only, never IP literals (RFC 6066 section 3).
bool IsIpLiteral(const std::string& name) {
  error_code ec;
  asio::ip::make_address(name, ec);
  return !ec;
}

template <typename Stream>
void PrepareTls(Stream& stream, const Options& o) {
  if (!IsIpLiteral(o.server_name))
    SSL_set_tlsext_host_name(stream.native_handle(), o.server_name.c_str());
  stream.set_verify_callback(ssl::host_name_verification(o.server_name));
}

// ---------------------------------------------------------------------------------------
// Async model: every connection is a coroutine on its own strand of one io_context.

class AsyncConnection {
 public:
  AsyncConnection(asio::io_context& ioc, ssl::context& ctx, const Options& o,
                  const tcp::resolver::results_type& endpoints)
      : strand_(asio::make_strand(ioc)), ctx_(ctx), o_(o), endpoints_(endpoints), factory_(o) {}

  asio::any_io_executor executor() const { return strand_; }
  Stats& stats() { return stats_; }
  bool connected() const { return stream_.has_value(); }
  const std::string& last_error() const { return last_error_; }

  asio::awaitable<void> Connect() {
    error_code ec;
    stream_.emplace(strand_, ctx_);
    PrepareTls(*stream_, o_);
    auto& tcp_layer = beast::get_lowest_layer(*stream_);
    tcp_layer.expires_after(std::chrono::seconds(o_.timeout_s));
    co_await tcp_layer.async_connect(endpoints_, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      Drop(ErrorText("connect", ec));
      co_return;
    }
    tcp_layer.socket().set_option(tcp::no_delay(true), ec);
    co_await stream_->async_handshake(ssl::stream_base::client,
                                      asio::redirect_error(asio::use_awaitable, ec));
    if (ec) Drop(ErrorText("handshake", ec));
  }

  asio::awaitable<void> Run(Phase& phase, bool measured) {
    for (;;) {
      uint64_t i = phase.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= phase.total) co_return;
      factory_.Build(phase.base + i, request_);
      Clock::time_point start = Clock::now();
      if (!stream_) {
        co_await Connect();
        if (!stream_) {
          if (measured) stats_.Failure(last_error_);
          continue;
        }
      }
      auto& tcp_layer = beast::get_lowest_layer(*stream_);
      tcp_layer.expires_after(std::chrono::seconds(o_.timeout_s));
      error_code ec;
      co_await asio::async_write(*stream_, asio::buffer(request_),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        Drop(ErrorText("write", ec));
        if (measured) stats_.Failure(last_error_);
        continue;
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      co_await http::async_read(*stream_, buffer_, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        Drop(ErrorText("read", ec));
        if (measured) stats_.Failure(last_error_);
        continue;
      }
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
      const auto& res = parser.get();
      if (measured) {
        if (res.result_int() == static_cast<unsigned>(o_.expect))
          stats_.Success(ns.count());
        else
          stats_.Failure(std::to_string(res.result_int()), res.body());
      }
      if (!res.keep_alive()) Drop("closed by server");
    }
  }

  // Ends the connection politely (TLS close_notify), so the server sees a client that left
  // rather than a truncated stream. Bounded: a server that does not answer gets a second.
  asio::awaitable<void> Shutdown() {
    if (!stream_) co_return;
    error_code ec;
    beast::get_lowest_layer(*stream_).expires_after(std::chrono::seconds(1));
    co_await stream_->async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    Close();
  }

  void Close() {
    if (stream_) {
      error_code ec;
      beast::get_lowest_layer(*stream_).socket().close(ec);
    }
    stream_.reset();
  }

 private:
  void Drop(std::string why) {
    last_error_ = std::move(why);
    Close();
    buffer_.clear();
  }

  asio::strand<asio::io_context::executor_type> strand_;
  ssl::context& ctx_;
  const Options& o_;
  const tcp::resolver::results_type& endpoints_;
  RequestFactory factory_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
  std::string request_;
  std::string last_error_;
  Stats stats_;
};

// Runs `ioc` on `threads` threads (the caller's among them) until it has no work left.
void RunIo(asio::io_context& ioc, int threads) {
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& th : pool) th.join();
  ioc.restart();
}

// ---------------------------------------------------------------------------------------
// Thread-per-connection model: blocking calls, one thread each.

class BlockingConnection {
 public:
  BlockingConnection(asio::io_context& ioc, ssl::context& ctx, const Options& o,
                     const tcp::resolver::results_type& endpoints)
      : ioc_(ioc), ctx_(ctx), o_(o), endpoints_(endpoints), factory_(o) {}

  Stats& stats() { return stats_; }
  bool connected() const { return stream_.has_value(); }
  const std::string& last_error() const { return last_error_; }

  void Connect() {
    error_code ec;
    stream_.emplace(ioc_, ctx_);
    PrepareTls(*stream_, o_);
    asio::connect(stream_->next_layer(), endpoints_, ec);
    if (ec) return Drop(ErrorText("connect", ec));
    auto& sock = stream_->next_layer();
    sock.set_option(tcp::no_delay(true), ec);
    // Blocking sockets have no Asio timers: let the kernel bound each read and write.
    timeval tv{o_.timeout_s, 0};
    setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(sock.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    stream_->handshake(ssl::stream_base::client, ec);
    if (ec) return Drop(ErrorText("handshake", ec));
  }

  void Run(Phase& phase, bool measured) {
    for (;;) {
      uint64_t i = phase.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= phase.total) return;
      factory_.Build(phase.base + i, request_);
      Clock::time_point start = Clock::now();
      if (!stream_) {
        Connect();
        if (!stream_) {
          if (measured) stats_.Failure(last_error_);
          continue;
        }
      }
      error_code ec;
      asio::write(*stream_, asio::buffer(request_), ec);
      if (ec) {
        Drop(ErrorText("write", ec));
        if (measured) stats_.Failure(last_error_);
        continue;
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      http::read(*stream_, buffer_, parser, ec);
      if (ec) {
        Drop(ErrorText("read", ec));
        if (measured) stats_.Failure(last_error_);
        continue;
      }
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
      const auto& res = parser.get();
      if (measured) {
        if (res.result_int() == static_cast<unsigned>(o_.expect))
          stats_.Success(ns.count());
        else
          stats_.Failure(std::to_string(res.result_int()), res.body());
      }
      if (!res.keep_alive()) Drop("closed by server");
    }
  }

  // As AsyncConnection::Shutdown: close_notify, waiting at most a second for the answer.
  void Shutdown() {
    if (!stream_) return;
    timeval tv{1, 0};
    setsockopt(stream_->next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    error_code ec;
    stream_->shutdown(ec);
    Close();
  }

  void Close() {
    if (stream_) {
      error_code ec;
      stream_->next_layer().close(ec);
    }
    stream_.reset();
  }

 private:
  void Drop(std::string why) {
    last_error_ = std::move(why);
    Close();
    buffer_.clear();
  }

  asio::io_context& ioc_;
  ssl::context& ctx_;
  const Options& o_;
  const tcp::resolver::results_type& endpoints_;
  RequestFactory factory_;
  std::optional<ssl::stream<tcp::socket>> stream_;
  beast::flat_buffer buffer_;
  std::string request_;
  std::string last_error_;
  Stats stats_;
};

// Runs fn(connection) for every connection on a thread of its own and waits for all.
template <typename Fn>
void ForEachOnThreads(std::vector<std::unique_ptr<BlockingConnection>>& conns, Fn fn) {
  std::vector<std::thread> threads;
  threads.reserve(conns.size());
  for (auto& c : conns) threads.emplace_back([&fn, &c] { fn(*c); });
  for (auto& t : threads) t.join();
}

// ---------------------------------------------------------------------------------------
// Driver and report

struct Outcome {
  Stats stats;
  size_t connected = 0;       // connections up after the connect phase
  std::map<std::string, uint64_t> connect_errors;  // why the others are not
  double connect_s = 0;       // time to open all connections
  double wall_s = 0;          // measured phase
  double client_cpu_s = 0;    // this process, measured phase
  double server_cpu_s = 0;    // --server-pid processes, measured phase
};

// Connections that failed to open in the connect phase, by error (they retry on first use).
template <typename Conn>
void NoteConnectFailures(const std::vector<std::unique_ptr<Conn>>& conns, Outcome& out) {
  out.connected = 0;
  for (auto& c : conns) {
    if (c->connected()) ++out.connected;
    else ++out.connect_errors[c->last_error()];
  }
}

Outcome RunAsync(const Options& o, ssl::context& ctx, const tcp::resolver::results_type& eps) {
  asio::io_context ioc(o.threads);
  std::vector<std::unique_ptr<AsyncConnection>> conns;
  for (size_t i = 0; i < o.connections; ++i)
    conns.push_back(std::make_unique<AsyncConnection>(ioc, ctx, o, eps));

  auto spawn_all = [&](auto make) {
    for (auto& c : conns)
      asio::co_spawn(c->executor(), make(*c), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);  // a bug, not a network error: stop loudly
      });
  };

  Outcome out;
  Clock::time_point t0 = Clock::now();
  spawn_all([](AsyncConnection& c) { return c.Connect(); });
  RunIo(ioc, o.threads);
  out.connect_s = std::chrono::duration<double>(Clock::now() - t0).count();
  NoteConnectFailures(conns, out);

  Phase warm{0, o.warmup, {}};
  if (o.warmup) {
    spawn_all([&warm](AsyncConnection& c) { return c.Run(warm, false); });
    RunIo(ioc, o.threads);
  }
  Phase measured{o.warmup, o.requests, {}};
  double cpu0 = CpuSeconds(), server0 = ServerCpuSeconds(o);
  t0 = Clock::now();
  spawn_all([&measured](AsyncConnection& c) { return c.Run(measured, true); });
  RunIo(ioc, o.threads);
  out.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  out.client_cpu_s = CpuSeconds() - cpu0;
  out.server_cpu_s = ServerCpuSeconds(o) - server0;
  spawn_all([](AsyncConnection& c) { return c.Shutdown(); });
  RunIo(ioc, o.threads);
  for (auto& c : conns) out.stats.Merge(std::move(c->stats()));
  return out;
}

Outcome RunThreads(const Options& o, ssl::context& ctx, const tcp::resolver::results_type& eps) {
  asio::io_context ioc;
  std::vector<std::unique_ptr<BlockingConnection>> conns;
  for (size_t i = 0; i < o.connections; ++i)
    conns.push_back(std::make_unique<BlockingConnection>(ioc, ctx, o, eps));

  Outcome out;
  Clock::time_point t0 = Clock::now();
  ForEachOnThreads(conns, [](BlockingConnection& c) { c.Connect(); });
  out.connect_s = std::chrono::duration<double>(Clock::now() - t0).count();
  NoteConnectFailures(conns, out);

  Phase warm{0, o.warmup, {}};
  if (o.warmup) ForEachOnThreads(conns, [&warm](BlockingConnection& c) { c.Run(warm, false); });
  Phase measured{o.warmup, o.requests, {}};
  double cpu0 = CpuSeconds(), server0 = ServerCpuSeconds(o);
  t0 = Clock::now();
  ForEachOnThreads(conns, [&measured](BlockingConnection& c) { c.Run(measured, true); });
  out.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  out.client_cpu_s = CpuSeconds() - cpu0;
  out.server_cpu_s = ServerCpuSeconds(o) - server0;
  ForEachOnThreads(conns, [](BlockingConnection& c) { c.Shutdown(); });
  for (auto& c : conns) out.stats.Merge(std::move(c->stats()));
  return out;
}

// Nearest-rank percentile of sorted values, in milliseconds.
double PercentileMs(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

double Round(double v, int digits) {
  double scale = 1;
  for (int i = 0; i < digits; ++i) scale *= 10;
  return static_cast<double>(static_cast<int64_t>(v * scale + 0.5)) / scale;
}

int Report(const Options& o, Outcome& out) {
  Stats& s = out.stats;
  std::sort(s.latency_ns.begin(), s.latency_ns.end());
  uint64_t errors = s.ErrorCount();
  uint64_t completed = s.succeeded + errors;
  double rps = out.wall_s > 0 ? static_cast<double>(completed) / out.wall_s : 0;
  double sps = out.wall_s > 0 ? static_cast<double>(s.succeeded) / out.wall_s : 0;
  double mean_ms = 0;
  for (int64_t ns : s.latency_ns) mean_ms += static_cast<double>(ns) / 1e6;
  if (!s.latency_ns.empty()) mean_ms /= static_cast<double>(s.latency_ns.size());
  double p50 = PercentileMs(s.latency_ns, 50), p90 = PercentileMs(s.latency_ns, 90),
         p99 = PercentileMs(s.latency_ns, 99), max = PercentileMs(s.latency_ns, 100);
  double cpu_us = completed ? out.client_cpu_s * 1e6 / static_cast<double>(completed) : 0;
  double server_us = completed ? out.server_cpu_s * 1e6 / static_cast<double>(completed) : 0;
  const char* mode = o.mode == Options::Mode::kPush ? "push" : "get";
  const char* model = o.model == Options::Model::kAsync ? "async" : "threads";

  if (o.json) {
    nlohmann::json j = {
        {"url", o.url},
        {"mode", mode},
        {"model", model},
        {"threads", o.model == Options::Model::kAsync ? o.threads
                                                      : static_cast<int>(o.connections)},
        {"connections", o.connections},
        {"requests", o.requests},
        {"warmup", o.warmup},
        {"expect", o.expect},
        {"completed", completed},
        {"succeeded", s.succeeded},
        {"errors", s.errors},
        {"error_samples", s.error_samples},
        {"connected", out.connected},
        {"connect_errors", out.connect_errors},
        {"connect_s", Round(out.connect_s, 4)},
        {"wall_s", Round(out.wall_s, 4)},
        {"requests_per_s", Round(rps, 1)},
        {"succeeded_per_s", Round(sps, 1)},
        {"latency_ms",
         {{"mean", Round(mean_ms, 3)},
          {"p50", Round(p50, 3)},
          {"p90", Round(p90, 3)},
          {"p99", Round(p99, 3)},
          {"max", Round(max, 3)}}},
        {"client_cpu_s", Round(out.client_cpu_s, 3)},
        {"client_cpu_us_per_request", Round(cpu_us, 1)},
    };
    if (!o.server_pids.empty()) {
      j["server_cpu_s"] = Round(out.server_cpu_s, 3);
      j["server_cpu_us_per_request"] = Round(server_us, 1);
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("safegate-load %s %s: %zu connections, %llu requests (+%llu warmup), %s model",
                mode, o.url.c_str(), o.connections, static_cast<unsigned long long>(o.requests),
                static_cast<unsigned long long>(o.warmup), model);
    if (o.model == Options::Model::kAsync) std::printf(", %d thread(s)", o.threads);
    std::printf("\n  connect      %zu of %zu connections up in %.3f s\n", out.connected,
                o.connections, out.connect_s);
    for (auto& [what, n] : out.connect_errors)
      std::printf("    not up: %s (%llu)\n", what.c_str(), static_cast<unsigned long long>(n));
    std::printf("  completed    %llu (%llu x %d, %llu errors)\n",
                static_cast<unsigned long long>(completed),
                static_cast<unsigned long long>(s.succeeded), o.expect,
                static_cast<unsigned long long>(errors));
    for (auto& [what, n] : s.errors) {
      std::printf("    error %-40s %llu\n", what.c_str(), static_cast<unsigned long long>(n));
      auto sample = s.error_samples.find(what);
      if (sample != s.error_samples.end())
        std::printf("      first body: %s\n", sample->second.c_str());
    }
    std::printf("  wall time    %.3f s\n", out.wall_s);
    std::printf("  throughput   %.1f requests/s, %.1f succeeded/s\n", rps, sps);
    std::printf("  latency ms   p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f"
                " (succeeded requests)\n", p50, p90, p99, max, mean_ms);
    std::printf("  client CPU   %.2f s (%.0f%% of one core, %.1f us/request)\n",
                out.client_cpu_s, out.wall_s > 0 ? 100 * out.client_cpu_s / out.wall_s : 0,
                cpu_us);
    if (!o.server_pids.empty())
      std::printf("  server CPU   %.2f s (%.0f%% of one core, %.1f us/request)\n", out.server_cpu_s,
                  out.wall_s > 0 ? 100 * out.server_cpu_s / out.wall_s : 0, server_us);
  }
  return errors == 0 && s.succeeded == o.requests ? 0 : 1;
}

int Main(int argc, char** argv) {
  Options o;
  if (auto err = ParseOptions(argc, argv, o)) {
    if (*err == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "safegate-load: %s\n%s", err->c_str(), kUsage);
    return 2;
  }
  std::optional<ssl::context> ctx;
  try {
    ctx.emplace(MakeTlsContext(o));
  } catch (const boost::system::system_error& e) {
    std::fprintf(stderr, "safegate-load: cannot load TLS files (--ca %s, --cert %s, --key %s): %s\n",
                 o.ca.c_str(), o.cert.c_str(), o.key.c_str(), e.what());
    return 2;
  }
  asio::io_context resolver_ioc;
  tcp::resolver resolver(resolver_ioc);
  error_code ec;
  auto endpoints = resolver.resolve(o.host, o.port, ec);
  if (ec) {
    std::fprintf(stderr, "safegate-load: cannot resolve %s:%s: %s\n", o.host.c_str(),
                 o.port.c_str(), ec.message().c_str());
    return 2;
  }
  Outcome out = o.model == Options::Model::kAsync ? RunAsync(o, *ctx, endpoints)
                                                  : RunThreads(o, *ctx, endpoints);
  return Report(o, out);
}

}  // namespace
}  // namespace safegate::bench

int main(int argc, char** argv) { return safegate::bench::Main(argc, argv); }
