// Loading and validation of the gateway configuration and the agency registry.
//
// Each file is read in three steps, as sshd does: parse the TOML, walk every table checking
// that each key is known and of the right type (recording the line of each value), then check
// the values against each other and against the file system. The first problem found is thrown
// as ConfigError naming the file, the line and the dotted key, so an operator can go straight
// to it.
#include "config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

namespace safegate::config {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                           "error", "critical", "off"};
constexpr std::string_view kLogFormats[] = {"json", "text"};

std::string FormatError(const std::string& file, int64_t line, const std::string& key,
                        const std::string& message) {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

std::string JoinKey(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  std::string out(prefix);
  out += '.';
  out += key;
  return out;
}

int64_t LineOf(const toml::node& node) { return static_cast<int64_t>(node.source().begin.line); }

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

bool IsSlug(std::string_view s) {
  if (s.empty() || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// Purpose names are policy identifiers such as "missing_child".
bool IsPurposeName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Edit distance, to suggest the key the operator probably meant.
size_t Distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Reads values out of one parsed TOML document, turning every problem into a ConfigError that
// names this document.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }

  [[noreturn]] void Fail(int64_t line, const std::string& key, const std::string& message) const {
    throw ConfigError(file_, line, key, message);
  }

  // Every key of `table` must be one of `allowed`.
  void CheckKeys(const toml::table& table, std::string_view prefix,
                 std::initializer_list<std::string_view> allowed) const {
    for (const auto& [key, node] : table) {
      std::string_view name = key.str();
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
      std::string message = "unknown key";
      std::string_view best;
      size_t best_distance = 3;  // suggest only near misses
      for (std::string_view candidate : allowed) {
        size_t d = Distance(name, candidate);
        if (d < best_distance) {
          best_distance = d;
          best = candidate;
        }
      }
      if (!best.empty()) message += " (did you mean \"" + std::string(best) + "\"?)";
      int64_t line = key.source().begin.line > 0 ? static_cast<int64_t>(key.source().begin.line)
                                                 : LineOf(node);
      Fail(line, JoinKey(prefix, name), message);
    }
  }

  const toml::table* Table(const toml::table& parent, std::string_view prefix,
                           std::string_view key) const {
    const toml::node* node = parent.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) {
      Fail(LineOf(*node), JoinKey(prefix, key),
           "expected a table, found " + std::string(TypeName(*node)));
    }
    return node->as_table();
  }

  const toml::array* Array(const toml::table& parent, std::string_view prefix,
                           std::string_view key) const {
    const toml::node* node = parent.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_array()) {
      Fail(LineOf(*node), JoinKey(prefix, key),
           "expected an array, found " + std::string(TypeName(*node)));
    }
    return node->as_array();
  }

  // A string value; nullopt when absent. `line` receives the value's line when present.
  std::optional<std::string> String(const toml::table& parent, std::string_view prefix,
                                    std::string_view key, int64_t* line = nullptr) const {
    const toml::node* node = parent.get(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_string()) {
      Fail(LineOf(*node), JoinKey(prefix, key),
           "expected a string, found " + std::string(TypeName(*node)));
    }
    if (line != nullptr) *line = LineOf(*node);
    return node->as_string()->get();
  }

  std::string RequiredString(const toml::table& parent, std::string_view prefix,
                             std::string_view key, int64_t* line = nullptr) const {
    std::optional<std::string> value = String(parent, prefix, key, line);
    if (!value) Fail(LineOf(parent), JoinKey(prefix, key), "required key is missing");
    if (value->empty()) {
      Fail(LineOf(*parent.get(key)), JoinKey(prefix, key), "must not be empty");
    }
    return *value;
  }

  // An integer in [min, max]; nullopt when absent.
  std::optional<int64_t> Integer(const toml::table& parent, std::string_view prefix,
                                 std::string_view key, int64_t min, int64_t max) const {
    const toml::node* node = parent.get(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_integer()) {
      Fail(LineOf(*node), JoinKey(prefix, key),
           "expected an integer, found " + std::string(TypeName(*node)));
    }
    int64_t value = node->as_integer()->get();
    if (value < min || value > max) {
      Fail(LineOf(*node), JoinKey(prefix, key),
           "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", not " +
               std::to_string(value));
    }
    return value;
  }

  template <typename T>
  void ReadInteger(const toml::table& parent, std::string_view prefix, std::string_view key,
                   int64_t min, int64_t max, T& out) const {
    if (auto value = Integer(parent, prefix, key, min, max)) out = static_cast<T>(*value);
  }

  milliseconds DurationValue(const toml::node& node, const std::string& dotted,
                             bool allow_zero) const {
    if (!node.is_string()) {
      Fail(LineOf(node), dotted,
           "expected a duration string such as \"30s\", found " + std::string(TypeName(node)));
    }
    const std::string& text = node.as_string()->get();
    std::optional<milliseconds> value = ParseDuration(text);
    if (!value) {
      Fail(LineOf(node), dotted,
           "bad duration \"" + text +
               "\": write a whole number and a unit: ms, s, m, h or d (e.g. \"250ms\", \"30s\", "
               "\"15m\", \"1h\", \"5d\")");
    }
    if (!allow_zero && value->count() == 0) Fail(LineOf(node), dotted, "must be more than 0");
    return *value;
  }

  void ReadDuration(const toml::table& parent, std::string_view prefix, std::string_view key,
                    milliseconds& out) const {
    const toml::node* node = parent.get(key);
    if (node == nullptr) return;
    out = DurationValue(*node, JoinKey(prefix, key), /*allow_zero=*/false);
  }

  // An array of strings; empty when absent.
  std::vector<std::pair<std::string, int64_t>> StringArray(const toml::table& parent,
                                                           std::string_view prefix,
                                                           std::string_view key) const {
    std::vector<std::pair<std::string, int64_t>> out;
    const toml::array* array = Array(parent, prefix, key);
    if (array == nullptr) return out;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& item = *array->get(i);
      if (!item.is_string()) {
        Fail(LineOf(item), JoinKey(prefix, key) + "[" + std::to_string(i) + "]",
             "expected a string, found " + std::string(TypeName(item)));
      }
      out.emplace_back(item.as_string()->get(), LineOf(item));
    }
    return out;
  }

 private:
  std::string file_;
};

std::string AbsoluteFile(const std::string& path) {
  std::error_code ec;
  fs::path absolute = fs::absolute(fs::path(path), ec);
  if (ec) return path;
  return absolute.lexically_normal().string();
}

// Relative paths in a file are relative to the directory holding that file, so a config and
// its certificates can move together.
std::string Resolve(const fs::path& base_dir, const std::string& value) {
  if (value.empty()) return value;
  fs::path p(value);
  if (p.is_relative()) p = base_dir / p;
  return p.lexically_normal().string();
}

std::string ReadWholeFile(const std::string& path) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    throw ConfigError(path, 0, "", "cannot read: no such file");
  }
  if (fs::is_directory(status)) throw ConfigError(path, 0, "", "cannot read: is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, "", std::string("cannot read: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

toml::table ParseToml(const std::string& path) {
  std::string text = ReadWholeFile(path);
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(path, static_cast<int64_t>(e.source().begin.line), "",
                      "TOML syntax error: " + std::string(e.description()));
  }
}

// The file must exist, be a regular file and be readable by this process now.
void RequireReadableFile(const Reader& reader, int64_t line, const std::string& key,
                         const std::string& path) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) reader.Fail(line, key, "file not found: " + path);
  if (!fs::is_regular_file(status)) reader.Fail(line, key, "not a regular file: " + path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    reader.Fail(line, key, "cannot read " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
}

bool IsIpAddress(const std::string& address) {
  unsigned char buf[16];
  return inet_pton(AF_INET, address.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, address.c_str(), buf) == 1;
}

bool IsLoopback(const std::string& address) {
  unsigned char v4[4];
  if (inet_pton(AF_INET, address.c_str(), v4) == 1) return v4[0] == 127;
  unsigned char v6[16];
  if (inet_pton(AF_INET6, address.c_str(), v6) == 1) {
    for (int i = 0; i < 15; ++i) {
      if (v6[i] != 0) return false;
    }
    return v6[15] == 1;
  }
  return false;
}

void ReadListener(const Reader& reader, const toml::table& root, std::string_view name,
                  bool loopback_only, Config::Listener& out) {
  const toml::table* table = reader.Table(root, "", name);
  if (table == nullptr) return;
  std::string prefix(name);
  reader.CheckKeys(*table, prefix, {"address", "port"});
  int64_t line = 0;
  if (auto address = reader.String(*table, prefix, "address", &line)) {
    if (!IsIpAddress(*address)) {
      reader.Fail(line, prefix + ".address", "\"" + *address + "\" is not an IPv4 or IPv6 address");
    }
    if (loopback_only && !IsLoopback(*address)) {
      reader.Fail(line, prefix + ".address",
                  "\"" + *address +
                      "\" is not a loopback address: the admin listener serves plain HTTP and "
                      "must bind 127.0.0.0/8 or ::1");
    }
    out.address = *address;
  }
  reader.ReadInteger(*table, prefix, "port", 0, 65535, out.port);
}

std::string LowerHex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

// "AB:CD:..." or "abcd..." -> "abcd..."; nullopt unless it is 32 bytes of hex.
std::optional<std::string> NormaliseFingerprint(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ':') continue;
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    out += c;
  }
  if (out.size() != 64) return std::nullopt;
  return out;
}

// SHA-256 of the DER of the first certificate in a PEM file (the leaf of a chain file).
std::string CertificateFingerprint(const Reader& reader, int64_t line, const std::string& key,
                                   const std::string& path) {
  RequireReadableFile(reader, line, key, path);
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) reader.Fail(line, key, "cannot read " + path);
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) reader.Fail(line, key, "no PEM certificate in " + path);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  int ok = X509_digest(cert, EVP_sha256(), md, &size);
  X509_free(cert);
  if (ok != 1) reader.Fail(line, key, "cannot take the SHA-256 of " + path);
  return LowerHex(md, size);
}

bool IsBase64Key(const std::string& text, size_t expected_bytes) {
  if (text.size() % 4 != 0 || text.empty()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || (c == '=' && i >= text.size() - 2);
    if (!ok) return false;
  }
  size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  if (padding == 1 && text.back() != '=') return false;
  return text.size() / 4 * 3 - padding == expected_bytes;
}

// Fingerprints listed directly and those of listed certificate files, normalised and without
// repeats (listing a certificate and its fingerprint both is harmless).
std::vector<std::string> ReadFingerprints(const Reader& reader, const toml::table& table,
                                          const std::string& prefix, const fs::path& base_dir) {
  std::vector<std::string> out;
  auto add = [&out](std::string fp) {
    if (std::find(out.begin(), out.end(), fp) == out.end()) out.push_back(std::move(fp));
  };
  auto fingerprints = reader.StringArray(table, prefix, "fingerprints");
  for (size_t i = 0; i < fingerprints.size(); ++i) {
    const auto& [text, line] = fingerprints[i];
    std::optional<std::string> fp = NormaliseFingerprint(text);
    if (!fp) {
      reader.Fail(line, prefix + ".fingerprints[" + std::to_string(i) + "]",
                  "\"" + text + "\" is not a SHA-256 fingerprint (64 hex digits, colons allowed)");
    }
    add(*fp);
  }
  auto certificates = reader.StringArray(table, prefix, "certificates");
  for (size_t i = 0; i < certificates.size(); ++i) {
    const auto& [text, line] = certificates[i];
    std::string key = prefix + ".certificates[" + std::to_string(i) + "]";
    if (text.empty()) reader.Fail(line, key, "must not be empty");
    add(CertificateFingerprint(reader, line, key, Resolve(base_dir, text)));
  }
  return out;
}

std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

// [[drop]] tables: drop folders, one per agency and format (docs/ingest.md).
void ReadDrops(const Reader& reader, const toml::table& root, const fs::path& base_dir,
               Config& config) {
  const toml::array* drops = reader.Array(root, "", "drop");
  if (drops == nullptr) return;
  const std::string data_dir = fs::path(config.data_dir).lexically_normal().string();
  for (size_t i = 0; i < drops->size(); ++i) {
    const toml::node& item = *drops->get(i);
    const std::string prefix = "drop[" + std::to_string(i) + "]";
    if (!item.is_table()) {
      reader.Fail(LineOf(item), prefix,
                  "expected a table ([[drop]]), found " + std::string(TypeName(item)));
    }
    const toml::table& table = *item.as_table();
    reader.CheckKeys(table, prefix, {"agency", "format", "dir", "purpose", "recipients"});
    Config::Drop drop;
    int64_t line = 0;
    drop.agency = reader.RequiredString(table, prefix, "agency", &line);
    if (!IsSlug(drop.agency)) {
      reader.Fail(line, prefix + ".agency", "\"" + drop.agency + "\" is not an agency id (a slug)");
    }
    drop.format = reader.RequiredString(table, prefix, "format", &line);
    if (!IsSlug(drop.format)) {
      reader.Fail(line, prefix + ".format",
                  "\"" + drop.format + "\" is not a format name such as \"niche-xml\"");
    }
    drop.purpose = reader.RequiredString(table, prefix, "purpose", &line);
    if (!IsPurposeName(drop.purpose)) {
      reader.Fail(line, prefix + ".purpose", "purpose names use a-z, 0-9, _ and - only");
    }
    drop.dir = Resolve(base_dir, reader.RequiredString(table, prefix, "dir", &line));
    {
      std::error_code ec;
      auto status = fs::status(drop.dir, ec);
      if (!ec && fs::exists(status) && !fs::is_directory(status)) {
        reader.Fail(line, prefix + ".dir", "exists and is not a directory: " + drop.dir);
      }
    }
    const std::string dir = fs::path(drop.dir).lexically_normal().string();
    if (dir == data_dir) {
      reader.Fail(line, prefix + ".dir", "must not be the data directory: " + drop.dir);
    }
    for (const Config::Drop& other : config.drops) {
      if (fs::path(other.dir).lexically_normal().string() == dir) {
        reader.Fail(line, prefix + ".dir", "another [[drop]] already watches " + drop.dir);
      }
    }
    auto recipients = reader.StringArray(table, prefix, "recipients");
    for (size_t r = 0; r < recipients.size(); ++r) {
      const auto& [id, at] = recipients[r];
      if (!IsSlug(id)) {
        reader.Fail(at, prefix + ".recipients[" + std::to_string(r) + "]",
                    "\"" + id + "\" is not an agency id (a slug)");
      }
      drop.recipients.push_back(id);
    }
    config.drops.push_back(std::move(drop));
  }
}

// "YYYY-MM-DD", years 0001..9999, a real date of the Gregorian calendar.
bool IsIsoDate(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  for (size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u}) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  auto number = [&](size_t from, size_t n) {
    int value = 0;
    for (size_t i = from; i < from + n; ++i) value = value * 10 + (text[i] - '0');
    return value;
  };
  const int year = number(0, 4), month = number(5, 2), day = number(8, 2);
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

// [transfers]: deadlines, bank holidays and outbox retries of out-of-area transfers.
void ReadTransfers(const Reader& reader, const toml::table& root, Config& config) {
  const toml::table* table = reader.Table(root, "", "transfers");
  if (table == nullptr) return;
  const std::string prefix = "transfers";
  reader.CheckKeys(*table, prefix,
                   {"acceptance_working_days", "conference_working_days", "escalation_interval",
                    "bank_holidays", "retry_initial", "retry_max"});
  Config::Transfers& t = config.transfers;
  reader.ReadInteger(*table, prefix, "acceptance_working_days", 1, 365, t.acceptance_working_days);
  reader.ReadInteger(*table, prefix, "conference_working_days", 1, 365, t.conference_working_days);
  reader.ReadDuration(*table, prefix, "escalation_interval", t.escalation_interval);
  reader.ReadDuration(*table, prefix, "retry_initial", t.retry_initial);
  reader.ReadDuration(*table, prefix, "retry_max", t.retry_max);
  if (t.retry_max < t.retry_initial) {
    if (const toml::node* max = table->get("retry_max")) {
      reader.Fail(LineOf(*max), prefix + ".retry_max",
                  "must not be shorter than transfers.retry_initial (" +
                      FormatDuration(t.retry_initial) + ")");
    }
    reader.Fail(LineOf(*table->get("retry_initial")), prefix + ".retry_initial",
                "must not be longer than transfers.retry_max (" + FormatDuration(t.retry_max) +
                    ", the default)");
  }
  if (const toml::array* holidays = reader.Array(*table, prefix, "bank_holidays")) {
    std::vector<std::string> dates;
    for (size_t i = 0; i < holidays->size(); ++i) {
      const toml::node& item = *holidays->get(i);
      const std::string key = prefix + ".bank_holidays[" + std::to_string(i) + "]";
      std::string date;
      if (const auto* d = item.as_date()) {
        // A TOML local date (2026-12-25, unquoted); the parser has checked it is real.
        char buf[16];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", static_cast<int>(d->get().year),
                      static_cast<int>(d->get().month), static_cast<int>(d->get().day));
        date = buf;
      } else if (item.is_string()) {
        date = item.as_string()->get();
      } else {
        reader.Fail(LineOf(item), key,
                    "expected a date such as \"2026-12-25\", found " + std::string(TypeName(item)));
      }
      if (!IsIsoDate(date)) {
        reader.Fail(LineOf(item), key,
                    "\"" + date + "\" is not a real date written YYYY-MM-DD (e.g. \"2026-12-25\")");
      }
      if (std::find(dates.begin(), dates.end(), date) != dates.end()) {
        reader.Fail(LineOf(item), key, date + " is listed twice");
      }
      dates.push_back(std::move(date));
    }
    t.bank_holidays = std::move(dates);
  }
}

// RFC 5424 header fields (APP-NAME, HOSTNAME) are 1*N PRINTUSASCII: bytes 33..126.
bool IsPrintUsAscii(std::string_view s, size_t max) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [](char c) {
    return c >= 33 && c <= 126;
  });
}

// [audit.forward]: the syslog collector the audit log is forwarded to (docs/audit-log.md,
// "Forwarding").
void ReadAuditForward(const Reader& reader, const toml::table& audit, const fs::path& base_dir,
                      Config& config) {
  const toml::table* table = reader.Table(audit, "audit", "forward");
  if (table == nullptr) return;
  const std::string prefix = "audit.forward";
  reader.CheckKeys(*table, prefix,
                   {"address", "ca", "cert", "key", "server_name", "app_name", "hostname",
                    "retry_initial", "retry_max", "poll_interval", "timeout"});
  Config::Audit::Forward f;
  int64_t line = 0;
  f.address = reader.RequiredString(*table, prefix, "address", &line);
  {
    const std::string& a = f.address;
    auto bad = [&](const std::string& why) {
      reader.Fail(line, prefix + ".address",
                  "\"" + a + "\" " + why + ": write host:port, e.g. \"logs.example.org:6514\"");
    };
    std::string port;
    if (!a.empty() && a.front() == '[') {
      const size_t close = a.find(']');
      if (close == std::string::npos) bad("has an unclosed IPv6 address");
      f.host = a.substr(1, close - 1);
      if (close + 1 >= a.size() || a[close + 1] != ':') bad("has no port");
      port = a.substr(close + 2);
    } else {
      const size_t colon = a.rfind(':');
      if (colon == std::string::npos) bad("has no port");
      f.host = a.substr(0, colon);
      if (f.host.find(':') != std::string::npos) bad("has an IPv6 address without [ ]");
      port = a.substr(colon + 1);
    }
    if (f.host.empty()) bad("has no host");
    if (!std::all_of(f.host.begin(), f.host.end(), [](char c) { return c > 32 && c < 127; })) {
      bad("has a host with spaces or control characters");
    }
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      bad("has a port that is not a number from 1 to 65535");
    }
    f.port = port;
  }
  f.ca = Resolve(base_dir, reader.RequiredString(*table, prefix, "ca", &line));
  RequireReadableFile(reader, line, prefix + ".ca", f.ca);
  int64_t cert_line = 0;
  int64_t key_line = 0;
  const std::optional<std::string> cert = reader.String(*table, prefix, "cert", &cert_line);
  const std::optional<std::string> key = reader.String(*table, prefix, "key", &key_line);
  if (cert && cert->empty()) reader.Fail(cert_line, prefix + ".cert", "must name a file (or leave the key out)");
  if (key && key->empty()) reader.Fail(key_line, prefix + ".key", "must name a file (or leave the key out)");
  if (cert && !key) {
    reader.Fail(cert_line, prefix + ".cert",
                "a client certificate needs its private key: add audit.forward.key");
  }
  if (key && !cert) {
    reader.Fail(key_line, prefix + ".key",
                "a private key needs its certificate: add audit.forward.cert");
  }
  if (cert) {
    f.cert = Resolve(base_dir, *cert);
    RequireReadableFile(reader, cert_line, prefix + ".cert", f.cert);
    f.key = Resolve(base_dir, *key);
    RequireReadableFile(reader, key_line, prefix + ".key", f.key);
  }
  // A printable-ASCII token of at most `max` characters; `what` names it in the refusal.
  auto token = [&](std::string_view name, size_t max,
                   std::string_view what) -> std::optional<std::string> {
    int64_t at = 0;
    auto value = reader.String(*table, prefix, name, &at);
    if (value && !IsPrintUsAscii(*value, max)) {
      reader.Fail(at, prefix + "." + std::string(name),
                  "\"" + *value + "\" is not " + std::string(what) + " (1 to " +
                      std::to_string(max) + " printable ASCII characters, no spaces)");
    }
    return value;
  };
  f.server_name = token("server_name", 253, "a host name or IP address").value_or(f.host);
  if (auto app = token("app_name", 48, "an RFC 5424 APP-NAME")) f.app_name = *app;
  if (auto host = token("hostname", 255, "an RFC 5424 HOSTNAME")) f.hostname = *host;
  reader.ReadDuration(*table, prefix, "retry_initial", f.retry_initial);
  reader.ReadDuration(*table, prefix, "retry_max", f.retry_max);
  reader.ReadDuration(*table, prefix, "poll_interval", f.poll_interval);
  reader.ReadDuration(*table, prefix, "timeout", f.timeout);
  if (f.retry_max < f.retry_initial) {
    const toml::node* max = table->get("retry_max");
    const toml::node* initial = table->get("retry_initial");
    if (max != nullptr) {
      reader.Fail(LineOf(*max), prefix + ".retry_max",
                  "must not be shorter than audit.forward.retry_initial (" +
                      FormatDuration(f.retry_initial) + ")");
    }
    reader.Fail(initial != nullptr ? LineOf(*initial) : LineOf(*table), prefix + ".retry_initial",
                "must not be longer than audit.forward.retry_max (" + FormatDuration(f.retry_max) +
                    ", the default)");
  }
  config.audit.forward = std::move(f);
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kPolice:
      return "police";
    case Role::kHealth:
      return "health";
    case Role::kCsc:
      return "csc";
    case Role::kAudit:
      return "audit";
    case Role::kCommittee:
      return "committee";
    case Role::kGateway:
      return "gateway";
  }
  return "unknown";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role role :
       {Role::kPolice, Role::kHealth, Role::kCsc, Role::kAudit, Role::kCommittee, Role::kGateway}) {
    if (RoleName(role) == name) return role;
  }
  return std::nullopt;
}

ConfigError::ConfigError(std::string file_in, int64_t line_in, std::string key_in,
                         std::string message_in)
    : std::runtime_error(FormatError(file_in, line_in, key_in, message_in)),
      file(std::move(file_in)),
      line(line_in),
      key(std::move(key_in)),
      message(std::move(message_in)) {}

const Agency* Registry::Find(std::string_view id) const {
  for (const Agency& agency : agencies) {
    if (agency.id == id) return &agency;
  }
  return nullptr;
}

const Agency* Registry::FindByFingerprint(std::string_view sha256_hex) const {
  std::optional<std::string> fp = NormaliseFingerprint(sha256_hex);
  if (!fp) return nullptr;
  for (const Agency& agency : agencies) {
    if (std::find(agency.fingerprints.begin(), agency.fingerprints.end(), *fp) !=
        agency.fingerprints.end()) {
      return &agency;
    }
  }
  return nullptr;
}

const Agency* Registry::FindByRole(std::string_view area, Role role) const {
  for (const Agency& agency : agencies) {
    if (agency.area == area && agency.role == role) return &agency;
  }
  return nullptr;
}

const Peer* Registry::FindPeer(std::string_view area) const {
  for (const Peer& peer : peers) {
    if (peer.area == area) return &peer;
  }
  return nullptr;
}

const Peer* Registry::FindPeerByFingerprint(std::string_view sha256_hex) const {
  std::optional<std::string> fp = NormaliseFingerprint(sha256_hex);
  if (!fp) return nullptr;
  for (const Peer& peer : peers) {
    if (std::find(peer.fingerprints.begin(), peer.fingerprints.end(), *fp) !=
        peer.fingerprints.end()) {
      return &peer;
    }
  }
  return nullptr;
}

std::optional<milliseconds> ParseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 15) return std::nullopt;  // 15 digits cannot overflow below
  int64_t number = 0;
  for (size_t i = 0; i < digits; ++i) number = number * 10 + (text[i] - '0');
  std::string_view unit = text.substr(digits);
  int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60 * 1000;
  } else if (unit == "h") {
    scale = 3600 * 1000;
  } else if (unit == "d") {
    scale = 24 * 3600 * 1000;
  } else {
    return std::nullopt;
  }
  // About 292 million years fit in int64 milliseconds; refuse anything that would not.
  if (number > std::numeric_limits<int64_t>::max() / scale) return std::nullopt;
  return milliseconds{number * scale};
}

std::string FormatDuration(milliseconds duration) {
  int64_t ms = duration.count();
  if (ms == 0) return "0s";
  struct Unit {
    int64_t scale;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {
      {24 * 3600 * 1000ll, "d"}, {3600 * 1000ll, "h"}, {60 * 1000ll, "m"}, {1000, "s"}};
  for (const Unit& unit : kUnits) {
    if (ms % unit.scale == 0) return std::to_string(ms / unit.scale) + unit.suffix;
  }
  return std::to_string(ms) + "ms";
}

Config LoadConfig(const std::string& path) {
  const std::string file = AbsoluteFile(path);
  const fs::path base_dir = fs::path(file).parent_path();
  toml::table root = ParseToml(file);
  Reader reader(file);

  reader.CheckKeys(root, "",
                   {"area", "data_dir", "registry", "policy", "threads", "listen", "admin", "tls",
                    "limits", "log", "mailbox", "store", "audit", "drop", "transfers"});

  Config config;
  config.source_file = file;

  int64_t line = 0;
  config.area = reader.RequiredString(root, "", "area", &line);
  if (!IsSlug(config.area)) {
    reader.Fail(line, "area", "\"" + config.area + "\" is not a slug (a-z, 0-9 and -)");
  }

  config.data_dir = Resolve(base_dir, reader.RequiredString(root, "", "data_dir", &line));
  {
    std::error_code ec;
    auto status = fs::status(config.data_dir, ec);
    if (!ec && fs::exists(status) && !fs::is_directory(status)) {
      reader.Fail(line, "data_dir", "exists and is not a directory: " + config.data_dir);
    }
  }

  config.registry = Resolve(base_dir, reader.RequiredString(root, "", "registry", &line));
  RequireReadableFile(reader, line, "registry", config.registry);

  // Optional; the policy's own contents are checked when the gateway loads it (with
  // file:line problems of its own), here only that the file can be read.
  if (auto policy = reader.String(root, "", "policy", &line)) {
    if (policy->empty()) reader.Fail(line, "policy", "must name a file (or leave the key out)");
    config.policy = Resolve(base_dir, *policy);
    RequireReadableFile(reader, line, "policy", config.policy);
  }

  reader.ReadInteger(root, "", "threads", 1, 256, config.threads);

  ReadListener(reader, root, "listen", /*loopback_only=*/false, config.listen);
  ReadListener(reader, root, "admin", /*loopback_only=*/true, config.admin);

  const toml::table* tls = reader.Table(root, "", "tls");
  if (tls == nullptr) {
    reader.Fail(LineOf(root), "tls", "required table [tls] is missing (it names cert, key and ca)");
  }
  reader.CheckKeys(*tls, "tls", {"cert", "key", "ca", "crl", "expiry_warning"});
  reader.ReadDuration(*tls, "tls", "expiry_warning", config.tls.expiry_warning);
  struct TlsFile {
    const char* key;
    std::string* out;
    bool required;
  };
  for (const TlsFile& f :
       {TlsFile{"cert", &config.tls.cert, true}, TlsFile{"key", &config.tls.key, true},
        TlsFile{"ca", &config.tls.ca, true}, TlsFile{"crl", &config.tls.crl, false}}) {
    std::string dotted = std::string("tls.") + f.key;
    std::string value;
    if (f.required) {
      value = reader.RequiredString(*tls, "tls", f.key, &line);
    } else {
      value = reader.String(*tls, "tls", f.key, &line).value_or("");
    }
    *f.out = Resolve(base_dir, value);
    if (!f.out->empty()) RequireReadableFile(reader, line, dotted, *f.out);
  }

  if (const toml::table* limits = reader.Table(root, "", "limits")) {
    reader.CheckKeys(*limits, "limits",
                     {"max_body_bytes", "max_header_bytes", "max_connections", "handshake_timeout",
                      "read_timeout", "idle_timeout"});
    constexpr int64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
    reader.ReadInteger(*limits, "limits", "max_body_bytes", 1, std::numeric_limits<int64_t>::max(),
                       config.limits.max_body_bytes);
    reader.ReadInteger(*limits, "limits", "max_header_bytes", 1024, kMaxU32,
                       config.limits.max_header_bytes);
    reader.ReadInteger(*limits, "limits", "max_connections", 1, kMaxU32,
                       config.limits.max_connections);
    reader.ReadDuration(*limits, "limits", "handshake_timeout", config.limits.handshake_timeout);
    reader.ReadDuration(*limits, "limits", "read_timeout", config.limits.read_timeout);
    reader.ReadDuration(*limits, "limits", "idle_timeout", config.limits.idle_timeout);
  }

  if (const toml::table* log = reader.Table(root, "", "log")) {
    reader.CheckKeys(*log, "log", {"level", "format"});
    if (auto level = reader.String(*log, "log", "level", &line)) {
      if (std::find(std::begin(kLogLevels), std::end(kLogLevels), *level) == std::end(kLogLevels)) {
        reader.Fail(line, "log.level",
                    "unknown level \"" + *level +
                        "\": use trace, debug, info, warn, error, critical or off");
      }
      config.log.level = *level;
    }
    if (auto format = reader.String(*log, "log", "format", &line)) {
      if (std::find(std::begin(kLogFormats), std::end(kLogFormats), *format) ==
          std::end(kLogFormats)) {
        reader.Fail(line, "log.format", "unknown format \"" + *format + "\": use json or text");
      }
      config.log.format = *format;
    }
  }

  if (const toml::table* mailbox = reader.Table(root, "", "mailbox")) {
    reader.CheckKeys(*mailbox, "mailbox",
                     {"ack_deadline", "ack_deadline_by_purpose", "renotice_interval",
                      "expire_after", "sweep_interval"});
    reader.ReadDuration(*mailbox, "mailbox", "ack_deadline", config.mailbox.ack_deadline);
    reader.ReadDuration(*mailbox, "mailbox", "renotice_interval", config.mailbox.renotice_interval);
    reader.ReadDuration(*mailbox, "mailbox", "expire_after", config.mailbox.expire_after);
    reader.ReadDuration(*mailbox, "mailbox", "sweep_interval", config.mailbox.sweep_interval);
    // Entries override the built-in ones of the same purpose; the others stay.
    if (const toml::table* by_purpose =
            reader.Table(*mailbox, "mailbox", "ack_deadline_by_purpose")) {
      for (const auto& [key, node] : *by_purpose) {
        std::string dotted = "mailbox.ack_deadline_by_purpose." + std::string(key.str());
        if (!IsPurposeName(key.str())) {
          reader.Fail(LineOf(node), dotted, "purpose names use a-z, 0-9, _ and - only");
        }
        config.mailbox.ack_deadline_by_purpose[std::string(key.str())] =
            reader.DurationValue(node, dotted, /*allow_zero=*/false);
      }
    }
    if (config.mailbox.expire_after < config.mailbox.ack_deadline) {
      const toml::node* node = mailbox->get("expire_after");
      reader.Fail(node != nullptr ? LineOf(*node) : LineOf(*mailbox), "mailbox.expire_after",
                  "must not be shorter than mailbox.ack_deadline (" +
                      FormatDuration(config.mailbox.ack_deadline) + ")");
    }
  }

  std::string key_file;
  if (const toml::table* store = reader.Table(root, "", "store")) {
    reader.CheckKeys(*store, "store", {"key_file", "max_batch"});
    key_file = reader.String(*store, "store", "key_file", &line).value_or("");
    reader.ReadInteger(*store, "store", "max_batch", 1, 1'000'000, config.store.max_batch);
  }
  config.store.key_file = key_file.empty() ? (fs::path(config.data_dir) / "store.key").string()
                                           : Resolve(base_dir, key_file);

  if (const toml::table* audit = reader.Table(root, "", "audit")) {
    reader.CheckKeys(*audit, "audit", {"sth_interval", "sth_max_entries", "forward"});
    reader.ReadDuration(*audit, "audit", "sth_interval", config.audit.sth_interval);
    reader.ReadInteger(*audit, "audit", "sth_max_entries", 1, 100'000'000,
                       config.audit.sth_max_entries);
    ReadAuditForward(reader, *audit, base_dir, config);
  }

  ReadDrops(reader, root, base_dir, config);
  ReadTransfers(reader, root, config);

  return config;
}

Registry LoadRegistry(const std::string& path) {
  const std::string file = AbsoluteFile(path);
  const fs::path base_dir = fs::path(file).parent_path();
  toml::table root = ParseToml(file);
  Reader reader(file);
  reader.CheckKeys(root, "", {"agency", "peer"});

  Registry registry;
  registry.source_file = file;

  // Which entry claimed each fingerprint first, so a second claim names both.
  std::map<std::string, std::string> owner_of;
  auto claim = [&](const std::vector<std::string>& fingerprints, const std::string& owner,
                   int64_t line, const std::string& key) {
    for (const std::string& fp : fingerprints) {
      auto [it, inserted] = owner_of.emplace(fp, owner);
      if (!inserted) {
        reader.Fail(line, key,
                    "fingerprint " + fp + " is already registered to " + it->second +
                        ": a certificate must identify one agency only");
      }
    }
  };

  auto array_of_tables = [&](std::string_view key) {
    std::vector<const toml::table*> out;
    const toml::array* array = reader.Array(root, "", key);
    if (array == nullptr) return out;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& item = *array->get(i);
      if (!item.is_table()) {
        reader.Fail(LineOf(item), std::string(key) + "[" + std::to_string(i) + "]",
                    "expected a table ([[" + std::string(key) + "]]), found " +
                        std::string(TypeName(item)));
      }
      out.push_back(item.as_table());
    }
    return out;
  };

  std::vector<const toml::table*> agencies = array_of_tables("agency");
  if (agencies.empty()) {
    reader.Fail(LineOf(root), "agency", "the registry lists no [[agency]]");
  }
  for (size_t i = 0; i < agencies.size(); ++i) {
    const toml::table& table = *agencies[i];
    std::string prefix = "agency[" + std::to_string(i) + "]";
    reader.CheckKeys(table, prefix, {"id", "name", "role", "area", "fingerprints", "certificates"});
    Agency agency;
    int64_t line = 0;
    agency.id = reader.RequiredString(table, prefix, "id", &line);
    if (!IsSlug(agency.id)) {
      reader.Fail(line, prefix + ".id", "\"" + agency.id + "\" is not a slug (a-z, 0-9 and -)");
    }
    if (registry.Find(agency.id) != nullptr) {
      reader.Fail(line, prefix + ".id", "agency \"" + agency.id + "\" is listed twice");
    }
    agency.name = reader.RequiredString(table, prefix, "name");
    std::string role = reader.RequiredString(table, prefix, "role", &line);
    std::optional<Role> parsed = ParseRole(role);
    if (!parsed) {
      reader.Fail(
          line, prefix + ".role",
          "unknown role \"" + role + "\": use police, health, csc, audit, committee or gateway");
    }
    agency.role = *parsed;
    agency.area = reader.RequiredString(table, prefix, "area", &line);
    if (!IsSlug(agency.area)) {
      reader.Fail(line, prefix + ".area", "\"" + agency.area + "\" is not a slug (a-z, 0-9 and -)");
    }
    agency.fingerprints = ReadFingerprints(reader, table, prefix, base_dir);
    for (const auto& [cert_file, cert_line] : reader.StringArray(table, prefix, "certificates")) {
      agency.certificate_files.push_back(Resolve(base_dir, cert_file));
    }
    if (agency.fingerprints.empty()) {
      reader.Fail(LineOf(table), prefix,
                  "no certificate identifies this agency: list at least one entry under "
                  "fingerprints or certificates");
    }
    claim(agency.fingerprints, "agency " + agency.id, LineOf(table), prefix);
    registry.agencies.push_back(std::move(agency));
  }

  std::vector<const toml::table*> peers = array_of_tables("peer");
  for (size_t i = 0; i < peers.size(); ++i) {
    const toml::table& table = *peers[i];
    std::string prefix = "peer[" + std::to_string(i) + "]";
    reader.CheckKeys(table, prefix,
                     {"area", "endpoint", "fingerprints", "certificates", "signing_public_key",
                      "sealing_public_key"});
    Peer peer;
    int64_t line = 0;
    peer.area = reader.RequiredString(table, prefix, "area", &line);
    if (!IsSlug(peer.area)) {
      reader.Fail(line, prefix + ".area", "\"" + peer.area + "\" is not a slug (a-z, 0-9 and -)");
    }
    if (registry.FindPeer(peer.area) != nullptr) {
      reader.Fail(line, prefix + ".area", "peer area \"" + peer.area + "\" is listed twice");
    }
    peer.endpoint = reader.RequiredString(table, prefix, "endpoint", &line);
    if (peer.endpoint.rfind("https://", 0) != 0 || peer.endpoint.size() <= 8) {
      reader.Fail(line, prefix + ".endpoint", "\"" + peer.endpoint + "\" is not an https:// URL");
    }
    peer.fingerprints = ReadFingerprints(reader, table, prefix, base_dir);
    for (const auto& [cert_file, cert_line] : reader.StringArray(table, prefix, "certificates")) {
      peer.certificate_files.push_back(Resolve(base_dir, cert_file));
    }
    if (peer.fingerprints.empty()) {
      reader.Fail(LineOf(table), prefix,
                  "no certificate identifies this peer gateway: list at least one entry under "
                  "fingerprints or certificates");
    }
    claim(peer.fingerprints, "peer " + peer.area, LineOf(table), prefix);
    peer.signing_public_key =
        reader.String(table, prefix, "signing_public_key", &line).value_or("");
    if (!peer.signing_public_key.empty() && !IsBase64Key(peer.signing_public_key, 32)) {
      reader.Fail(line, prefix + ".signing_public_key",
                  "expected a base64 Ed25519 public key (32 bytes)");
    }
    peer.sealing_public_key =
        reader.String(table, prefix, "sealing_public_key", &line).value_or("");
    if (!peer.sealing_public_key.empty() && !IsBase64Key(peer.sealing_public_key, 32)) {
      reader.Fail(line, prefix + ".sealing_public_key",
                  "expected a base64 X25519 public key (32 bytes)");
    }
    registry.peers.push_back(std::move(peer));
  }

  return registry;
}

std::string PrintConfig(const Config& c) {
  std::ostringstream out;
  out << "# Effective configuration";
  if (!c.source_file.empty()) out << " loaded from " << c.source_file;
  out << "\n";
  out << "area = " << Quote(c.area) << "\n";
  out << "data_dir = " << Quote(c.data_dir) << "\n";
  out << "registry = " << Quote(c.registry) << "\n";
  if (!c.policy.empty()) out << "policy = " << Quote(c.policy) << "\n";
  out << "threads = " << c.threads << "\n";
  out << "\n[listen]\n";
  out << "address = " << Quote(c.listen.address) << "\n";
  out << "port = " << c.listen.port << "\n";
  out << "\n[admin]\n";
  out << "address = " << Quote(c.admin.address) << "\n";
  out << "port = " << c.admin.port << "\n";
  out << "\n[tls]\n";
  out << "cert = " << Quote(c.tls.cert) << "\n";
  out << "key = " << Quote(c.tls.key) << "\n";
  out << "ca = " << Quote(c.tls.ca) << "\n";
  out << "crl = " << Quote(c.tls.crl) << "\n";
  out << "expiry_warning = " << Quote(FormatDuration(c.tls.expiry_warning)) << "\n";
  out << "\n[limits]\n";
  out << "max_body_bytes = " << c.limits.max_body_bytes << "\n";
  out << "max_header_bytes = " << c.limits.max_header_bytes << "\n";
  out << "max_connections = " << c.limits.max_connections << "\n";
  out << "handshake_timeout = " << Quote(FormatDuration(c.limits.handshake_timeout)) << "\n";
  out << "read_timeout = " << Quote(FormatDuration(c.limits.read_timeout)) << "\n";
  out << "idle_timeout = " << Quote(FormatDuration(c.limits.idle_timeout)) << "\n";
  out << "\n[log]\n";
  out << "level = " << Quote(c.log.level) << "\n";
  out << "format = " << Quote(c.log.format) << "\n";
  out << "\n[mailbox]\n";
  out << "ack_deadline = " << Quote(FormatDuration(c.mailbox.ack_deadline)) << "\n";
  out << "renotice_interval = " << Quote(FormatDuration(c.mailbox.renotice_interval)) << "\n";
  out << "expire_after = " << Quote(FormatDuration(c.mailbox.expire_after)) << "\n";
  out << "sweep_interval = " << Quote(FormatDuration(c.mailbox.sweep_interval)) << "\n";
  out << "\n[mailbox.ack_deadline_by_purpose]\n";
  for (const auto& [purpose, deadline] : c.mailbox.ack_deadline_by_purpose) {
    out << Quote(purpose) << " = " << Quote(FormatDuration(deadline)) << "\n";
  }
  out << "\n[store]\n";
  out << "key_file = " << Quote(c.store.key_file) << "\n";
  out << "max_batch = " << c.store.max_batch << "\n";
  out << "\n[audit]\n";
  out << "sth_interval = " << Quote(FormatDuration(c.audit.sth_interval)) << "\n";
  out << "sth_max_entries = " << c.audit.sth_max_entries << "\n";
  if (const auto& f = c.audit.forward) {
    out << "\n[audit.forward]\n";
    out << "address = " << Quote(f->address) << "\n";
    out << "ca = " << Quote(f->ca) << "\n";
    if (!f->cert.empty()) {
      out << "cert = " << Quote(f->cert) << "\n";
      out << "key = " << Quote(f->key) << "\n";
    } else {
      out << "# cert, key: not set, no client certificate is presented\n";
    }
    out << "server_name = " << Quote(f->server_name) << "\n";
    out << "app_name = " << Quote(f->app_name) << "\n";
    if (!f->hostname.empty()) {
      out << "hostname = " << Quote(f->hostname) << "\n";
    } else {
      out << "# hostname: not set, the system host name\n";
    }
    out << "retry_initial = " << Quote(FormatDuration(f->retry_initial)) << "\n";
    out << "retry_max = " << Quote(FormatDuration(f->retry_max)) << "\n";
    out << "poll_interval = " << Quote(FormatDuration(f->poll_interval)) << "\n";
    out << "timeout = " << Quote(FormatDuration(f->timeout)) << "\n";
  } else {
    out << "# [audit.forward]: not set, the audit log is not forwarded\n";
  }
  out << "\n[transfers]\n";
  out << "acceptance_working_days = " << c.transfers.acceptance_working_days << "\n";
  out << "conference_working_days = " << c.transfers.conference_working_days << "\n";
  out << "escalation_interval = " << Quote(FormatDuration(c.transfers.escalation_interval)) << "\n";
  if (c.transfers.bank_holidays) {
    out << "bank_holidays = [";
    for (size_t i = 0; i < c.transfers.bank_holidays->size(); ++i) {
      out << (i > 0 ? ", " : "") << Quote((*c.transfers.bank_holidays)[i]);
    }
    out << "]\n";
  } else {
    out << "# bank_holidays: not set, the built-in England and Wales list\n";
  }
  out << "retry_initial = " << Quote(FormatDuration(c.transfers.retry_initial)) << "\n";
  out << "retry_max = " << Quote(FormatDuration(c.transfers.retry_max)) << "\n";
  for (const Config::Drop& d : c.drops) {
    out << "\n[[drop]]\n";
    out << "agency = " << Quote(d.agency) << "\n";
    out << "format = " << Quote(d.format) << "\n";
    out << "dir = " << Quote(d.dir) << "\n";
    out << "purpose = " << Quote(d.purpose) << "\n";
    out << "recipients = [";
    for (size_t i = 0; i < d.recipients.size(); ++i) {
      out << (i > 0 ? ", " : "") << Quote(d.recipients[i]);
    }
    out << "]\n";
  }
  return out.str();
}

}  // namespace safegate::config
