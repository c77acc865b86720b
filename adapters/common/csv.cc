#include "adapters/common/csv.h"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "adapters/common/text.h"

namespace safegate::adapters {
namespace {

// The bytes that end an unquoted field or are wrong in one: one table look-up per byte
// instead of four comparisons.
constexpr std::array<bool, 256> kUnquotedStop = [] {
  std::array<bool, 256> stop{};
  stop[static_cast<unsigned char>(',')] = true;
  stop[static_cast<unsigned char>('\n')] = true;
  stop[static_cast<unsigned char>('\r')] = true;
  stop[static_cast<unsigned char>('"')] = true;
  return stop;
}();

// Where the unquoted text from `p` ends: at the first of those bytes, or at `n`. A function of
// its own, so that its loops keep everything in registers. With SSE2 (every x86-64), 16 bytes
// are looked at in one step: most fields end within the first 16.
[[gnu::noinline]] size_t UnquotedEnd(const char* data, size_t p, size_t n) {
#if defined(__SSE2__)
  const __m128i comma = _mm_set1_epi8(','), lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r'),
                quote = _mm_set1_epi8('"');
  while (n - p >= 16) {
    __m128i v;
    std::memcpy(&v, data + p, sizeof v);  // an unaligned load, without a cast
    const __m128i ends = _mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, lf));
    const __m128i others = _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, quote));
    const __m128i stop = _mm_or_si128(ends, others);
    const unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(stop));
    if (mask != 0) return p + static_cast<size_t>(__builtin_ctz(mask));
    p += 16;
  }
#endif
  while (p < n && !kUnquotedStop[static_cast<unsigned char>(data[p])]) ++p;
  return p;
}

}  // namespace

CsvTable::CsvTable(std::string_view input, const std::vector<std::string_view>& required,
                   const std::vector<std::string_view>& optional, ProblemList& problems)
    : input_(input), problems_(problems) {
  if (auto bad = FindInvalidUtf8(input_)) {
    problems_.Add("line " + std::to_string(LineAt(input_, *bad)),
                  "the export is not valid UTF-8 (byte " + std::to_string(*bad) + ")");
    return;
  }
  if (input_.starts_with("\xEF\xBB\xBF")) pos_ = 3;
  const size_t problems_before = problems_.size();
  if (!ReadRecord()) {
    if (problems_.size() == problems_before) {
      problems_.Add("line 1", "the export is empty: a header row is required");
    }
    return;
  }
  bool header_ok = true;
  for (size_t i = 0; i < fields_.size(); ++i) {
    std::string name = ToLowerAscii(Trim(FieldText(fields_[i])));
    const std::string where =
        "line " + std::to_string(line_) + ", header column " + std::to_string(i + 1);
    const bool known = std::find(required.begin(), required.end(), name) != required.end() ||
                       std::find(optional.begin(), optional.end(), name) != optional.end();
    if (name.empty()) {
      problems_.Add(where, "empty column name");
      header_ok = false;
    } else if (!known) {
      problems_.Add(where, "unknown column \"" + Excerpt(name) + "\"");
      header_ok = false;
    } else if (std::find(header_.begin(), header_.end(), name) != header_.end()) {
      problems_.Add(where, "column \"" + name + "\" appears twice");
      header_ok = false;
    }
    header_.push_back(std::move(name));
  }
  for (std::string_view r : required) {
    if (std::find(header_.begin(), header_.end(), r) == header_.end()) {
      problems_.Add("line " + std::to_string(line_),
                    "missing required column \"" + std::string(r) + "\"");
      header_ok = false;
    }
  }
  ok_ = header_ok;
}

bool CsvTable::ReadRecord() {
  // Skip blank lines between records.
  while (pos_ < input_.size() && (input_[pos_] == '\n' || input_[pos_] == '\r')) {
    if (input_[pos_] == '\n') ++next_line_;
    ++pos_;
  }
  if (pos_ >= input_.size()) return false;
  line_ = next_line_;
  fields_.clear();
  unescaped_.clear();
  bool bad_row = false;
  const size_t n = input_.size();
  while (true) {
    Field field;
    if (pos_ < n && input_[pos_] == '"') {
      const size_t open_line = next_line_;
      ++pos_;
      field.begin = pos_;
      bool closed = false;
      while (pos_ < n) {
        // Up to the next quote in one step: the text between is the field's, and its line
        // ends are counted.
        const char* from = input_.data() + pos_;
        const void* quote = std::memchr(from, '"', n - pos_);
        const size_t stop =
            quote != nullptr ? static_cast<size_t>(static_cast<const char*>(quote) - input_.data())
                             : n;
        const char* const until = input_.data() + stop;
        for (const char* nl = from; nl < until; ++nl) {
          nl = static_cast<const char*>(std::memchr(nl, '\n', static_cast<size_t>(until - nl)));
          if (nl == nullptr) break;
          ++next_line_;
        }
        if (field.unescaped) unescaped_.append(from, stop - pos_);
        pos_ = stop;
        if (pos_ >= n) break;
        if (pos_ + 1 < n && input_[pos_ + 1] == '"') {
          // A doubled quote: from here on the field is copied out, unescaped.
          if (!field.unescaped) {
            const std::string_view so_far = input_.substr(field.begin, pos_ - field.begin);
            field.begin = unescaped_.size();
            field.unescaped = true;
            unescaped_.append(so_far);
          }
          unescaped_.push_back('"');
          pos_ += 2;
          continue;
        }
        ++pos_;
        closed = true;
        break;
      }
      if (!closed) {
        problems_.Add(
            "line " + std::to_string(open_line) + ", field " + std::to_string(fields_.size() + 1),
            "quoted field is never closed");
        return false;
      }
      // The closing quote is not part of the field.
      field.size = field.unescaped ? unescaped_.size() - field.begin : pos_ - 1 - field.begin;
      // After the closing quote only a separator or the line end may follow.
      size_t junk = pos_;
      while (junk < n && input_[junk] != ',' && input_[junk] != '\n' && input_[junk] != '\r') {
        ++junk;
      }
      if (junk != pos_) {
        problems_.Add(
            "line " + std::to_string(next_line_) + ", field " + std::to_string(fields_.size() + 1),
            "text after the closing quote");
        bad_row = true;
        pos_ = junk;
      }
    } else {
      field.begin = pos_;
      const char* const data = input_.data();
      size_t p = pos_;
      while (true) {
        p = UnquotedEnd(data, p, n);
        if (p >= n || data[p] != '"') break;
        problems_.Add(
            "line " + std::to_string(next_line_) + ", field " + std::to_string(fields_.size() + 1),
            "quote inside an unquoted field");
        bad_row = true;
        ++p;
      }
      pos_ = p;
      field.size = pos_ - field.begin;
    }
    fields_.push_back(field);
    if (pos_ >= n) break;
    if (input_[pos_] == ',') {
      ++pos_;
      continue;
    }
    // Line end: CRLF or LF (a lone CR also ends the line).
    if (input_[pos_] == '\r') ++pos_;
    if (pos_ < n && input_[pos_] == '\n') ++pos_;
    ++next_line_;
    break;
  }
  if (bad_row) fields_.clear();  // reported; the caller skips a row without fields
  return true;
}

bool CsvTable::Next() {
  if (!ok_) return false;
  while (ReadRecord()) {
    if (fields_.empty()) continue;  // a malformed row, already reported
    if (fields_.size() != header_.size()) {
      problems_.Add("line " + std::to_string(line_), "expected " + std::to_string(header_.size()) +
                                                         " fields, found " +
                                                         std::to_string(fields_.size()));
      continue;
    }
    return true;
  }
  return false;
}

std::optional<size_t> CsvTable::ColumnIndex(std::string_view column) const {
  for (size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == column) return i;
  }
  return std::nullopt;
}

std::string_view CsvTable::Get(std::string_view column) const {
  auto i = ColumnIndex(column);
  if (!i || *i >= fields_.size()) return {};
  return TrimmedField(*i);
}

std::string_view CsvTable::TrimmedField(size_t index) const {
  return Trim(FieldText(fields_[index]));
}

std::string CsvTable::Where(std::string_view column) const {
  return "line " + std::to_string(line_) + ", field " + std::string(column);
}

}  // namespace safegate::adapters
