#include "adapters/common/csv.h"

#include <algorithm>

#include "adapters/common/text.h"

namespace safegate::adapters {

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
        const char c = input_[pos_];
        if (c == '"') {
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
        if (c == '\n') ++next_line_;
        if (field.unescaped) unescaped_.push_back(c);
        ++pos_;
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
      while (pos_ < n && input_[pos_] != ',' && input_[pos_] != '\n' && input_[pos_] != '\r') {
        if (input_[pos_] == '"') {
          problems_.Add("line " + std::to_string(next_line_) + ", field " +
                            std::to_string(fields_.size() + 1),
                        "quote inside an unquoted field");
          bad_row = true;
        }
        ++pos_;
      }
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
