// The network side of safegated: listeners, connections, signals, reload, deadline timer.
//
// Shape (after Boost.Beast's advanced server): one io_context run by config.threads threads;
// each connection is a session object on its own strand; every read and write has a
// deadline; one request is read, handled and answered before the next is read (so at most
// one reply is queued per connection). Gateway callbacks arrive on the store's writer
// thread and are posted back onto the session's strand (Api does that).
#include "daemon/server/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <openssl/ssl.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "daemon/core/drop_folder.h"
#include "daemon/server/api.h"
#include "daemon/server/cert_expiry.h"
#include "daemon/server/event_log.h"
#include "daemon/server/metrics.h"
#include "daemon/server/notify.h"
#include "daemon/server/outbox_sender.h"
#include "daemon/server/store_probe.h"
#include "daemon/server/syslog_forwarder.h"
#include "daemon/server/tls.h"

namespace safegate::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using nlohmann::json;
using Strand = asio::strand<asio::io_context::executor_type>;

namespace {

// How long a connection being closed may take to say goodbye (TLS close_notify, or
// draining what a refused client is still sending so that it reads our reply, not a reset).
constexpr std::chrono::seconds kCloseTimeout{2};
// The admin listener serves a few operators' scrapers, not the agencies.
constexpr int kMaxAdminConnections = 32;
// Certificates are re-read and their expiry logged this often (and at start and on reload).
constexpr std::chrono::hours kCertificateCheckInterval{24};
#ifndef SAFEGATE_VERSION
#define SAFEGATE_VERSION "unknown"
#endif
constexpr const char* kVersion = SAFEGATE_VERSION;
constexpr uint32_t kAdminHeaderLimit = 8 * 1024;
constexpr size_t kReadChunk = 16 * 1024;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string Endpoint(const tcp::socket& socket) {
  error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return "-";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::string_view MethodName(http::verb verb) {
  switch (verb) {
    case http::verb::get:
    case http::verb::post:
    case http::verb::put:
    case http::verb::delete_:
    case http::verb::head:
    case http::verb::patch:
    case http::verb::options:
      return http::to_string(verb);
    default:
      return "OTHER";
  }
}

// errno in words, for the few POSIX calls made here.
Status PosixError(std::string_view what, const std::string& path, int error) {
  return Status::Internal(std::string(what) + " " + path + ": " + std::strerror(error));
}

// Writes `content` to `path` so that readers see the old file or the new one, never a
// half-written one: write a temporary file, fsync, rename over, fsync the directory.
Status WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError("cannot create", tmp, errno);
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return PosixError("cannot write", tmp, e);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    return PosixError("cannot fsync", tmp, e);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return PosixError("cannot rename to", path, errno);
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

// The caller a client certificate names: a registered agency of this area, or a peer gateway
// of another area (role gateway, agency "gateway:<area>": it may only deliver transfer
// messages, see Api). Null when the certificate is neither.
std::optional<Caller> CallerOf(const config::Registry& registry, const std::string& fingerprint) {
  if (const config::Agency* a = registry.FindByFingerprint(fingerprint)) {
    return Caller{a->id, a->role, a->area};
  }
  if (const config::Peer* p = registry.FindPeerByFingerprint(fingerprint)) {
    return Caller{"gateway:" + p->area, config::Role::kGateway, p->area};
  }
  return std::nullopt;
}

}  // namespace

// Something the server can ask to wind down (a public or an admin connection).
class Connection {
 public:
  virtual ~Connection() = default;
  // Posted onto the connection's strand at shutdown: close if idle, else finish the
  // request in progress and close.
  virtual void Stop() = 0;
};

class Server::Impl {
 public:
  Impl(std::shared_ptr<const config::Config> config,
       std::shared_ptr<const config::Registry> registry, Gateway* gateway, const Clock* clock,
       ServerOptions options, std::shared_ptr<EventLog> log)
      : config_(std::move(config)),
        gateway_(gateway),
        clock_(clock),
        options_(options),
        log_(std::move(log)),
        api_(*gateway_, *log_),
        registry_(std::move(registry)),
        ioc_(std::make_unique<asio::io_context>(static_cast<int>(std::max(1u, config_->threads)))),
        control_(asio::make_strand(*ioc_)),
        probe_(config_->data_dir) {}

  ~Impl();

  Status Init();
  Status Run();
  void RequestStop();
  Status Reload();

  // For connections.
  const config::Config& config() const { return *config_; }
  const EventLog& log() const { return *log_; }
  Metrics& metrics() { return metrics_; }
  const Api& api() const { return api_; }
  Gateway& gateway() { return *gateway_; }
  std::shared_ptr<const config::Registry> registry() const {
    std::lock_guard lock(mu_);
    return registry_;
  }
  std::shared_ptr<ssl::context> ssl_context() const {
    std::lock_guard lock(mu_);
    return ssl_ctx_;
  }
  // REQUIRES: called once per connection, before it starts.
  void Register(const std::shared_ptr<Connection>& c);
  // Called from the connection's destructor.
  void Unregister(Connection* c);
  // Renders /metrics on the blocking pool and passes the text to `done` there.
  void RenderMetrics(std::function<void(std::string)> done) {
    asio::post(blocking_pool_, [this, done = std::move(done)] {
      metrics_.SetLatestTreeHead(probe_.LatestTreeHead());
      done(metrics_.Render(gateway_->GetStats(), clock_->NowMs()));
    });
  }
  void AdminOpened() { admin_open_.fetch_add(1); }
  void AdminClosed() { admin_open_.fetch_sub(1); }

  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;

 private:
  void Accept();
  void OnAccept(error_code ec, tcp::socket socket);
  void AcceptAdmin();
  void OnAcceptAdmin(error_code ec, tcp::socket socket);
  void WaitForSignal();
  void ScheduleSweep();
  void SweepRetentionIfDue();  // R9: at most hourly, from the deadline sweep's timer
  // WATCHDOG=1 to systemd from the event loop, every half of WatchdogSec (when set).
  void ScheduleWatchdog(std::chrono::microseconds interval);
  // Re-reads every certificate (server, CA, registry) once a day: metrics and warnings.
  void ScheduleCertificateCheck();
  // Reads the certificates of `config_` and `registry`, publishes their expiry to /metrics and
  // logs those expired or expiring within tls.expiry_warning. Blocking file I/O.
  void CheckCertificates(const config::Registry* registry);
  void BeginStop();
  void FinishStop();
  void RunThread();
  Status StartDropFolders();  // from Run(); the watcher stops before the Gateway shuts down
  Status Bind(tcp::acceptor& acceptor, const config::Config::Listener& where, std::string_view key,
              uint16_t* port);

  std::shared_ptr<const config::Config> config_;
  Gateway* gateway_;
  const Clock* clock_;
  ServerOptions options_;
  std::shared_ptr<EventLog> log_;
  Metrics metrics_;
  Api api_;

  mutable std::mutex mu_;  // guards registry_ and ssl_ctx_ (replaced on reload)
  std::shared_ptr<const config::Registry> registry_;
  std::shared_ptr<ssl::context> ssl_ctx_;
  std::mutex reload_mu_;  // one reload at a time
  int64_t last_retention_sweep_ms_ = 0;  // control strand only

  std::mutex connections_mu_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;

  // Declared in this order and torn down explicitly in ~Impl: I/O objects first, then the
  // io_context (whose destruction destroys pending handlers, and with them any remaining
  // connections, which still use the members above).
  std::unique_ptr<asio::io_context> ioc_;
  // Acceptors, signals, the sweep timer and the stop sequence. Reset before ioc_ (a strand
  // must not outlive its io_context).
  std::optional<Strand> control_;
  std::optional<tcp::acceptor> listener_;
  std::optional<tcp::acceptor> admin_;
  std::optional<asio::signal_set> signals_;
  std::optional<asio::steady_timer> sweep_timer_;
  std::optional<asio::steady_timer> drain_timer_;
  std::optional<asio::steady_timer> accept_retry_timer_;
  std::optional<asio::steady_timer> watchdog_timer_;
  std::optional<asio::steady_timer> certificate_timer_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  // Work that may block on disk, kept off the network threads: SIGHUP reloads (they read
  // files) and /metrics (the store's statistics may query the database).
  asio::thread_pool blocking_pool_{1};
  StoreProbe probe_;  // used on blocking_pool_ only
  std::unique_ptr<core::DropWatcher> drops_;  // [[drop]] folders, from Run() to the stop
  std::unique_ptr<SyslogForwarder> forwarder_;  // [audit.forward], Run() to the stop
  std::unique_ptr<OutboxSender> outbox_;      // transfer messages to peers, Run() to the stop

  std::atomic<int> admin_open_{0};
  std::atomic<bool> stopping_{false};
  bool finished_ = false;  // guarded by control_
  bool ran_ = false;
};

// ---------------------------------------------------------------------------------------
// A connection on the public listener: TLS handshake, identify the agency, then requests.
class TlsSession final : public Connection, public std::enable_shared_from_this<TlsSession> {
 public:
  TlsSession(Server::Impl& server, tcp::socket socket, std::shared_ptr<ssl::context> ctx)
      : server_(server),
        limits_(server.config().limits),
        ctx_(std::move(ctx)),
        stream_(std::move(socket), *ctx_) {
    peer_address_ = Endpoint(beast::get_lowest_layer(stream_).socket());
    server_.metrics().ConnectionOpened();
  }

  ~TlsSession() override {
    server_.metrics().ConnectionClosed();
    server_.Unregister(this);
  }

  void Start() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&TlsSession::Handshake, shared_from_this()));
  }

  void Stop() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      // Waiting for a request (or still shaking hands): nothing is lost by closing now.
      if (!self->busy_) beast::get_lowest_layer(self->stream_).cancel();
    });
  }

 private:
  void Handshake() {
    stream_.set_verify_callback([this](bool preverified, ssl::verify_context& vc) {
      return RecordVerification(peer_, preverified, vc.native_handle());
    });
    beast::get_lowest_layer(stream_).expires_after(limits_.handshake_timeout);
    stream_.async_handshake(
        ssl::stream_base::server,
        beast::bind_front_handler(&TlsSession::OnHandshake, shared_from_this()));
  }

  void OnHandshake(error_code ec) {
    if (ec) return HandshakeFailed(ec);
    X509* cert = SSL_get0_peer_certificate(stream_.native_handle());
    fingerprint_ = Sha256Fingerprint(cert);
    const auto registry = server_.registry();
    const std::optional<Caller> known = CallerOf(*registry, fingerprint_);
    if (!known) {
      TlsRefusal refusal;
      refusal.result = "rejected";
      refusal.reason = "unregistered";
      refusal.detail = "unregistered certificate";
      refusal.audit = true;
      return Refused(refusal, "certificate not in the agency registry");
    }
    caller_ = *known;
    server_.metrics().CountHandshake("ok");
    server_.log().Event(LogLevel::kDebug, "connection_authenticated",
                        {{"peer", peer_address_}, {"agency", caller_.agency}});
    WaitForRequest();
  }

  void HandshakeFailed(error_code ec) {
    if (ec == asio::error::operation_aborted && closing_) return Close();
    HandshakeError error;
    if (ec == beast::error::timeout) {
      error.kind = HandshakeError::Kind::kTimeout;
    } else if (ec.category() == asio::error::get_ssl_category()) {
      error.kind = HandshakeError::Kind::kTls;
      error.openssl_code = static_cast<unsigned long>(ec.value());
    } else {
      error.kind = HandshakeError::Kind::kClosed;
    }
    error.message = ec.message();
    const TlsRefusal refusal = TranslateHandshakeFailure(error, peer_);
    if (refusal.audit) return Refused(refusal, peer_.x509_error_text);
    server_.metrics().CountHandshake(refusal.result);
    server_.log().Event(
        refusal.result == "no_certificate" ? LogLevel::kWarn : LogLevel::kInfo,
        refusal.result == "no_certificate" ? "tls_no_certificate" : "tls_handshake_failed",
        {{"peer", peer_address_}, {"result", refusal.result}, {"detail", refusal.detail}});
    Close();
  }

  // A certificate was presented and refused: count, log, audit tls_rejected, close. The
  // session stays alive until the audit entry is committed, so that shutdown waits for it.
  void Refused(const TlsRefusal& refusal, const std::string& openssl_reason) {
    const std::string fingerprint = fingerprint_.empty() ? peer_.fingerprint : fingerprint_;
    server_.metrics().CountHandshake("rejected");
    server_.metrics().CountTlsRejection(refusal.reason);
    server_.log().Event(LogLevel::kWarn, "tls_rejected",
                        {{"peer", peer_address_},
                         {"fingerprint", fingerprint},
                         {"reason", refusal.detail},
                         {"openssl", openssl_reason}});
    Rejection rejection;
    rejection.action = "tls_rejected";
    rejection.actor = "-";
    rejection.reason = refusal.detail;
    rejection.detail = {{"fingerprint", fingerprint}, {"reason", openssl_reason}};
    server_.gateway().Reject(std::move(rejection), [self = shared_from_this()](Result<Empty> r) {
      asio::post(self->stream_.get_executor(), [self, r = std::move(r)] {
        if (!r.ok()) {
          self->server_.log().Event(LogLevel::kError, "audit_failed",
                                    {{"action", "tls_rejected"}, {"error", r.status().ToString()}});
        }
      });
    });
    Close();
  }

  // Waits for the first byte of the next request under the idle timeout; the request then
  // has read_timeout to arrive whole.
  void WaitForRequest() {
    busy_ = false;
    if (closing_) return GracefulClose();
    if (buffer_.size() > 0) return StartRequest();
    beast::get_lowest_layer(stream_).expires_after(limits_.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(kReadChunk),
        beast::bind_front_handler(&TlsSession::OnFirstBytes, shared_from_this()));
  }

  void OnFirstBytes(error_code ec, size_t n) {
    buffer_.commit(n);
    if (ec) {
      if (ec == beast::error::timeout) {
        server_.log().Event(LogLevel::kDebug, "idle_timeout",
                            {{"peer", peer_address_}, {"agency", caller_.agency}});
      }
      return Close();
    }
    StartRequest();
  }

  void StartRequest() {
    busy_ = true;
    started_ = std::chrono::steady_clock::now();
    beast::get_lowest_layer(stream_).expires_after(limits_.read_timeout);
    parser_.emplace();
    parser_->header_limit(limits_.max_header_bytes);
    // The body limit is checked by hand once the header is in, so that an oversized
    // Content-Length is refused with the request's route known and before any body is read.
    parser_->body_limit(boost::none);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&TlsSession::OnHeader, shared_from_this()));
  }

  void OnHeader(error_code ec, size_t) {
    if (ec) return ReadFailed(ec);
    const auto& req = parser_->get();
    route_ = Api::RouteOf(req.target());
    // The parser has already refused a malformed or repeated Content-Length. (Read from the
    // field rather than parser::content_length(), whose boost::optional trips GCC's
    // -Wmaybe-uninitialized under the sanitizers.)
    const std::string_view length_field = req[http::field::content_length];
    uint64_t length = 0;
    if (!length_field.empty()) {
      std::from_chars(length_field.data(), length_field.data() + length_field.size(), length);
    }
    if (length > limits_.max_body_bytes) {
      return RefuseAndClose(
          Status(ErrorCode::kPayloadTooLarge,
                 "request body of " + std::to_string(length) + " bytes exceeds the limit of " +
                     std::to_string(limits_.max_body_bytes) + " bytes"),
          0);
    }
    parser_->body_limit(limits_.max_body_bytes);
    if (beast::iequals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
      continue_.emplace(http::status::continue_, req.version());
      return http::async_write(stream_, *continue_,
                               [self = shared_from_this()](error_code wec, size_t) {
                                 self->continue_.reset();
                                 if (wec) return self->Close();
                                 self->ReadBody();
                               });
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&TlsSession::OnBody, shared_from_this()));
  }

  void OnBody(error_code ec, size_t) {
    if (ec) return ReadFailed(ec);
    HandleRequest();
  }

  // A request that could not be read whole.
  void ReadFailed(error_code ec) {
    if (ec == http::error::header_limit) {
      return RefuseAndClose(Status::BadRequest("request header larger than " +
                                               std::to_string(limits_.max_header_bytes) + " bytes"),
                            431);
    }
    if (ec == http::error::body_limit) {
      return RefuseAndClose(Status(ErrorCode::kPayloadTooLarge,
                                   "request body exceeds the limit of " +
                                       std::to_string(limits_.max_body_bytes) + " bytes"),
                            0);
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return RefuseAndClose(Status::BadRequest("malformed HTTP request: " + ec.message()), 0);
    }
    // Timeout, reset, or the client went away mid-request: nobody to answer.
    server_.log().Event(LogLevel::kInfo, "request_abandoned",
                        {{"peer", peer_address_},
                         {"agency", caller_.agency},
                         {"reason", ec == beast::error::timeout ? "timeout" : ec.message()}});
    Close();
  }

  void HandleRequest() {
    auto req = parser_->release();
    parser_.reset();
    keep_alive_ = req.keep_alive();
    method_ = std::string(MethodName(req.method()));

    // The registry may have changed since the handshake (SIGHUP): re-resolve the caller.
    const auto registry = server_.registry();
    const std::optional<Caller> known = CallerOf(*registry, fingerprint_);
    if (!known) {
      return RefuseAndClose(Status::Unauthenticated("client certificate is no longer registered"),
                            0, "-");
    }
    caller_ = *known;

    ApiRequest request;
    request.method = std::string(req.method_string().substr(0, 32));
    request.target = std::string(req.target());
    request.content_type = std::string(req[http::field::content_type]);
    request.accept = std::string(req[http::field::accept]);
    request.has_body = !req.body().empty();
    request.body = std::move(req.body());
    auto self = shared_from_this();
    server_.api().Handle(caller_, std::move(request), Poster(),
                         [self](ApiReply reply) { self->Send(std::move(reply), false); });
  }

  // Audits and answers a request this layer refused, then closes the connection.
  // `status_override` replaces the HTTP status (431); 0 keeps HttpStatusFor(code).
  void RefuseAndClose(const Status& status, int status_override, std::string actor = "") {
    busy_ = true;
    keep_alive_ = false;
    if (method_.empty() && parser_ && parser_->is_header_done()) {
      method_ = std::string(MethodName(parser_->get().method()));
    }
    auto self = shared_from_this();
    server_.api().Refuse(actor.empty() ? caller_.agency : actor, route_, status, status_override,
                         Poster(), [self](ApiReply reply) { self->Send(std::move(reply), true); });
  }

  Post Poster() {
    return [self = shared_from_this()](std::function<void()> fn) {
      asio::post(self->stream_.get_executor(), std::move(fn));
    };
  }

  // Writes one reply. `unread_input` means the request was not read whole: after the
  // reply, stop sending and drain what the client is still sending, so that it sees the
  // reply rather than a connection reset.
  void Send(ApiReply reply, bool unread_input) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(reply.status), 11);
    if (reply.status != 204) {
      res->set(http::field::content_type,
               reply.content_type.empty() ? "application/json" : reply.content_type);
      res->body() = std::move(reply.body);
    }
    res->set(http::field::cache_control, "no-store");
    res->set("X-Content-Type-Options", "nosniff");
    if (!reply.allow.empty()) res->set(http::field::allow, reply.allow);
    const bool close = unread_input || !keep_alive_ || closing_;
    res->keep_alive(!close);
    res->prepare_payload();

    const double seconds = SecondsSince(started_);
    server_.metrics().CountRequest(reply.route, reply.status, seconds);
    json fields = {{"agency", caller_.agency.empty() ? "-" : caller_.agency},
                   {"method", method_.empty() ? "-" : method_},
                   {"route", reply.route},
                   {"status", reply.status},
                   {"ms", static_cast<int64_t>(seconds * 1000)}};
    if (!reply.error.empty()) fields["error"] = reply.error;
    server_.log().Event(reply.status >= 500 ? LogLevel::kError : LogLevel::kInfo, "request",
                        fields);
    method_.clear();
    route_ = "unknown";

    beast::get_lowest_layer(stream_).expires_after(limits_.read_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, close, unread_input](error_code ec, size_t) {
                        if (ec) return self->Close();
                        if (unread_input) return self->LingeringClose();
                        if (close) return self->GracefulClose();
                        self->WaitForRequest();
                      });
  }

  // TLS close_notify, bounded, then close.
  void GracefulClose() {
    beast::get_lowest_layer(stream_).expires_after(kCloseTimeout);
    stream_.async_shutdown([self = shared_from_this()](error_code) { self->Close(); });
  }

  void LingeringClose() {
    auto& tcp_stream = beast::get_lowest_layer(stream_);
    error_code ignored;
    tcp_stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp_stream.expires_after(kCloseTimeout);
    Drain();
  }

  void Drain() {
    auto& tcp_stream = beast::get_lowest_layer(stream_);
    drain_.resize(kReadChunk);
    tcp_stream.async_read_some(asio::buffer(drain_),
                               [self = shared_from_this()](error_code ec, size_t) {
                                 if (ec) return self->Close();
                                 self->Drain();
                               });
  }

  void Close() {
    auto& socket = beast::get_lowest_layer(stream_).socket();
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  Server::Impl& server_;
  const config::Config::Limits& limits_;
  std::shared_ptr<ssl::context> ctx_;  // the context this connection was accepted with
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::vector<char> drain_;
  PeerVerification peer_;
  std::string peer_address_;
  std::string fingerprint_;
  Caller caller_;
  std::string route_ = "unknown";
  std::string method_;
  bool keep_alive_ = true;
  bool busy_ = false;     // a request is being read, handled or answered
  bool closing_ = false;  // shutting down: close after the reply in progress
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// ---------------------------------------------------------------------------------------
// A connection on the admin listener (plain HTTP, loopback): /healthz and /metrics.
// Its refusals are not audited: it is the operators' plane and carries no agency data.
class AdminSession final : public Connection, public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(Server::Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {
    server_.AdminOpened();
  }
  ~AdminSession() override {
    server_.AdminClosed();
    server_.Unregister(this);
  }

  void Start() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&AdminSession::Read, shared_from_this()));
  }

  void Stop() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      if (!self->busy_) self->stream_.cancel();
    });
  }

 private:
  void Read() {
    busy_ = false;
    if (closing_) return Close();
    parser_.emplace();
    parser_->header_limit(kAdminHeaderLimit);
    parser_->body_limit(0);
    stream_.expires_after(server_.config().limits.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&AdminSession::OnRead, shared_from_this()));
  }

  void OnRead(error_code ec, size_t) {
    if (ec) return Close();
    busy_ = true;
    const auto& req = parser_->get();
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    auto res = std::make_shared<http::response<http::string_body>>(http::status::ok, req.version());
    if (path != "/healthz" && path != "/metrics") {
      res->result(http::status::not_found);
      res->set(http::field::content_type, "application/json");
      res->body() = ErrorBody(Status::NotFound("no endpoint at this path")).dump();
    } else if (req.method() != http::verb::get) {
      res->result(http::status::method_not_allowed);
      res->set(http::field::allow, "GET");
      res->set(http::field::content_type, "application/json");
      res->body() = ErrorBody(Status::BadRequest("method not allowed here; allowed: GET")).dump();
    } else if (path == "/healthz") {
      res->set(http::field::content_type, "application/json");
      res->body() = R"({"status":"ok"})";
    } else {
      res->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res->keep_alive(req.keep_alive());
      server_.RenderMetrics([self = shared_from_this(), res](std::string text) {
        asio::post(self->stream_.get_executor(), [self, res, text = std::move(text)]() mutable {
          res->body() = std::move(text);
          self->Write(res);
        });
      });
      return;
    }
    res->keep_alive(req.keep_alive());
    Write(res);
  }

  void Write(std::shared_ptr<http::response<http::string_body>> res) {
    res->set(http::field::cache_control, "no-store");
    res->keep_alive(res->keep_alive() && !closing_);
    res->prepare_payload();
    stream_.expires_after(server_.config().limits.read_timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](error_code wec, size_t) {
      if (wec || !res->keep_alive()) return self->Close();
      self->Read();
    });
  }

  void Close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  Server::Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  bool busy_ = false;
  bool closing_ = false;
};

// ---------------------------------------------------------------------------------------

Server::Impl::~Impl() {
  // Stop and join everything that could still run handlers, then destroy the I/O objects
  // and finally the io_context (and with it any connections its queues still hold).
  ioc_->stop();
  blocking_pool_.join();
  work_.reset();
  accept_retry_timer_.reset();
  drain_timer_.reset();
  sweep_timer_.reset();
  watchdog_timer_.reset();
  certificate_timer_.reset();
  signals_.reset();
  admin_.reset();
  listener_.reset();
  control_.reset();
  ioc_.reset();
}

void Server::Impl::Register(const std::shared_ptr<Connection>& c) {
  std::lock_guard lock(connections_mu_);
  connections_.emplace(c.get(), c);
}

void Server::Impl::Unregister(Connection* c) {
  bool drained;
  {
    std::lock_guard lock(connections_mu_);
    connections_.erase(c);
    drained = connections_.empty();
  }
  if (drained && stopping_.load() && ioc_ && control_) {
    asio::post(*control_, [this] { FinishStop(); });
  }
}

Status Server::Impl::Bind(tcp::acceptor& acceptor, const config::Config::Listener& where,
                          std::string_view key, uint16_t* port) {
  error_code ec;
  const auto address = asio::ip::make_address(where.address, ec);
  if (ec) {
    return Status::Invalid(std::string(key) + ".address: \"" + where.address +
                           "\" is not an IP address");
  }
  const tcp::endpoint endpoint(address, where.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) *port = acceptor.local_endpoint(ec).port();
  if (ec) {
    return Status::Unavailable("cannot listen on " + where.address + ":" +
                               std::to_string(where.port) + " (" + std::string(key) +
                               "): " + ec.message());
  }
  return Status::Ok();
}

Status Server::Impl::Init() {
  auto ctx = MakeServerSslCtx(config_->tls);
  if (!ctx.ok()) return ctx.status();
  // An expired certificate would be refused by every client: better not to start at all,
  // and say why. A private key others can read is refused like the store's keys are.
  if (Status s = CheckServerCertificateCurrent(config_->tls, clock_->NowMs()); !s.ok()) return s;
  if (Status s = CheckPrivateKeyPermissions(config_->tls.key, "tls.key"); !s.ok()) return s;
  ssl_ctx_ = std::make_shared<ssl::context>(ctx->release());
  // Parsing an ingested export is CPU work: kept off the network threads.
  api_.SetWorker([this](std::function<void()> fn) { asio::post(blocking_pool_, std::move(fn)); });
  metrics_.SetBuildInfo(kVersion, config_->area, clock_->NowMs());
  CheckCertificates(registry_.get());

  error_code ec;
  const auto admin_address = asio::ip::make_address(config_->admin.address, ec);
  if (ec || !admin_address.is_loopback()) {
    return Status::Invalid("admin.address: \"" + config_->admin.address +
                           "\" must be a loopback address (127.0.0.1 or ::1): the admin "
                           "listener has no authentication");
  }
  listener_.emplace(*control_);
  admin_.emplace(*control_);
  if (Status s = Bind(*listener_, config_->listen, "listen", &port_); !s.ok()) return s;
  if (Status s = Bind(*admin_, config_->admin, "admin", &admin_port_); !s.ok()) return s;
  sweep_timer_.emplace(*control_);
  drain_timer_.emplace(*control_);
  accept_retry_timer_.emplace(*control_);
  watchdog_timer_.emplace(*control_);
  certificate_timer_.emplace(*control_);
  if (options_.handle_signals) signals_.emplace(*control_, SIGINT, SIGTERM, SIGHUP);
  return Status::Ok();
}

void Server::Impl::Accept() {
  listener_->async_accept(asio::make_strand(*ioc_),
                          beast::bind_front_handler(&Impl::OnAccept, this));
}

void Server::Impl::OnAccept(error_code ec, tcp::socket socket) {
  if (stopping_.load()) return;
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // Out of descriptors or memory: back off briefly instead of spinning.
    log_->Event(LogLevel::kError, "accept_failed", {{"error", ec.message()}});
    accept_retry_timer_->expires_after(std::chrono::milliseconds(100));
    accept_retry_timer_->async_wait([this](error_code wec) {
      if (!wec && !stopping_.load()) Accept();
    });
    return;
  }
  if (metrics_.OpenConnections() >= static_cast<int64_t>(config_->limits.max_connections)) {
    metrics_.CountConnectionRefused();
    log_->Event(LogLevel::kWarn, "connection_refused",
                {{"peer", Endpoint(socket)},
                 {"reason", "max_connections"},
                 {"max_connections", config_->limits.max_connections}});
    error_code ignored;
    socket.close(ignored);
  } else {
    auto session = std::make_shared<TlsSession>(*this, std::move(socket), ssl_context());
    Register(session);
    session->Start();
  }
  Accept();
}

void Server::Impl::AcceptAdmin() {
  admin_->async_accept(asio::make_strand(*ioc_),
                       beast::bind_front_handler(&Impl::OnAcceptAdmin, this));
}

void Server::Impl::OnAcceptAdmin(error_code ec, tcp::socket socket) {
  if (stopping_.load() || ec == asio::error::operation_aborted) return;
  if (ec) {
    log_->Event(LogLevel::kError, "accept_failed",
                {{"listener", "admin"}, {"error", ec.message()}});
  } else if (admin_open_.load() >= kMaxAdminConnections) {
    error_code ignored;
    socket.close(ignored);
  } else {
    auto session = std::make_shared<AdminSession>(*this, std::move(socket));
    Register(session);
    session->Start();
  }
  AcceptAdmin();
}

void Server::Impl::WaitForSignal() {
  signals_->async_wait([this](error_code ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      log_->Event(LogLevel::kInfo, "signal", {{"signal", "SIGHUP"}});
      asio::post(blocking_pool_, [this] { (void)Reload(); });
      return WaitForSignal();
    }
    log_->Event(LogLevel::kInfo, "signal", {{"signal", signo == SIGINT ? "SIGINT" : "SIGTERM"}});
    RequestStop();
  });
}

void Server::Impl::ScheduleSweep() {
  if (config_->mailbox.sweep_interval.count() <= 0) return;  // sweeps disabled
  sweep_timer_->expires_after(config_->mailbox.sweep_interval);
  sweep_timer_->async_wait([this](error_code ec) {
    if (ec || stopping_.load()) return;
    gateway_->SweepDeadlines(clock_->NowMs(), [this](Result<SweepReport> report) {
      // On the writer thread: hop back to the control strand before touching timers.
      asio::post(*control_, [this, report = std::move(report)] {
        if (!report.ok()) {
          metrics_.CountSweep("failed");
          log_->Event(LogLevel::kError, "deadline_sweep_failed",
                      {{"error", report.status().ToString()}});
        } else {
          metrics_.CountSweep("ok");
          const bool any = report->notices > 0 || report->expired > 0;
          log_->Event(any ? LogLevel::kInfo : LogLevel::kDebug, "deadline_sweep",
                      {{"notices", report->notices}, {"expired", report->expired}});
        }
        if (!stopping_.load()) {
          SweepRetentionIfDue();
          ScheduleSweep();
        }
      });
    });
  });
}

void Server::Impl::SweepRetentionIfDue() {
  constexpr int64_t kRetentionIntervalMs = 3600 * 1000;
  const int64_t now = clock_->NowMs();
  if (last_retention_sweep_ms_ != 0 && now - last_retention_sweep_ms_ < kRetentionIntervalMs) {
    return;
  }
  last_retention_sweep_ms_ = now;
  gateway_->SweepRetention(now, [this](Result<RetentionReport> report) {
    // On the writer thread: hop back to the control strand, which owns the bookkeeping.
    asio::post(*control_, [this, report = std::move(report)] {
      if (!report.ok()) {
        // kUnavailable: a store without retention (or one shutting down), not a failure.
        const bool unavailable = report.status().code() == ErrorCode::kUnavailable;
        log_->Event(unavailable ? LogLevel::kDebug : LogLevel::kError, "retention_sweep_failed",
                    {{"error", report.status().ToString()}});
        return;
      }
      const bool any = report->records_deleted > 0 || report->views_deleted > 0;
      log_->Event(any ? LogLevel::kInfo : LogLevel::kDebug, "retention_sweep",
                  {{"records_deleted", report->records_deleted},
                   {"views_deleted", report->views_deleted},
                   {"more", report->more}});
      // A full batch: the next deadline sweep's timer takes the rest.
      if (report->more) last_retention_sweep_ms_ = 0;
    });
  });
}

void Server::Impl::ScheduleWatchdog(std::chrono::microseconds interval) {
  Notify("WATCHDOG=1");
  watchdog_timer_->expires_after(interval);
  watchdog_timer_->async_wait([this, interval](error_code ec) {
    // Pings go on while connections drain after STOPPING=1; FinishStop cancels the timer.
    if (!ec) ScheduleWatchdog(interval);
  });
}

void Server::Impl::ScheduleCertificateCheck() {
  certificate_timer_->expires_after(kCertificateCheckInterval);
  certificate_timer_->async_wait([this](error_code ec) {
    if (ec || stopping_.load()) return;
    asio::post(blocking_pool_, [this] { CheckCertificates(registry().get()); });
    ScheduleCertificateCheck();
  });
}

void Server::Impl::CheckCertificates(const config::Registry* registry) {
  CertificateInventory inventory = ReadCertificates(*config_, registry);
  const int64_t now = clock_->NowMs();
  const int64_t window = config_->tls.expiry_warning.count();
  for (const auto& problem : inventory.problems) {
    log_->Event(LogLevel::kWarn, "certificate_unreadable", {{"problem", problem}});
  }
  int expiring = 0;
  for (const auto& c : inventory.certificates) {
    const json fields = {{"role", c.role},
                         {"name", c.name},
                         {"file", c.file},
                         {"fingerprint", c.fingerprint},
                         {"not_after", FormatUtc(c.not_after_ms)},
                         {"days_left", static_cast<int64_t>(DaysLeft(c, now))}};
    if (c.not_after_ms <= now) {
      ++expiring;
      log_->Event(LogLevel::kWarn, "certificate_expired", fields);
    } else if (c.not_after_ms - now <= window) {
      ++expiring;
      log_->Event(LogLevel::kWarn, "certificate_expiring", fields);
    }
  }
  log_->Event(LogLevel::kInfo, "certificates_checked",
              {{"certificates", inventory.certificates.size()},
               {"expired_or_expiring", expiring},
               {"warning_days", window / (24 * 3600 * 1000)}});
  metrics_.SetCertificates(std::move(inventory.certificates), window);
}

Status Server::Impl::Run() {
  if (ran_) return Status::Internal("Server::Run called twice");
  ran_ = true;
  if (Status s = StartDropFolders(); !s.ok()) return s;
  {
    // The transfer outbox goes to the peer gateways from a thread of its own.
    OutboxSenderOptions o;
    o.gateway = gateway_;
    o.clock = clock_;
    o.log = log_.get();
    o.metrics = &metrics_;
    o.registry = [this] { return registry(); };
    o.tls = config_->tls;
    o.base_backoff = config_->transfers.retry_initial;
    o.max_backoff = config_->transfers.retry_max;
    auto sender = OutboxSender::Start(std::move(o));
    if (!sender.ok()) {
      log_->Event(LogLevel::kError, "transfer_outbox_failed",
                  {{"error", sender.status().ToString()}});
      if (drops_) drops_->Stop();
      return sender.status();
    }
    outbox_ = std::move(sender).value();
  }
  if (config_->audit.forward) {
    // The audit log to a syslog collector ([audit.forward]), from a thread of its own.
    SyslogForwarderOptions o;
    o.forward = *config_->audit.forward;
    o.data_dir = config_->data_dir;
    o.area = config_->area;
    o.log = log_.get();
    o.metrics = &metrics_;
    auto forwarder = SyslogForwarder::Start(std::move(o));
    if (!forwarder.ok()) {
      log_->Event(LogLevel::kError, "audit_forward_failed",
                  {{"error", forwarder.status().ToString()}});
      if (outbox_) outbox_->Stop();
      if (drops_) drops_->Stop();
      return forwarder.status();
    }
    forwarder_ = std::move(forwarder).value();
  }
  work_.emplace(ioc_->get_executor());
  asio::dispatch(*control_, [this] {
    if (stopping_.load()) return;
    Accept();
    AcceptAdmin();
    if (signals_) WaitForSignal();
    ScheduleSweep();
    ScheduleCertificateCheck();
    if (const auto interval = WatchdogInterval(); interval.count() > 0) {
      log_->Event(LogLevel::kInfo, "watchdog",
                  {{"interval_ms",
                    std::chrono::duration_cast<std::chrono::milliseconds>(interval).count()}});
      ScheduleWatchdog(interval);
    }
  });

  const json ports = {{"listen", port_}, {"admin", admin_port_}};
  if (Status s = WriteFileAtomically(config_->data_dir + "/ports.json", ports.dump() + "\n");
      !s.ok()) {
    log_->Event(LogLevel::kError, "ports_file_failed", {{"error", s.ToString()}});
    return s;
  }
  if (config_->policy.empty()) {
    log_->Event(LogLevel::kWarn, "no_policy",
                {{"detail", "no sharing policy is configured (key `policy`): the placeholder "
                            "permits every police, health and csc recipient and decides "
                            "nothing else; set `policy` in production"}});
  }
  log_->Event(LogLevel::kInfo, "listening",
              {{"area", config_->area},
               {"listen", config_->listen.address + ":" + std::to_string(port_)},
               {"admin", config_->admin.address + ":" + std::to_string(admin_port_)},
               {"threads", config_->threads}});
  Notify("READY=1\nSTATUS=listening on port " + std::to_string(port_));

  std::vector<std::thread> threads;
  for (uint32_t i = 1; i < std::max(1u, config_->threads); ++i) {
    threads.emplace_back([this] { RunThread(); });
  }
  RunThread();
  for (auto& t : threads) t.join();

  // Every connection is gone (or the drain deadline passed): finish blocking work and the
  // dropped file in hand, then commit what is queued.
  blocking_pool_.wait();
  if (drops_) drops_->Stop();
  if (outbox_) outbox_->Stop();  // an attempt in progress ends within its timeout
  if (forwarder_) forwarder_->Stop();  // unsent entries go after the next start (cursor)
  gateway_->Shutdown();
  log_->Event(LogLevel::kInfo, "stopped");
  return Status::Ok();
}

// [[drop]] folders (docs/ingest.md). Log lines name the agency and format, never the file:
// file names are the agency's and may say who a file is about (R7); the .why beside a
// refused file says the rest.
Status Server::Impl::StartDropFolders() {
  if (config_->drops.empty()) return Status::Ok();
  core::DropWatcher::Options o;
  o.drops = config_->drops;
  o.registry = registry();
  o.gateway = gateway_;
  o.clock = clock_;
  o.on_event = [log = log_](const core::DropEvent& e) {
    json fields = {{"agency", e.agency}, {"format", e.format}, {"outcome", e.outcome}};
    if (e.outcome == "done") {
      fields["records"] = e.records;
      fields["created"] = e.created;
    } else {
      fields["error"] = std::string(ErrorCodeName(e.status.code()));
      fields["problems"] = static_cast<int64_t>(e.status.problems().size());
    }
    log->Event(e.outcome == "done"     ? LogLevel::kInfo
               : e.outcome == "failed" ? LogLevel::kWarn
                                       : LogLevel::kError,
               "drop_file", fields);
  };
  auto watcher = core::DropWatcher::Start(std::move(o));
  if (!watcher.ok()) {
    log_->Event(LogLevel::kError, "drop_folders_failed", {{"error", watcher.status().ToString()}});
    return watcher.status();
  }
  drops_ = std::move(watcher).value();
  log_->Event(LogLevel::kInfo, "drop_folders", {{"count", config_->drops.size()}});
  return Status::Ok();
}

void Server::Impl::RunThread() {
  for (;;) {
    try {
      ioc_->run();
      return;
    } catch (const std::exception& e) {
      // Handlers return errors rather than throw; reaching here is a bug, but one bad
      // connection must not take the gateway down with it.
      log_->Event(LogLevel::kError, "handler_exception", {{"what", e.what()}});
    }
  }
}

void Server::Impl::RequestStop() {
  asio::post(*control_, [this] { BeginStop(); });
}

void Server::Impl::BeginStop() {
  if (stopping_.exchange(true)) return;
  Notify("STOPPING=1");
  log_->Event(LogLevel::kInfo, "stopping");
  error_code ignored;
  listener_->close(ignored);
  admin_->close(ignored);
  if (signals_) signals_->cancel(ignored);
  sweep_timer_->cancel();
  accept_retry_timer_->cancel();
  certificate_timer_->cancel();

  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(connections_mu_);
    for (const auto& [ptr, weak] : connections_) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  for (const auto& c : open) c->Stop();
  open.clear();  // a connection's last owner may be this list; its destructor then unregisters

  if (!ran_ || !work_) return FinishStop();
  bool drained;
  {
    std::lock_guard lock(connections_mu_);
    drained = connections_.empty();
  }
  if (drained) return FinishStop();
  // In-flight requests get at most read_timeout (plus the close timeout) to finish.
  drain_timer_->expires_after(config_->limits.read_timeout + kCloseTimeout);
  drain_timer_->async_wait([this](error_code ec) {
    if (ec) return;
    size_t left;
    {
      std::lock_guard lock(connections_mu_);
      left = connections_.size();
    }
    log_->Event(LogLevel::kWarn, "drain_timeout", {{"connections", left}});
    FinishStop();
  });
}

void Server::Impl::FinishStop() {
  if (finished_) return;
  finished_ = true;
  drain_timer_->cancel();
  watchdog_timer_->cancel();
  work_.reset();
  ioc_->stop();
}

Status Server::Impl::Reload() {
  std::lock_guard reload_lock(reload_mu_);
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  Notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(now_us));
  // The sharing policy: the gateway reads and checks the file now, swaps it in whole if good
  // and audits the outcome (policy_reloaded / policy_reload_failed); a bad file keeps the
  // policy in force and does not stop the rest of the reload.
  if (!config_->policy.empty()) {
    gateway_->ReloadPolicy([this](Result<PolicyReloadReport> report) {
      if (!report.ok()) {
        log_->Event(LogLevel::kError, "policy_reload_failed",
                    {{"error", report.status().ToString()}});
      } else if (report->ok) {
        log_->Event(LogLevel::kInfo, "policy_reloaded",
                    {{"file", report->file}, {"version", report->version}});
      } else {
        json problems = json::array();
        for (const Problem& p : report->problems) problems.push_back(p.where + ": " + p.what);
        log_->Event(LogLevel::kError, "policy_reload_failed",
                    {{"file", report->file}, {"kept_version", report->version},
                     {"problems", std::move(problems)}});
      }
    });
  }
  auto fail = [this](Status s) {
    metrics_.CountReload("failed");
    log_->Event(LogLevel::kError, "reload_failed", {{"error", s.ToString()}});
    Notify("READY=1");
    return s;
  };
  std::shared_ptr<const config::Registry> registry;
  try {
    // Loading is the one place exceptions are used (config::ConfigError).
    registry = std::make_shared<const config::Registry>(config::LoadRegistry(config_->registry));
  } catch (const std::exception& e) {
    return fail(Status::Invalid(e.what()));
  }
  auto ctx = MakeServerSslCtx(config_->tls);
  if (!ctx.ok()) return fail(ctx.status());
  if (Status s = CheckServerCertificateCurrent(config_->tls, clock_->NowMs()); !s.ok()) {
    return fail(s);
  }
  if (Status s = CheckPrivateKeyPermissions(config_->tls.key, "tls.key"); !s.ok()) {
    return fail(s);
  }
  auto context = std::make_shared<ssl::context>(ctx->release());
  {
    std::lock_guard lock(mu_);
    registry_ = registry;
    ssl_ctx_ = std::move(context);
  }
  gateway_->SetRegistry(registry);
  metrics_.CountReload("ok");
  log_->Event(LogLevel::kInfo, "reloaded", {{"agencies", registry->agencies.size()}});
  CheckCertificates(registry.get());
  Notify("READY=1");
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------

Result<std::unique_ptr<Server>> Server::Create(std::shared_ptr<const config::Config> config,
                                               std::shared_ptr<const config::Registry> registry,
                                               Gateway* gateway, const Clock* clock,
                                               ServerOptions options) {
  if (!config || !registry || gateway == nullptr || clock == nullptr) {
    return Status::Internal("Server::Create needs a config, a registry, a gateway and a clock");
  }
  auto log = EventLog::Create(config->log);
  if (!log.ok()) return log.status();
  auto impl = std::make_unique<Impl>(std::move(config), std::move(registry), gateway, clock,
                                     options, std::move(log).value());
  if (Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;
Status Server::Run() { return impl_->Run(); }
void Server::RequestStop() { impl_->RequestStop(); }
Status Server::Reload() { return impl_->Reload(); }
uint16_t Server::port() const { return impl_->port_; }
uint16_t Server::admin_port() const { return impl_->admin_port_; }

Status CheckTlsFiles(const config::Config& config) {
  auto ctx = MakeServerSslCtx(config.tls);
  if (!ctx.ok()) return ctx.status();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  if (Status s = CheckServerCertificateCurrent(config.tls, now); !s.ok()) return s;
  return CheckPrivateKeyPermissions(config.tls.key, "tls.key");
}

}  // namespace safegate::server
