// CsvTable: reads an RFC 4180 CSV export with a header row, row by row, without copying the
// input.
//
// Accepted: comma separators, fields quoted with '"' (a doubled quote inside is one quote;
// quoted fields may span lines), CRLF or LF line ends, a UTF-8 byte order mark, blank lines
// (skipped). The header names the columns; an adapter declares which it requires and which it
// knows, and rows are read by column name. Positions are the 1-based line a row starts on, so a
// problem reads "line 12, field dob".
//
// Problems found (all reported, reading goes on to the end): invalid UTF-8, a quote inside an
// unquoted field, text after a closing quote, an unterminated quoted field, a missing or
// repeated or unknown header column, a row with the wrong number of fields.
//
// Thread-safety: none; one table per Parse() call. The input must outlive the table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/common/problems.h"

namespace safegate::adapters {

class CsvTable {
 public:
  // Reads the header. `required` columns must be present; `optional` ones may be; any other
  // column is a problem. Column names compare case-insensitively after trimming.
  CsvTable(std::string_view input, const std::vector<std::string_view>& required,
           const std::vector<std::string_view>& optional, ProblemList& problems);

  // True if the header was usable (rows can be read).
  bool ok() const { return ok_; }

  // Moves to the next data row. False at the end of the input. Rows whose shape is wrong are
  // reported and skipped.
  bool Next();

  // The current row's line number (where the row starts).
  size_t line() const { return line_; }
  // The trimmed value of `column` in the current row ("" when the column is absent or empty).
  std::string_view Get(std::string_view column) const;

  // A column looked up in the header once, for reading it from many rows (Get by name
  // searches the header on every call). `name` must outlive the handle.
  struct Column {
    std::string_view name;
    size_t index = SIZE_MAX;  // SIZE_MAX: not in this export
  };
  Column Find(std::string_view name) const {
    return {name, ColumnIndex(name).value_or(SIZE_MAX)};
  }
  // The same as Get(column.name).
  std::string_view Get(const Column& column) const {
    if (column.index >= fields_.size()) return {};
    return TrimmedField(column.index);
  }
  // "line 12, field dob".
  std::string Where(std::string_view column) const;

 private:
  // Reads one record into fields_; false at the end of input.
  bool ReadRecord();
  std::string_view TrimmedField(size_t index) const;
  std::optional<size_t> ColumnIndex(std::string_view column) const;

  std::string_view input_;
  size_t pos_ = 0;
  size_t next_line_ = 1;  // line of input_[pos_]
  size_t line_ = 0;
  bool ok_ = false;
  ProblemList& problems_;
  // A field of the current record: a view of the input, or, for a quoted field with doubled
  // quotes, of its unescaped text in unescaped_ (by offset: the buffer may grow).
  struct Field {
    size_t begin = 0;
    size_t size = 0;
    bool unescaped = false;
  };
  std::string_view FieldText(const Field& f) const {
    return std::string_view(f.unescaped ? std::string_view(unescaped_) : input_)
        .substr(f.begin, f.size);
  }

  std::vector<std::string> header_;  // lower-case names
  std::vector<Field> fields_;        // current record
  std::string unescaped_;            // current record's unescaped quoted fields
};

}  // namespace safegate::adapters
