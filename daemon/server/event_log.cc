#include "daemon/server/event_log.h"

#include <time.h>

#include <chrono>
#include <string>
#include <utility>

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace safegate::server {
namespace {

// Lines waiting for the writer thread; beyond this the oldest are dropped, never blocking.
constexpr size_t kQueuedLines = 8192;

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

spdlog::level::level_enum ToSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::err;
}

// "2024-05-01T10:00:00.123Z"
void AppendTimestamp(std::chrono::system_clock::time_point tp, std::string& out) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  const int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         static_cast<int>(ms % 1000));
  out.append(buf, static_cast<size_t>(n));
}

std::string Quote(std::string_view text) {
  // Never throws: invalid UTF-8 is replaced rather than rejected.
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Formats one line. For the event logger the payload is already the event's serialised
// fields (see EventLog::Event); for the default logger it is a free-text message.
class LineFormatter final : public spdlog::formatter {
 public:
  LineFormatter(bool json, bool payload_is_fields) : json_(json), fields_(payload_is_fields) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    std::string line;
    line.reserve(payload.size() + 64);
    if (json_) {
      line += "{\"ts\":\"";
      AppendTimestamp(msg.time, line);
      line += "\",\"level\":\"";
      line += LevelName(msg.level);
      line += "\",";
      if (fields_) {
        line += payload;
      } else {
        line += "\"event\":\"log\",\"message\":";
        line += Quote(payload);
      }
      line += "}\n";
    } else {
      AppendTimestamp(msg.time, line);
      line += ' ';
      line += LevelName(msg.level);
      line += ' ';
      if (!fields_) line += "log ";
      line += payload;
      line += '\n';
    }
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LineFormatter>(json_, fields_);
  }

 private:
  bool json_;
  bool fields_;
};

}  // namespace

Result<std::shared_ptr<EventLog>> EventLog::Create(const config::Config::Log& options) {
  bool json;
  if (options.format == "json") {
    json = true;
  } else if (options.format == "text") {
    json = false;
  } else {
    return Status::Invalid("log.format must be \"json\" or \"text\", not \"" + options.format +
                           "\"");
  }
  const auto level = spdlog::level::from_str(options.level);
  if (level == spdlog::level::off && options.level != "off") {
    return Status::Invalid("log.level \"" + options.level + "\" is not a level");
  }
  // Formatters belong to sinks in spdlog, so each logger gets its own sink (both write to
  // stderr; each line is one fwrite, which stdio keeps whole).
  auto pool = std::make_shared<spdlog::details::thread_pool>(kQueuedLines, 1);
  auto events = std::make_shared<spdlog::async_logger>(
      "safegated", std::make_shared<spdlog::sinks::stderr_sink_mt>(), pool,
      spdlog::async_overflow_policy::overrun_oldest);
  events->set_formatter(std::make_unique<LineFormatter>(json, /*payload_is_fields=*/true));
  events->set_level(level);
  events->flush_on(spdlog::level::trace);

  // The default logger stays synchronous: other parts of the daemon may log through it
  // after this EventLog (and its thread pool) is gone, and they log rarely.
  auto plain = std::make_shared<spdlog::logger>("safegate",
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
  plain->set_formatter(std::make_unique<LineFormatter>(json, /*payload_is_fields=*/false));
  plain->set_level(level);
  plain->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(plain);

  return std::make_shared<EventLog>(std::move(pool), std::move(events), json);
}

EventLog::EventLog(std::shared_ptr<spdlog::details::thread_pool> pool,
                   std::shared_ptr<spdlog::logger> logger, bool json)
    : pool_(std::move(pool)), logger_(std::move(logger)), json_(json) {}

EventLog::~EventLog() {
  logger_->flush();
  logger_.reset();
  pool_.reset();  // joins the writer after it has written every queued line
}

void EventLog::Event(LogLevel level, std::string_view event, const nlohmann::json& fields) const {
  const auto spd_level = ToSpd(level);
  if (!logger_->should_log(spd_level)) return;
  std::string line;
  if (json_) {
    line = "\"event\":" + Quote(event);
    if (fields.is_object()) {
      for (const auto& [key, value] : fields.items()) {
        line += ',';
        line += Quote(key);
        line += ':';
        line += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
    }
  } else {
    line = std::string(event);
    if (fields.is_object()) {
      for (const auto& [key, value] : fields.items()) {
        line += ' ';
        line += key;
        line += '=';
        if (value.is_string()) {
          const auto& s = value.get_ref<const std::string&>();
          bool plain = !s.empty();
          for (char c : s) {
            if (static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == '=' || c == '\\') {
              plain = false;
            }
          }
          line += plain ? s : Quote(s);
        } else {
          line += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
      }
    }
  }
  logger_->log(spd_level, "{}", line);
}

}  // namespace safegate::server
