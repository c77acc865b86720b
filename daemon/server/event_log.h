// EventLog: the daemon's structured log. One line per event, either a JSON object with the
// stable keys "ts" (RFC 3339 UTC), "level" and "event" followed by the event's fields, or a
// text line "TS LEVEL EVENT key=value ..." (config log.format).
//
// Fields carry identifiers only (agency ids, routes, statuses, fingerprints, sizes): never
// names, subject details or record content.
//
// Creating an EventLog also makes it spdlog's default logger, so that plain spdlog messages
// from other parts of the daemon come out in the same format (event "log", field "message").
//
// Events are written by a background thread (spdlog's async logger, dropping the oldest
// queued lines if the queue is full) so that a slow log reader never blocks a network
// thread. Destroying the EventLog writes what is queued.
//
// Thread-safety: Event() may be called from any thread.
#pragma once

#include <memory>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "record/status.h"

namespace spdlog {
class logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace safegate::server {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

class EventLog {
 public:
  // Errors: kInvalidInput for an unknown level or format (config validation normally
  // catches both earlier).
  static Result<std::shared_ptr<EventLog>> Create(const config::Config::Log& options);

  void Event(LogLevel level, std::string_view event,
             const nlohmann::json& fields = nlohmann::json::object()) const;

  EventLog(std::shared_ptr<spdlog::details::thread_pool> pool,
           std::shared_ptr<spdlog::logger> logger, bool json);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

 private:
  std::shared_ptr<spdlog::details::thread_pool> pool_;  // outlives logger_
  std::shared_ptr<spdlog::logger> logger_;
  bool json_;
};

}  // namespace safegate::server
