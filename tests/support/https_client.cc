#include "tests/support/https_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>

namespace safegate::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

std::optional<Endpoint> ParseUrl(const std::string& url) {
  const std::string scheme = "https://";
  if (url.rfind(scheme, 0) != 0) return std::nullopt;
  std::string rest = url.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  Endpoint e;
  e.host = rest.substr(0, colon);
  int port = std::atoi(rest.substr(colon + 1).c_str());
  if (port <= 0 || port > 65535) return std::nullopt;
  e.port = static_cast<uint16_t>(port);
  return e;
}

// OpenSSL's error queue (and errno for syscall errors), as one line, clearing the queue.
std::string OpenSslErrors(const std::string& what, int ssl_error = 0) {
  std::string out = what;
  unsigned long e;
  bool any = false;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += any ? "; " : ": ";
    out += buf;
    any = true;
  }
  if (!any && ssl_error == SSL_ERROR_SYSCALL && errno != 0) {
    out += std::string(": ") + std::strerror(errno);
  } else if (!any && ssl_error == SSL_ERROR_ZERO_RETURN) {
    out += ": connection closed";
  } else if (!any && ssl_error != 0) {
    out += ": SSL error " + std::to_string(ssl_error);
  }
  return out;
}

// A connected socket with send/receive timeouts, or -1 with `error` set.
int Connect(const Endpoint& e, std::chrono::milliseconds timeout, std::string* error) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(e.port);
  if (inet_pton(AF_INET, e.host.c_str(), &addr.sin_addr) != 1) {
    close(fd);
    *error = "not an IPv4 address: " + e.host;
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = "connect " + e.host + ":" + std::to_string(e.port) + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Tries to parse one complete HTTP response from `data`. Returns nullopt while more bytes
// are needed; `eof` says the peer closed (then a body without length ends here).
std::optional<Result<HttpResponse>> ParseResponse(const std::string& data, bool eof) {
  auto head_end = data.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    if (eof) {
      return Result<HttpResponse>(Status::Unavailable(
          data.empty() ? "connection closed without an answer"
                       : "connection closed in the middle of the response head"));
    }
    return std::nullopt;
  }
  HttpResponse r;
  std::string head = data.substr(0, head_end);
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
    return Result<HttpResponse>(Status::Unavailable("bad status line: " + status_line));
  }
  r.status = std::atoi(status_line.substr(9, 3).c_str());
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      r.headers[Lower(line.substr(0, colon))] = value;
    }
    pos = end + 2;
  }
  std::string rest = data.substr(head_end + 4);
  if (Lower(r.headers["transfer-encoding"]).find("chunked") != std::string::npos) {
    std::string body;
    size_t p = 0;
    for (;;) {
      size_t le = rest.find("\r\n", p);
      if (le == std::string::npos) break;
      size_t size = std::strtoul(rest.substr(p, le - p).c_str(), nullptr, 16);
      if (size == 0) {
        r.body = body;
        return Result<HttpResponse>(r);
      }
      if (rest.size() < le + 2 + size + 2) break;
      body += rest.substr(le + 2, size);
      p = le + 2 + size + 2;
    }
    if (eof) return Result<HttpResponse>(Status::Unavailable("connection closed mid-chunk"));
    return std::nullopt;
  }
  r.headers.erase("transfer-encoding");
  if (auto cl = r.headers.find("content-length"); cl != r.headers.end()) {
    size_t length = std::strtoull(cl->second.c_str(), nullptr, 10);
    if (rest.size() >= length) {
      r.body = rest.substr(0, length);
      return Result<HttpResponse>(r);
    }
    if (eof) return Result<HttpResponse>(Status::Unavailable("connection closed mid-body"));
    return std::nullopt;
  }
  if (r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200)) {
    return Result<HttpResponse>(r);
  }
  if (!eof) return std::nullopt;
  r.body = rest;
  return Result<HttpResponse>(r);
}

struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

}  // namespace

struct HttpsClient::Impl {
  Endpoint endpoint;
  std::chrono::milliseconds timeout{};
  SSL_CTX* ctx = nullptr;
  std::string setup_error;  // why the context is unusable, if it is

  ~Impl() { SSL_CTX_free(ctx); }

  // One connection: handshake, send, then `read` until it says it has enough.
  // Connection bookkeeping in one place so that every path closes the socket.
  class Connection {
   public:
    ~Connection() {
      if (ssl_) {
        SSL_shutdown(ssl_.get());
        ssl_.reset();
      }
      if (fd_ >= 0) close(fd_);
    }
    Status Open(const Impl& impl) {
      if (!impl.setup_error.empty()) return Status::Unavailable(impl.setup_error);
      std::string error;
      fd_ = Connect(impl.endpoint, impl.timeout, &error);
      if (fd_ < 0) return Status::Unavailable(error);
      ssl_.reset(SSL_new(impl.ctx));
      if (!ssl_) return Status::Internal(OpenSslErrors("SSL_new"));
      SSL_set_fd(ssl_.get(), fd_);
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), impl.endpoint.host.c_str());
      ERR_clear_error();
      errno = 0;
      int rc = SSL_connect(ssl_.get());
      if (rc != 1) {
        int err = SSL_get_error(ssl_.get(), rc);
        return Status::Unavailable(OpenSslErrors("TLS handshake", err));
      }
      return Status::Ok();
    }
    Status Write(const std::string& bytes) {
      size_t done = 0;
      while (done < bytes.size()) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(ssl_.get(), bytes.data() + done,
                          static_cast<int>(std::min<size_t>(bytes.size() - done, 1 << 20)));
        if (n <= 0) {
          int err = SSL_get_error(ssl_.get(), n);
          return Status::Unavailable(OpenSslErrors("TLS write", err));
        }
        done += static_cast<size_t>(n);
      }
      return Status::Ok();
    }
    // Appends what arrives to `data`. Returns 1 for bytes, 0 for a clean or abrupt close by
    // the peer, -1 for an error (`error` set), -2 for the receive timeout.
    int Read(std::string* data, std::string* error) {
      char buf[16384];
      ERR_clear_error();
      errno = 0;
      int n = SSL_read(ssl_.get(), buf, sizeof buf);
      if (n > 0) {
        data->append(buf, static_cast<size_t>(n));
        return 1;
      }
      int err = SSL_get_error(ssl_.get(), n);
      if (err == SSL_ERROR_ZERO_RETURN) return 0;
      if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) return -2;
      if (err == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET || errno == EPIPE)) {
        // EOF without close_notify, or a reset: the peer is gone.
        *error = errno == 0 ? "connection closed without close_notify" : std::strerror(errno);
        return 0;
      }
      *error = OpenSslErrors("TLS read", err);
      return -1;
    }

   private:
    int fd_ = -1;
    std::unique_ptr<SSL, SslDeleter> ssl_;
  };

  Result<HttpResponse> Exchange(const std::string& bytes) const {
    Connection c;
    Status s = c.Open(*this);
    if (!s.ok()) return s;
    // With TLS 1.3 a refused client certificate shows up only at the first read, as an
    // alert; a failed write is reported after trying to read that alert.
    Status written = c.Write(bytes);
    std::string data, error;
    for (;;) {
      int r = c.Read(&data, &error);
      if (r == -1) return Status::Unavailable(error);
      if (r == -2) return Status::Unavailable("no complete answer within the timeout");
      auto parsed = ParseResponse(data, r == 0);
      if (parsed) {
        if (!parsed->ok() && !written.ok()) return written;
        if (!parsed->ok() && !error.empty()) {
          return Status::Unavailable(parsed->status().detail() + " (" + error + ")");
        }
        return *parsed;
      }
    }
  }
};

HttpsClient::HttpsClient(std::string base_url, TlsIdentity identity,
                         std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), impl_(std::make_unique<Impl>()) {
  // A server that closes while we write must not kill the test with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  impl_->timeout = timeout;
  auto endpoint = ParseUrl(base_url_);
  if (!endpoint) {
    impl_->setup_error = "not an https://IP:PORT URL: " + base_url_;
    return;
  }
  impl_->endpoint = *endpoint;
  impl_->ctx = SSL_CTX_new(TLS_client_method());
  if (impl_->ctx == nullptr) {
    impl_->setup_error = OpenSslErrors("SSL_CTX_new");
    return;
  }
  SSL_CTX_set_min_proto_version(impl_->ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(impl_->ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(impl_->ctx, identity.ca.c_str(), nullptr) != 1) {
    impl_->setup_error = OpenSslErrors("CA file " + identity.ca);
    return;
  }
  if (!identity.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(impl_->ctx, identity.cert.c_str()) != 1) {
      impl_->setup_error = OpenSslErrors("certificate file " + identity.cert);
      return;
    }
    if (SSL_CTX_use_PrivateKey_file(impl_->ctx, identity.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      impl_->setup_error = OpenSslErrors("key file " + identity.key);
      return;
    }
  }
}

HttpsClient::~HttpsClient() = default;
HttpsClient::HttpsClient(HttpsClient&&) noexcept = default;
HttpsClient& HttpsClient::operator=(HttpsClient&&) noexcept = default;

Result<HttpResponse> HttpsClient::Get(const std::string& target) {
  return Request("GET", target, "");
}

Result<HttpResponse> HttpsClient::PostJson(const std::string& target, const nlohmann::json& body) {
  return Request("POST", target, body.dump(), {{"Content-Type", "application/json"}});
}

Result<HttpResponse> HttpsClient::Request(const std::string& method, const std::string& target,
                                          const std::string& body, const Headers& headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\n";
  req += "Host: " + impl_->endpoint.host + ":" + std::to_string(impl_->endpoint.port) + "\r\n";
  req += "Connection: close\r\n";
  bool has_length = false;
  for (const auto& [name, value] : headers) {
    req += name + ": " + value + "\r\n";
    has_length = has_length || Lower(name) == "content-length";
  }
  if (!has_length && (!body.empty() || method == "POST" || method == "PUT")) {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req += body;
  return SendRaw(req);
}

Result<HttpResponse> HttpsClient::SendRaw(const std::string& bytes) {
  return impl_->Exchange(bytes);
}

Status HttpsClient::SendAndWaitForClose(const std::string& bytes, std::chrono::milliseconds bound,
                                        std::string* answer) {
  Impl::Connection c;
  Status s = c.Open(*impl_);
  if (!s.ok()) return s;
  if (!bytes.empty()) {
    s = c.Write(bytes);
    if (!s.ok()) return s;
  }
  auto deadline = SteadyClock::now() + bound;
  std::string data, error;
  for (;;) {
    int r = c.Read(&data, &error);
    if (answer) *answer = data;
    if (r == 0 || r == -1) return Status::Ok();  // closed (an alert or reset is a close too)
    if (SteadyClock::now() >= deadline) {
      return Status::Unavailable("the server kept the connection open for more than " +
                                 std::to_string(bound.count()) + " ms");
    }
  }
}

Status TcpSilentUntilClosed(const std::string& base_url, std::chrono::milliseconds bound) {
  auto endpoint = ParseUrl(base_url);
  if (!endpoint) return Status::Invalid("not an https://IP:PORT URL: " + base_url);
  std::string error;
  int fd = Connect(*endpoint, std::chrono::milliseconds(500), &error);
  if (fd < 0) return Status::Unavailable(error);
  auto deadline = SteadyClock::now() + bound;
  Status result = Status::Unavailable(
      "the server kept a silent TCP connection open for more "
      "than " +
      std::to_string(bound.count()) + " ms");
  while (SteadyClock::now() < deadline) {
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      result = Status::Ok();
      break;
    }
  }
  close(fd);
  return result;
}

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

nlohmann::json HttpResponse::Json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string HttpResponse::ErrorCode() const {
  nlohmann::json j = Json();
  if (j.is_object() && j.contains("error") && j["error"].is_string()) {
    return j["error"].get<std::string>();
  }
  return "";
}

std::string HttpResponse::Describe() const {
  std::string b = body.size() > 2000 ? body.substr(0, 2000) + "..." : body;
  return "HTTP " + std::to_string(status) + " " + b;
}

}  // namespace safegate::testing
