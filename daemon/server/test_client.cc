#include "daemon/server/test_client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <array>
#include <cctype>
#include <utility>

namespace safegate::server::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

nlohmann::json HttpResponse::Json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

struct TestClient::Impl {
  asio::io_context ioc;
  std::optional<ssl::context> ctx;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::optional<beast::tcp_stream> plain;
  beast::flat_buffer buffer;
  std::chrono::milliseconds timeout{10'000};

  beast::tcp_stream& Lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  // Runs one asynchronous operation to completion. The tcp_stream's deadline guarantees
  // completion: on expiry it closes the socket and the operation fails with timeout.
  template <typename Start>
  error_code RunOp(Start start, std::chrono::milliseconds bound) {
    error_code result = asio::error::would_block;
    Lowest().expires_after(bound);
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  template <typename F>
  error_code WithStream(F f) {
    if (tls) return f(*tls);
    return f(*plain);
  }
};

TestClient::TestClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TestClient::~TestClient() = default;

Result<std::unique_ptr<TestClient>> TestClient::Connect(uint16_t port,
                                                        std::optional<std::string> ca,
                                                        std::optional<ClientIdentity> identity,
                                                        std::chrono::milliseconds timeout,
                                                        int max_tls_version) {
  auto impl = std::make_unique<Impl>();
  impl->timeout = timeout;
  error_code ec;
  if (ca) {
    impl->ctx.emplace(ssl::context::tls_client);
    SSL_CTX* native = impl->ctx->native_handle();
    if (max_tls_version != 0) {
      SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
      SSL_CTX_set_max_proto_version(native, max_tls_version);
    } else {
      SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION);
    }
    impl->ctx->load_verify_file(*ca, ec);
    if (ec) return Status::Internal("client: cannot load CA " + *ca + ": " + ec.message());
    impl->ctx->set_verify_mode(ssl::verify_peer, ec);
    if (identity) {
      impl->ctx->use_certificate_chain_file(identity->cert, ec);
      if (!ec) impl->ctx->use_private_key_file(identity->key, ssl::context::pem, ec);
      if (ec)
        return Status::Internal("client: cannot load " + identity->cert + ": " + ec.message());
    }
    impl->tls.emplace(impl->ioc, *impl->ctx);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(impl->tls->native_handle()), "127.0.0.1");
  } else {
    impl->plain.emplace(impl->ioc);
  }
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  ec = impl->RunOp([&](auto handler) { impl->Lowest().async_connect(endpoint, handler); }, timeout);
  if (ec) return Status::Unavailable("client: connect: " + ec.message());
  if (impl->tls) {
    ec = impl->RunOp(
        [&](auto handler) { impl->tls->async_handshake(ssl::stream_base::client, handler); },
        timeout);
    if (ec) return Status::Unavailable("client: TLS handshake: " + ec.message());
  }
  return std::unique_ptr<TestClient>(new TestClient(std::move(impl)));
}

Status TestClient::SendRaw(const std::string& bytes) {
  const error_code ec = impl_->WithStream([&](auto& stream) {
    return impl_->RunOp(
        [&](auto handler) { asio::async_write(stream, asio::buffer(bytes), handler); },
        impl_->timeout);
  });
  if (ec) return Status::Unavailable("client: write: " + ec.message());
  return Status::Ok();
}

Result<HttpResponse> TestClient::ReadResponse() {
  http::response_parser<http::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(64ull * 1024 * 1024);
  const error_code ec = impl_->WithStream([&](auto& stream) {
    return impl_->RunOp(
        [&](auto handler) { http::async_read(stream, impl_->buffer, parser, handler); },
        impl_->timeout);
  });
  if (ec) return Status::Unavailable("client: read: " + ec.message());
  const auto& res = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  out.body = res.body();
  out.keep_alive = res.keep_alive();
  return out;
}

Result<HttpResponse> TestClient::Request(const std::string& method, const std::string& target,
                                         const std::string& body, const std::string& content_type,
                                         const std::map<std::string, std::string>& extra) {
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1");
  if (!body.empty()) {
    if (!content_type.empty()) req.set(http::field::content_type, content_type);
    req.body() = body;
  }
  req.prepare_payload();
  for (const auto& [name, value] : extra) req.set(name, value);
  const error_code ec = impl_->WithStream([&](auto& stream) {
    return impl_->RunOp([&](auto handler) { http::async_write(stream, req, handler); },
                        impl_->timeout);
  });
  if (ec) return Status::Unavailable("client: write: " + ec.message());
  return ReadResponse();
}

bool TestClient::WaitForClose(std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  std::array<char, 4096> scratch;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    const error_code ec = impl_->WithStream([&](auto& stream) {
      return impl_->RunOp(
          [&](auto handler) { stream.async_read_some(asio::buffer(scratch), handler); }, left);
    });
    if (ec == beast::error::timeout) return false;
    if (ec) return true;
  }
}

}  // namespace safegate::server::testing
