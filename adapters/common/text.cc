#include "adapters/common/text.h"

#include <array>
#include <cstring>

namespace safegate::adapters {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Digits at [pos, pos+n) as a number; -1 if any is not a digit.
int Digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!IsDigit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[static_cast<size_t>(m - 1)];
}

bool ValidDate(int y, int m, int d) {
  return y >= 1900 && y <= 2199 && m >= 1 && m <= 12 && d >= 1 && d <= DaysInMonth(y, m);
}

// Days since 1970-01-01 (H. Hinnant's days_from_civil), for moving a timestamp to UTC.
int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = static_cast<int>(yoe + era * 400 + (*m <= 2));
}

}  // namespace

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string ToLowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string ToUpperAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool IsIsoDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  return ValidDate(Digits(s, 0, 4), Digits(s, 5, 2), Digits(s, 8, 2));
}

namespace {

// NormalizeTimestamp's work. nullopt: not a timestamp; "" (no string made): `s` is already
// normalised; otherwise the normalised text.
std::optional<std::string> Normalize(std::string_view s) {
  if (s.size() < 20 || !IsIsoDate(s.substr(0, 10)) || (s[10] != 'T' && s[10] != 't') ||
      s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  const int hh = Digits(s, 11, 2), mi = Digits(s, 14, 2), ss = Digits(s, 17, 2);
  if (hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 60) return std::nullopt;
  size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos;
    if (pos == start || pos - start > 9) return std::nullopt;
  }
  int offset_minutes = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int oh = Digits(s, pos + 1, 2), om = Digits(s, pos + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59 || pos + 3 >= s.size() || s[pos + 3] != ':') {
      return std::nullopt;
    }
    offset_minutes = (s[pos] == '+' ? 1 : -1) * (oh * 60 + om);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  // Already UTC to the second, as most exports write it: nothing to convert.
  if (s.size() == 20 && s[10] == 'T' && s[19] == 'Z' && ss != 60) return std::string();

  int64_t minutes = DaysFromCivil(Digits(s, 0, 4), Digits(s, 5, 2), Digits(s, 8, 2)) * 1440 +
                    hh * 60 + mi - offset_minutes;
  int64_t days = minutes >= 0 ? minutes / 1440 : -((-minutes + 1439) / 1440);
  const int64_t rem = minutes - days * 1440;
  int y = 0, m = 0, d = 0;
  CivilFromDays(days, &y, &m, &d);
  if (!ValidDate(y, m, d)) return std::nullopt;
  // "%04d-%02d-%02dT%02d:%02d:%02dZ", without printf's format parsing.
  std::string out = "0000-00-00T00:00:00Z";
  auto put = [&out](size_t at, int value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10) {
      out[at + static_cast<size_t>(i)] = static_cast<char>('0' + value % 10);
    }
  };
  put(0, y, 4);
  put(5, m, 2);
  put(8, d, 2);
  put(11, static_cast<int>(rem / 60), 2);
  put(14, static_cast<int>(rem % 60), 2);
  put(17, ss == 60 ? 59 : ss, 2);
  return out;
}

}  // namespace

std::optional<std::string> NormalizeTimestamp(std::string_view s) {
  auto t = Normalize(s);
  if (t && t->empty()) return std::string(s);
  return t;
}

bool NormalizeTimestampInPlace(std::string* s) {
  auto t = Normalize(*s);
  if (!t) return false;
  if (!t->empty()) *s = std::move(*t);
  return true;
}

bool IsTimestamp(std::string_view s) { return Normalize(s).has_value(); }

std::string StartOfDayUtc(std::string_view date) { return std::string(date) + "T00:00:00Z"; }

std::optional<size_t> FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  while (i < n) {
    // Exports are mostly ASCII: skip it eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, sizeof word);
      if ((word & 0x8080808080808080ULL) != 0) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return std::nullopt;
}

size_t LineAt(std::string_view text, size_t offset) {
  size_t line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line;
  }
  return line;
}

std::optional<int64_t> ParseInteger(std::string_view s, int64_t min, int64_t max) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  bool negative = false;
  if (s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
    if (s.empty()) return std::nullopt;
  }
  int64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (negative) v = -v;
  if (v < min || v > max) return std::nullopt;
  return v;
}

std::string DigestId(std::string_view prefix, std::initializer_list<std::string_view> parts) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 0x100000001b3ULL;
  };
  bool first = true;
  for (std::string_view part : parts) {
    if (!first) mix(0x1F);  // unit separator: ("ab","c") and ("a","bc") differ
    first = false;
    for (char c : part) mix(static_cast<unsigned char>(c));
  }
  std::string out;
  out.reserve(prefix.size() + 17);
  out.append(prefix).push_back('-');
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back("0123456789abcdef"[(h >> shift) & 0xF]);
  return out;
}

std::string Excerpt(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

}  // namespace safegate::adapters
