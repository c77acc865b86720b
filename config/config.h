// The gateway's typed, validated, read-only configuration and the agency registry.
//
// Loading is the one place exceptions are used: LoadConfig and LoadRegistry throw
// ConfigError naming the file, line and key of the first problem (an unknown key, a wrong
// type, a missing required key, a bad value). main() catches it, prints it and exits 2.
// Every default lives in the member initialisers below, and only there.
// Relative paths in a config file are resolved against the directory holding that file.
//
// Thread-safety: the structs are plain values; after loading treat them as immutable and
// share them as std::shared_ptr<const ...>.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace safegate::config {

using std::chrono::milliseconds;

enum class Role { kPolice, kHealth, kCsc, kAudit, kCommittee, kGateway };
std::string_view RoleName(Role role);  // "police", "health", "csc", "audit", "committee", "gateway"
std::optional<Role> ParseRole(std::string_view name);

struct ConfigError : std::runtime_error {
  ConfigError(std::string file, int64_t line, std::string key, std::string message);
  std::string file;
  int64_t line;  // 0 when unknown
  std::string key;
  std::string message;
};

struct Agency {
  std::string id;    // slug: [a-z0-9-]+
  std::string name;
  Role role = Role::kCsc;
  std::string area;  // slug
  // SHA-256 fingerprints of the agency's certificates (DER), lower-case hex without colons.
  // Certificates listed under `certificates` in the file are read at load time and their
  // fingerprints added here.
  std::vector<std::string> fingerprints;
  // The files listed under `certificates`, resolved (for certificate expiry monitoring;
  // fingerprints given directly have no file).
  std::vector<std::string> certificate_files;
};

// Another area's gateway (out-of-area transfers).
struct Peer {
  std::string area;
  std::string endpoint;               // "https://host:port"
  std::vector<std::string> fingerprints;
  std::string signing_public_key;     // base64 Ed25519, may be empty until keys are exchanged
  std::string sealing_public_key;     // base64 X25519
  std::vector<std::string> certificate_files;  // as Agency::certificate_files
};

struct Registry {
  std::string source_file;
  std::vector<Agency> agencies;
  std::vector<Peer> peers;

  const Agency* Find(std::string_view id) const;
  const Agency* FindByFingerprint(std::string_view sha256_hex) const;
  // The agency of `role` in `area` (e.g. the audit agency of "bradford"), or null.
  const Agency* FindByRole(std::string_view area, Role role) const;
  // The peer gateway of `area`, or null.
  const Peer* FindPeer(std::string_view area) const;
  // The peer gateway whose certificate has this SHA-256 fingerprint (any case, colons
  // allowed), or null. A fingerprint belongs to one agency or one peer, never both.
  const Peer* FindPeerByFingerprint(std::string_view sha256_hex) const;
};

struct Config {
  std::string source_file;  // absolute path of the file loaded
  std::string area;         // this gateway's area, e.g. "bradford" (required)

  struct Listener {
    std::string address = "127.0.0.1";
    uint16_t port = 0;  // 0: the kernel picks; the chosen port is written to data_dir/ports.json
  };
  Listener listen;                                   // public mTLS listener
  Listener admin{"127.0.0.1", 0};                    // plain HTTP, /healthz and /metrics; loopback only

  std::string data_dir;  // required; holds safegate.db and store.key

  struct Tls {
    std::string cert;  // server certificate chain (PEM), required
    std::string key;   // its private key (PEM), required
    std::string ca;    // CA bundle that client certificates must chain to, required
    std::string crl;   // CRL (PEM); empty: no revocation list
    // Certificates (server, CA, registered agencies and peers) expiring within this window
    // are warned about at start, on reload and daily. An expired server certificate stops
    // the start whatever the window.
    milliseconds expiry_warning{30ll * 24 * 3600 * 1000};
  };
  Tls tls;

  std::string registry;  // agency registry file, required

  // The sharing policy file (docs/policy.md), optional. Empty: no policy is configured and
  // the gateway runs its placeholder policy (and says so in its log at start).
  std::string policy;

  struct Limits {
    uint64_t max_body_bytes = 16ull * 1024 * 1024;
    uint32_t max_header_bytes = 16 * 1024;
    uint32_t max_connections = 1024;
    milliseconds handshake_timeout{10'000};
    milliseconds read_timeout{30'000};   // to read one whole request once it has started
    milliseconds idle_timeout{60'000};   // keep-alive connection with no request
  };
  Limits limits;

  struct Log {
    std::string level = "info";   // trace, debug, info, warn, error, critical, off
    std::string format = "json";  // json (one object per line) or text
  };
  Log log;

  struct Mailbox {
    milliseconds ack_deadline{24 * 3600 * 1000ll};  // default per delivery
    // Per-purpose overrides, e.g. missing_child = "1h".
    std::map<std::string, milliseconds> ack_deadline_by_purpose{
        {"missing_child", milliseconds{3600 * 1000ll}}};
    milliseconds renotice_interval{24 * 3600 * 1000ll};  // repeat notices while unacked
    milliseconds expire_after{30ll * 24 * 3600 * 1000};  // then expire with a final notice
    milliseconds sweep_interval{60'000};                 // how often deadlines are checked
  };
  Mailbox mailbox;

  struct Store {
    std::string key_file;          // default: <data_dir>/store.key (created 0600 on first start)
    uint32_t max_batch = 512;      // most requests group-committed in one transaction
  };
  Store store;

  // The verifiable audit log (docs/audit-merkle.md): a signed tree head is made whenever the
  // log has grown and either sth_interval has passed since the last head or sth_max_entries
  // entries have no head yet.
  struct Audit {
    milliseconds sth_interval{100};
    uint32_t sth_max_entries = 1000;

    // [audit.forward] (docs/audit-log.md, "Forwarding"): every entry is also sent to a syslog
    // collector over TLS (RFC 5425 octet-counted frames of RFC 5424 messages), in seq order,
    // at least once; the log itself is the buffer while the collector is away.
    struct Forward {
      std::string address;      // "host:port" or "[v6]:port" of the collector, required
      std::string host;         // parsed from address
      std::string port;         // parsed from address (decimal, 1..65535)
      std::string ca;           // CA bundle the collector's certificate must chain to, required
      std::string cert;         // client certificate chain (PEM) for mutual TLS; with key
      std::string key;          // its private key (PEM); with cert
      // The name the collector's certificate must carry (DNS name or IP address), also sent
      // as SNI when it is a name. Empty in the file: the host of `address`.
      std::string server_name;
      std::string app_name = "safegate";  // RFC 5424 APP-NAME, 1..48 printable ASCII
      std::string hostname;     // RFC 5424 HOSTNAME, 1..255 printable ASCII; empty: the system's
      // Reconnection: exponential backoff with jitter from retry_initial up to retry_max.
      milliseconds retry_initial{1000};
      milliseconds retry_max{60'000};
      // How often the log is looked at for new entries while connected and idle.
      milliseconds poll_interval{200};
      milliseconds timeout{10'000};  // connect, handshake and each write
    };
    std::optional<Forward> forward;  // nullopt: no [audit.forward], nothing is forwarded
  };
  Audit audit;

  // Drop folders ([[drop]], docs/ingest.md): a file renamed into `dir` is ingested for
  // `agency` with the adapter `format`, all or nothing, then moved to dir/done or dir/failed.
  // The agency and the format are checked against the registry and the adapters when the
  // gateway starts (this loader knows neither).
  struct Drop {
    std::string agency;                   // registry id (slug), required
    std::string format;                   // adapter name, e.g. "niche-xml", required
    std::string dir;                      // absolute, required; unique among drops
    std::string purpose;                  // purpose of every record ingested, required
    std::vector<std::string> recipients;  // empty: the default recipients (docs/ingest.md)
  };
  std::vector<Drop> drops;

  // Out-of-area transfers (docs/transfers.md). Deadlines count working days from the
  // proposal; these values are the gateway's defaults, the same as the transfer library's
  // (daemon/transfer/working_days.h), which daemon/transfer/settings.h turns them into.
  struct Transfers {
    uint32_t acceptance_working_days = 1;   // both receiving leads accept within this
    uint32_t conference_working_days = 15;  // transfer-in child protection conference
    milliseconds escalation_interval{24 * 3600 * 1000ll};  // repeat transfer_escalated
    // Bank holidays, "YYYY-MM-DD" (checked to be real dates). nullopt: the transfer
    // library's built-in England and Wales list. A list given replaces it entirely (an area
    // with other holidays, such as Scotland, lists its own; [] means weekends only).
    std::optional<std::vector<std::string>> bank_holidays;
    // Outbox retries to a peer gateway: exponential backoff with jitter, starting at
    // retry_initial and never waiting longer than retry_max between attempts.
    milliseconds retry_initial{1000};
    milliseconds retry_max{5 * 60 * 1000};
  };
  Transfers transfers;

  uint32_t threads = 2;  // network threads running the io_context
};

// Throws ConfigError. Validates everything it can without touching the network.
Config LoadConfig(const std::string& path);
// Throws ConfigError. Reads certificate files named in the registry to take fingerprints.
Registry LoadRegistry(const std::string& path);

// The effective configuration as TOML, every default shown (for --print-config).
std::string PrintConfig(const Config& config);

// Parses durations written as "250ms", "30s", "15m", "1h", "5d". Returns nullopt if bad.
std::optional<milliseconds> ParseDuration(std::string_view text);
// The inverse: the largest whole unit, e.g. 90000ms -> "90s", 3600000ms -> "1h".
std::string FormatDuration(milliseconds duration);

}  // namespace safegate::config
