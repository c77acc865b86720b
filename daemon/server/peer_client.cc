#include "daemon/server/peer_client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "daemon/server/tls.h"

namespace safegate::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr uint64_t kMaxResponseBytes = 1024 * 1024;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A fingerprint as the registry holds it: lower-case hex, no colons.
std::string NormalFingerprint(std::string_view fp) {
  std::string out;
  for (char c : fp) {
    if (c != ':') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

Result<PeerEndpoint> ParsePeerEndpoint(std::string_view endpoint) {
  constexpr std::string_view kScheme = "https://";
  auto bad = [&](std::string_view why) {
    return Status::Invalid("peer endpoint \"" + std::string(endpoint) + "\" " + std::string(why),
                           {{"endpoint", std::string(why)}});
  };
  if (Lower(endpoint.substr(0, kScheme.size())) != kScheme) return bad("is not an https:// URL");
  std::string_view rest = endpoint.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  PeerEndpoint out;
  if (slash != std::string_view::npos) {
    out.prefix = std::string(rest.substr(slash));
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  }
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() == ':') out.port = std::string(authority.substr(1));
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  if (out.host.empty()) return bad("has no host");
  if (out.port.empty()) out.port = "443";
  if (!std::all_of(out.port.begin(), out.port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad("has a port that is not a number");
  }
  return out;
}

struct PeerClient::Impl {
  ssl::context ctx{ssl::context::tls_client};
};

PeerClient::PeerClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PeerClient::~PeerClient() = default;

Result<std::unique_ptr<PeerClient>> PeerClient::Create(const config::Config::Tls& tls) {
  auto impl = std::make_unique<Impl>();
  SSL_CTX* c = impl->ctx.native_handle();
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set1_groups_list(c, "X25519:P-256:P-384") != 1) {
    return Status::Internal("peer client: cannot set the TLS policy: " + OpenSslErrorText());
  }
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(c, tls.cert.c_str()) != 1) {
    return Status::Invalid("tls.cert: " + tls.cert + ": " + OpenSslErrorText());
  }
  if (SSL_CTX_use_PrivateKey_file(c, tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status::Invalid("tls.key: " + tls.key + ": " + OpenSslErrorText());
  }
  if (SSL_CTX_load_verify_locations(c, tls.ca.c_str(), nullptr) != 1) {
    return Status::Invalid("tls.ca: " + tls.ca + ": " + OpenSslErrorText());
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_verify_depth(c, 4);
  return std::unique_ptr<PeerClient>(new PeerClient(std::move(impl)));
}

PeerResponse PeerClient::Post(const config::Peer& peer, std::string_view path,
                              const std::string& body, std::chrono::milliseconds timeout) const {
  PeerResponse out;
  auto endpoint = ParsePeerEndpoint(peer.endpoint);
  if (!endpoint.ok()) {
    out.error = endpoint.status().detail();
    return out;
  }
  asio::io_context ioc;
  beast::ssl_stream<beast::tcp_stream> stream(ioc, impl_->ctx);
  auto& lowest = beast::get_lowest_layer(stream);
  // SNI for names; certificates are pinned by fingerprint either way.
  error_code parse_ec;
  (void)asio::ip::make_address(endpoint->host, parse_ec);
  if (parse_ec) SSL_set_tlsext_host_name(stream.native_handle(), endpoint->host.c_str());

  // Runs one asynchronous operation to completion under the stream's deadline (on expiry
  // the socket is closed and the operation fails with timeout).
  auto run = [&](auto start) {
    error_code result = asio::error::would_block;
    lowest.expires_after(timeout);
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  };

  tcp::resolver resolver(ioc);
  tcp::resolver::results_type addresses;
  error_code ec = asio::error::would_block;
  resolver.async_resolve(endpoint->host, endpoint->port,
                         [&](error_code rec, tcp::resolver::results_type r) {
                           ec = rec;
                           addresses = std::move(r);
                         });
  ioc.run();
  if (ec) {
    out.error = "resolve " + endpoint->host + ": " + ec.message();
    return out;
  }
  ec = run([&](auto handler) { lowest.async_connect(addresses, handler); });
  if (ec) {
    out.error = "connect " + peer.endpoint + ": " + ec.message();
    return out;
  }
  ec = run([&](auto handler) { stream.async_handshake(ssl::stream_base::client, handler); });
  if (ec) {
    out.error = "TLS handshake with " + peer.endpoint + ": " + ec.message();
    return out;
  }
  // The certificate must be the one the registry names for this peer, not merely one the CA
  // signed: another agency's certificate from the same CA is not the peer gateway.
  X509* cert = SSL_get0_peer_certificate(stream.native_handle());
  const std::string fingerprint = cert != nullptr ? Sha256Fingerprint(cert) : "";
  bool pinned = false;
  for (const std::string& fp : peer.fingerprints) {
    pinned = pinned || (!fingerprint.empty() && NormalFingerprint(fp) == fingerprint);
  }
  if (!pinned) {
    out.error = "the certificate presented by " + peer.endpoint + " (" + fingerprint +
                ") is not one the registry lists for peer gateway " + peer.area;
    return out;
  }

  http::request<http::string_body> req{http::verb::post, endpoint->prefix + std::string(path),
                                       11};
  req.set(http::field::host, endpoint->host + ":" + endpoint->port);
  req.set(http::field::content_type, "application/octet-stream");
  req.set(http::field::user_agent, "safegate-peer");
  req.keep_alive(false);
  req.body() = body;
  req.prepare_payload();
  ec = run([&](auto handler) { http::async_write(stream, req, handler); });
  if (ec) {
    out.error = "send to " + peer.endpoint + ": " + ec.message();
    return out;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(64 * 1024);
  parser.body_limit(kMaxResponseBytes);
  ec = run([&](auto handler) { http::async_read(stream, buffer, parser, handler); });
  if (ec) {
    out.error = "answer from " + peer.endpoint + ": " + ec.message();
    return out;
  }
  out.status = static_cast<int>(parser.get().result_int());
  out.body = std::move(parser.get().body());
  // A bounded goodbye; the answer is already in hand.
  lowest.expires_after(std::chrono::milliseconds(std::min<int64_t>(timeout.count(), 1000)));
  stream.async_shutdown([](error_code) {});
  ioc.restart();
  ioc.run();
  return out;
}

}  // namespace safegate::server
