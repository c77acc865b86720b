// SyslogForwarder: sends every audit entry to a syslog collector over TLS ([audit.forward],
// docs/audit-log.md, "Forwarding"), on a thread of its own.
//
// The audit log is the buffer. The forwarder keeps a durable cursor, the seq of the last
// entry it has written to the collector (<data_dir>/audit-forward.json, replaced atomically),
// and reads the entries after it in seq order over its own read-only SQLite connection (WAL
// readers never block the store's writer). Each entry goes as one RFC 5424 message in an
// RFC 5425 octet-counted frame; after a batch has been written to the connection the cursor
// moves past it. While the collector cannot be reached, nothing moves: entries wait in the
// log and go, in order, once a connection is made again (exponential backoff with jitter in
// between). Delivery is at least once: an entry written just before a crash or a broken
// connection, but not yet under the cursor, is sent again; every message carries its seq so
// that the collector can drop the repeat.
//
// What is sent is the entry's committed bytes (which carry no identifying details: those are
// sealed per subject, see docs/audit-log.md), its seq, its Merkle leaf hash and chain hash.
//
// Ownership: the EventLog and Metrics are not owned and must outlive the forwarder; Stop()
// (or the destructor) joins the thread. Thread-safety: Wake() and Stop() may be called from
// any thread; the free functions are pure (the cursor functions touch only their file).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>

#include "config/config.h"
#include "record/status.h"

namespace safegate::server {

class EventLog;
class Metrics;

// The RFC 5424 private enterprise number of the structured data element
// (`[safegate@32473 ...]`; 32473 is the number RFC 5612 sets aside for examples and
// documentation, used until safegate has one of its own).
inline constexpr std::string_view kSyslogSdId = "safegate@32473";

// One audit entry as it is forwarded.
struct ForwardedEntry {
  int64_t seq = 0;
  std::string entry;  // the stored entry bytes (canonical JSON), verbatim
  std::string hash;   // the chain hash h_seq, 32 raw bytes
};

// The fixed parts of each message's header.
struct SyslogHeader {
  std::string hostname;  // RFC 5424 HOSTNAME
  std::string app_name;  // RFC 5424 APP-NAME
  std::string procid;    // RFC 5424 PROCID (the daemon's pid)
  std::string area;      // this gateway's area, in the structured data
};

// The RFC 5424 message for `e`:
//   <110>1 AT HOSTNAME APP-NAME PROCID ACTION [safegate@32473 seq="N" leaf="HEX" chain="HEX"
//   area="AREA"] BOM ENTRY
// PRI 110 is facility 13 (log audit), severity 6 (informational). AT and ACTION come from the
// entry's bytes ("-" when they cannot be read or are not valid header values); ENTRY is the
// stored bytes verbatim, after the UTF-8 byte order mark RFC 5424 requires of UTF-8 MSG.
std::string SyslogMessage(const ForwardedEntry& e, const SyslogHeader& header);
// RFC 5425 octet counting: `MSG-LEN SP SYSLOG-MSG`.
std::string OctetCountedFrame(std::string_view message);

// The cursor file: {"seq": N, "address": "host:port", "written_at_ms": T}. A missing file is
// seq 0 (nothing forwarded yet). kInvalidInput naming the file when it is not a cursor.
Result<int64_t> ReadForwardCursor(const std::string& path);
// Replaces the cursor file atomically (temporary file, fsync, rename, fsync of the directory).
Status WriteForwardCursor(const std::string& path, int64_t seq, const std::string& address);
// <data_dir>/audit-forward.json
std::string ForwardCursorPath(const std::string& data_dir);

struct SyslogForwarderOptions {
  config::Config::Audit::Forward forward;
  std::string data_dir;  // holds safegate.db and the cursor file
  std::string area;
  const EventLog* log = nullptr;
  Metrics* metrics = nullptr;  // optional
  int batch = 256;             // entries read and written per round
};

class SyslogForwarder {
 public:
  // Loads the TLS files and reads the cursor. Errors: kInvalidInput naming the file when the
  // CA, client certificate or key cannot be loaded or the cursor file is not a cursor.
  static Result<std::unique_ptr<SyslogForwarder>> Start(SyslogForwarderOptions options);
  ~SyslogForwarder();
  SyslogForwarder(const SyslogForwarder&) = delete;
  SyslogForwarder& operator=(const SyslogForwarder&) = delete;

  // Looks at the log now rather than at the next poll.
  void Wake();
  // Finishes the write in progress (bounded by the timeout), closes the connection, joins.
  // Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit SyslogForwarder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace safegate::server
