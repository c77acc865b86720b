#include "daemon/server/syslog_forwarder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "daemon/audit/merkle.h"
#include "daemon/core/crypto.h"
#include "daemon/core/sqlite.h"
#include "daemon/server/event_log.h"
#include "daemon/server/metrics.h"
#include "daemon/server/outbox_sender.h"
#include "daemon/server/tls.h"

namespace safegate::server {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using nlohmann::json;

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr int kPri = 13 * 8 + 6;  // facility 13 (log audit), severity 6 (informational)

// RFC 5424 header fields are 1*N PRINTUSASCII (33..126); NILVALUE otherwise.
std::string HeaderField(std::string_view value, size_t max) {
  if (value.empty() || value.size() > max ||
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= 33 && c <= 126; })) {
    return "-";
  }
  return std::string(value);
}

// RFC 5424 TIMESTAMP as the entry bytes write it: YYYY-MM-DDTHH:MM:SS.fffZ.
bool IsEntryTime(std::string_view t) {
  if (t.size() != 24) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    const bool ok = (i == 4 || i == 7)     ? c == '-'
                    : i == 10              ? c == 'T'
                    : (i == 13 || i == 16) ? c == ':'
                    : i == 19              ? c == '.'
                    : i == 23              ? c == 'Z'
                                           : (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// SD-PARAM values escape '"', '\' and ']' (RFC 5424 section 6.3.3).
std::string SdValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

std::string SystemHostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "-";
  return HeaderField(buf, 255);
}

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

bool IsIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

std::string SyslogMessage(const ForwardedEntry& e, const SyslogHeader& header) {
  std::string at = "-";
  std::string action = "-";
  json j = json::parse(e.entry, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (auto it = j.find("at"); it != j.end() && it->is_string() &&
                                IsEntryTime(it->get_ref<const std::string&>())) {
      at = it->get<std::string>();
    }
    if (auto it = j.find("action"); it != j.end() && it->is_string()) {
      action = HeaderField(it->get_ref<const std::string&>(), 32);
    }
  }
  std::string out = "<" + std::to_string(kPri) + ">1 " + at + " " + HeaderField(header.hostname, 255) +
                    " " + HeaderField(header.app_name, 48) + " " +
                    HeaderField(header.procid, 128) + " " + action + " [" +
                    std::string(kSyslogSdId) + " seq=\"" + std::to_string(e.seq) + "\" leaf=\"" +
                    audit::HashHex(audit::LeafHash(e.entry)) + "\" chain=\"" + core::Hex(e.hash) +
                    "\" area=\"" + SdValue(header.area) + "\"] ";
  out += kBom;
  out += e.entry;
  return out;
}

std::string OctetCountedFrame(std::string_view message) {
  std::string out = std::to_string(message.size());
  out += ' ';
  out += message;
  return out;
}

std::string ForwardCursorPath(const std::string& data_dir) {
  return (fs::path(data_dir) / "audit-forward.json").string();
}

Result<int64_t> ReadForwardCursor(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return int64_t{0};
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::Invalid("audit forwarding cursor " + path + ": cannot read: " +
                           std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("seq") || !j["seq"].is_number_integer() ||
      j["seq"].get<int64_t>() < 0) {
    return Status::Invalid("audit forwarding cursor " + path +
                           ": not a cursor (expected {\"seq\": N, ...} with N >= 0); remove it "
                           "to forward the whole log again");
  }
  return j["seq"].get<int64_t>();
}

Status WriteForwardCursor(const std::string& path, int64_t seq, const std::string& address) {
  const std::string tmp = path + ".tmp";
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const std::string body =
      json{{"seq", seq}, {"address", address}, {"written_at_ms", now_ms}}.dump() + "\n";
  auto fail = [&](const char* what) {
    return Status::Internal("audit forwarding cursor " + path + ": " + what + ": " +
                            std::strerror(errno));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("create");
  size_t done = 0;
  while (done < body.size()) {
    const ssize_t n = ::write(fd, body.data() + done, body.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("fsync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename");
  const std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

// One TLS connection to the collector. The io_context is declared first so that it outlives
// the stream; handlers still queued when a Connection is destroyed are destroyed, not run.
struct Connection {
  explicit Connection(ssl::context& ctx) : stream(ioc, ctx), timer(ioc) {}

  asio::io_context ioc;
  ssl::stream<tcp::socket> stream;
  asio::steady_timer timer;
  // A read is kept pending for the life of the connection: the collector never sends
  // anything (RFC 5425), so its completion means the collector closed the connection or it
  // broke. Checked before each batch, so that entries are not written into a dead socket.
  bool closed = false;
  std::string close_reason;
  char read_byte = 0;

  void ArmCloseWatch() {
    stream.async_read_some(asio::buffer(&read_byte, 1), [this](error_code ec, size_t) {
      if (!ec) {  // unexpected bytes: ignored
        ArmCloseWatch();
        return;
      }
      closed = true;
      close_reason = ec == asio::error::eof || ec == ssl::error::stream_truncated
                         ? "the collector closed the connection"
                         : ec.message();
    });
  }

  // Runs one asynchronous operation until it completes or `timeout` passes (the socket is
  // then closed, which ends it with an error). The close watch may run meanwhile.
  template <typename Start>
  error_code Run(Start start, std::chrono::milliseconds timeout) {
    auto done = std::make_shared<bool>(false);
    auto timer_done = std::make_shared<bool>(false);
    auto timed_out = std::make_shared<bool>(false);
    error_code result;
    timer.expires_after(timeout);
    timer.async_wait([this, timer_done, timed_out](error_code ec) {
      *timer_done = true;
      if (!ec) {
        *timed_out = true;
        error_code ignored;
        stream.lowest_layer().close(ignored);
      }
    });
    start([done, &result](error_code ec, auto&&...) {
      result = ec;
      *done = true;
    });
    ioc.restart();
    while (!*done) {
      if (ioc.run_one() == 0) ioc.restart();
    }
    timer.cancel();
    while (!*timer_done) {
      if (ioc.run_one() == 0) ioc.restart();
    }
    if (*timed_out) return asio::error::timed_out;
    return result;
  }

  // Runs whatever is ready (the close watch) without waiting.
  void Poll() {
    ioc.restart();
    ioc.poll();
  }
};

struct SyslogForwarder::Impl {
  SyslogForwarderOptions options;
  ssl::context ctx{ssl::context::tls_client};
  SyslogHeader header;
  std::string cursor_path;
  std::string db_path;
  int64_t cursor = 0;
  std::unique_ptr<core::Db> db;  // read-only; opened on first use, reopened after a failure
  std::unique_ptr<Connection> conn;
  int attempts = 0;  // failed connection attempts in a row
  bool cursor_ahead_reported = false;
  std::mt19937_64 rng{std::random_device{}()};

  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  bool stopping = false;
  std::thread thread;

  const config::Config::Audit::Forward& f() const { return options.forward; }

  void Event(LogLevel level, std::string_view event, json fields) const {
    fields["address"] = f().address;
    options.log->Event(level, event, fields);
  }
  void Fail(std::string_view reason) const {
    if (options.metrics != nullptr) options.metrics->CountAuditForwardFailure(reason);
  }
  void Publish() const {
    if (options.metrics != nullptr) {
      options.metrics->SetAuditForwardState(conn != nullptr, cursor);
    }
  }

  // Sleeps `d` or until Stop (or Wake, when `wakeable`). Returns false when stopping.
  bool Wait(std::chrono::milliseconds d, bool wakeable) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, d, [&] { return stopping || (wakeable && woken); });
    woken = false;
    return !stopping;
  }
  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu);
    return stopping;
  }

  Status LoadTls() {
    SSL_CTX* c = ctx.native_handle();
    if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) {
      return Status::Internal("audit.forward: cannot set the TLS policy: " + OpenSslError());
    }
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_load_verify_locations(c, f().ca.c_str(), nullptr) != 1) {
      return Status::Invalid("audit.forward.ca: " + f().ca + ": " + OpenSslError());
    }
    if (!f().cert.empty()) {
      if (SSL_CTX_use_certificate_chain_file(c, f().cert.c_str()) != 1) {
        return Status::Invalid("audit.forward.cert: " + f().cert + ": " + OpenSslError());
      }
      if (SSL_CTX_use_PrivateKey_file(c, f().key.c_str(), SSL_FILETYPE_PEM) != 1) {
        return Status::Invalid("audit.forward.key: " + f().key + ": " + OpenSslError());
      }
      if (SSL_CTX_check_private_key(c) != 1) {
        return Status::Invalid("audit.forward.key: " + f().key +
                               " is not the key of audit.forward.cert");
      }
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(c, 6);
    return Status::Ok();
  }

  // Connects and completes the handshake, verifying the collector's certificate against the
  // CA and the server name. On failure returns what went wrong and the failure kind.
  Status Connect(std::string& kind) {
    auto c = std::make_unique<Connection>(ctx);
    SSL* ssl_handle = c->stream.native_handle();
    const std::string& name = f().server_name;
    if (IsIp(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), name.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_handle, name.c_str());
      SSL_set1_host(ssl_handle, name.c_str());
    }
    tcp::resolver resolver(c->ioc);
    error_code ec;
    auto addresses = resolver.resolve(f().host, f().port, ec);
    if (ec) {
      kind = "resolve";
      return Status::Unavailable("resolve " + f().host + ": " + ec.message());
    }
    ec = c->Run([&](auto handler) { asio::async_connect(c->stream.lowest_layer(), addresses, handler); },
                f().timeout);
    if (ec) {
      kind = "connect";
      return Status::Unavailable("connect: " + ec.message());
    }
    ec = c->Run([&](auto handler) { c->stream.async_handshake(ssl::stream_base::client, handler); },
                f().timeout);
    if (ec) {
      kind = "tls";
      std::string why = ec.message();
      const long verify = SSL_get_verify_result(ssl_handle);
      if (verify != X509_V_OK) {
        why += " (" + std::string(X509_verify_cert_error_string(verify)) + "; expected server name \"" +
               name + "\" under " + f().ca + ")";
      }
      return Status::Unavailable("TLS handshake: " + why);
    }
    c->ArmCloseWatch();
    conn = std::move(c);
    return Status::Ok();
  }

  void Disconnect(bool graceful) {
    if (!conn) return;
    if (graceful && !conn->closed) {
      // Let the watch end, then say goodbye (close_notify), bounded.
      error_code ignored;
      conn->stream.lowest_layer().cancel(ignored);
      conn->Poll();
      (void)conn->Run([&](auto handler) { conn->stream.async_shutdown(handler); },
                      std::chrono::milliseconds(std::min<int64_t>(f().timeout.count(), 1000)));
    }
    error_code ignored;
    conn->stream.lowest_layer().close(ignored);
    conn.reset();
    Publish();
  }

  Status OpenDb() {
    if (db) return Status::Ok();
    auto opened = core::Db::Open(db_path, core::Db::Mode::kReadOnly);
    if (!opened.ok()) return opened.status();
    db = std::move(*opened);
    (void)db->Exec("PRAGMA busy_timeout=1000");
    return Status::Ok();
  }

  // The entries after the cursor, in seq order, at most options.batch. When there are none
  // and the log ends before the cursor, `head` is set to the log's last seq.
  Result<std::vector<ForwardedEntry>> ReadBatch(std::optional<int64_t>& head) {
    if (Status s = OpenDb(); !s.ok()) return s;
    std::vector<ForwardedEntry> out;
    auto stmt = db->Prepare("SELECT seq, entry, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    if (!stmt.ok()) {
      db.reset();
      return stmt.status();
    }
    (*stmt)->Bind(1, cursor).Bind(2, static_cast<int64_t>(options.batch));
    for (;;) {
      auto row = (*stmt)->Step();
      if (!row.ok()) {
        (*stmt)->Reset();
        db.reset();
        return row.status();
      }
      if (!*row) break;
      out.push_back({(*stmt)->Int(0), (*stmt)->Blob(1), (*stmt)->Blob(2)});
    }
    (*stmt)->Reset();  // no read transaction held open between rounds
    if (out.empty()) {
      auto max = db->QueryInt("SELECT coalesce(max(seq), 0) FROM audit");
      if (max.ok()) head = *max;
    }
    return out;
  }

  void Loop() {
    Publish();
    while (!Stopping()) {
      if (!conn) {
        std::string kind;
        Status s = Connect(kind);
        if (!s.ok()) {
          Fail(kind);
          const auto delay =
              OutboxSender::Backoff(attempts, f().retry_initial, f().retry_max, rng);
          ++attempts;
          Event(attempts == 1 ? LogLevel::kError : LogLevel::kWarn, "audit_forward_error",
                {{"stage", kind},
                 {"error", s.detail()},
                 {"attempt", attempts},
                 {"retry_in_ms", delay.count()},
                 {"forwarded_seq", cursor}});
          if (!Wait(delay, /*wakeable=*/false)) return;
          continue;
        }
        attempts = 0;
        Event(LogLevel::kInfo, "audit_forward_connected",
              {{"server_name", f().server_name}, {"resume_after_seq", cursor}});
        Publish();
      }
      conn->Poll();
      if (conn->closed) {
        Fail("closed");
        Event(LogLevel::kWarn, "audit_forward_disconnected",
              {{"error", conn->close_reason}, {"forwarded_seq", cursor}});
        Disconnect(/*graceful=*/false);
        continue;
      }
      std::optional<int64_t> head;
      auto batch = ReadBatch(head);
      if (!batch.ok()) {
        Fail("store");
        Event(LogLevel::kError, "audit_forward_error",
              {{"stage", "store"}, {"error", batch.status().ToString()}, {"forwarded_seq", cursor}});
        if (!Wait(std::max(f().poll_interval, std::chrono::milliseconds(1000)), false)) break;
        continue;
      }
      if (batch->empty()) {
        if (head && *head < cursor && !cursor_ahead_reported) {
          // The log is shorter than what was forwarded: the database was replaced (a
          // restore). Carry on from its end; the collector holds the entries it lost, and
          // sees the same seqs again with other leaf hashes.
          cursor_ahead_reported = true;
          Fail("cursor");
          Event(LogLevel::kError, "audit_forward_cursor_ahead",
                {{"forwarded_seq", cursor}, {"log_last_seq", *head}});
          cursor = *head;
          (void)WriteForwardCursor(cursor_path, cursor, f().address);
          Publish();
        }
        if (!Wait(f().poll_interval, /*wakeable=*/true)) break;
        continue;
      }
      std::string frames;
      for (const ForwardedEntry& e : *batch) {
        frames += OctetCountedFrame(SyslogMessage(e, header));
      }
      error_code ec = conn->Run(
          [&](auto handler) { asio::async_write(conn->stream, asio::buffer(frames), handler); },
          f().timeout);
      if (ec) {
        Fail("write");
        Event(LogLevel::kWarn, "audit_forward_disconnected",
              {{"error", "write: " + ec.message()}, {"forwarded_seq", cursor}});
        Disconnect(/*graceful=*/false);
        continue;
      }
      const int64_t last = batch->back().seq;
      if (Status s = WriteForwardCursor(cursor_path, last, f().address); !s.ok()) {
        // The entries went; only the record of it failed. They go again after a restart.
        Fail("cursor");
        Event(LogLevel::kError, "audit_forward_error", {{"stage", "cursor"}, {"error", s.detail()}});
      }
      cursor = last;
      if (options.metrics != nullptr) {
        options.metrics->CountAuditForwarded(static_cast<uint64_t>(batch->size()));
      }
      Publish();
    }
    Disconnect(/*graceful=*/true);
  }
};

Result<std::unique_ptr<SyslogForwarder>> SyslogForwarder::Start(SyslogForwarderOptions options) {
  if (options.log == nullptr || options.data_dir.empty() || options.batch < 1) {
    return Status::Internal("SyslogForwarder needs a log, a data directory and a batch size");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  if (Status s = impl->LoadTls(); !s.ok()) return s;
  impl->cursor_path = ForwardCursorPath(impl->options.data_dir);
  impl->db_path = (fs::path(impl->options.data_dir) / "safegate.db").string();
  auto cursor = ReadForwardCursor(impl->cursor_path);
  if (!cursor.ok()) return cursor.status();
  impl->cursor = *cursor;
  impl->header.hostname =
      impl->f().hostname.empty() ? SystemHostName() : impl->f().hostname;
  impl->header.app_name = impl->f().app_name;
  impl->header.procid = std::to_string(::getpid());
  impl->header.area = impl->options.area;
  if (impl->options.metrics != nullptr) impl->options.metrics->EnableAuditForward();
  std::unique_ptr<SyslogForwarder> forwarder(new SyslogForwarder(std::move(impl)));
  Impl* raw = forwarder->impl_.get();
  raw->Event(LogLevel::kInfo, "audit_forward_started",
             {{"server_name", raw->f().server_name}, {"forwarded_seq", raw->cursor}});
  raw->thread = std::thread([raw] { raw->Loop(); });
  return forwarder;
}

SyslogForwarder::SyslogForwarder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SyslogForwarder::~SyslogForwarder() { Stop(); }

void SyslogForwarder::Wake() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->woken = true;
  }
  impl_->cv.notify_all();
}

void SyslogForwarder::Stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace safegate::server
