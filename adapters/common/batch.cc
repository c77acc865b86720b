#include "adapters/common/batch.h"

#include <array>
#include <utility>

namespace safegate::adapters {

void BatchBuilder::Warn(std::string where, std::string what) {
  warnings_.Add(std::move(where), std::move(what));
}

void BatchBuilder::Add(record::Record r, const std::string& where, const FieldPositions& fields) {
  if (auto failure = Keep(std::move(r), where)) Report(*failure, where, fields);
}

std::optional<Status> BatchBuilder::Keep(record::Record&& r, const std::string& where) {
  // The key is only unique within this caller's exports: agency is fixed per Parse().
  std::string key;
  key.reserve(r.source.record_id.size() + 21);
  key.append(r.source.record_id).push_back('\x1f');
  key.append(std::to_string(r.source.version));
  auto [it, inserted] = keys_.try_emplace(std::move(key), where);
  if (!inserted) {
    problems_.Add(where, "record id \"" + r.source.record_id + "\" version " +
                             std::to_string(r.source.version) + " appears twice (first at " +
                             it->second + ")");
    return std::nullopt;
  }
  // CheckRecord applies ParseRecord's rules to the record as built, without a trip through
  // JSON: the same verdict and problems as ParseRecord(ToJson(r)).
  auto checked = record::CheckRecord(std::move(r));
  if (!checked.ok()) return checked.status();
  batch_.records.push_back(std::move(checked).value());
  return std::nullopt;
}

void BatchBuilder::Report(const Status& failure, const std::string& where,
                          const FieldPositions& fields) {
  // An adapter checks its fields before this; reaching here means a value it let through
  // is still not canonical. Report it at the input position, with the record field.
  for (const auto& p : failure.problems()) {
    const std::pair<std::string, std::string>* best = nullptr;
    for (const auto& f : fields) {
      const bool under =
          p.where == f.first || (p.where.starts_with(f.first) && p.where[f.first.size()] == '/');
      if (under && (best == nullptr || f.first.size() > best->first.size())) best = &f;
    }
    if (best != nullptr) {
      problems_.Add(best->second, p.what);
    } else {
      problems_.Add(where, "record field " + p.where + ": " + p.what);
    }
  }
  if (failure.problems().empty()) {
    problems_.Add(where, "not a valid record: " + failure.detail());
  }
}

Result<ParsedBatch> BatchBuilder::Finish() {
  if (!problems_.empty()) return problems_.ToStatus(format_);
  batch_.warnings = warnings_.Take();
  return std::move(batch_);
}

std::string CheckNhsNumber(std::string_view text, std::string* digits) {
  // The digits gathered in place: more than 10 is already wrong.
  std::array<char, 10> d;
  size_t count = 0;
  for (char c : text) {
    if (c == ' ') continue;
    if (c < '0' || c > '9' || count == d.size()) return "an NHS number is 10 digits";
    d[count++] = c;
  }
  if (count != d.size()) return "an NHS number is 10 digits";
  const std::string_view number(d.data(), d.size());
  if (!record::IsValidNhsNumber(number)) return "NHS number check digit is wrong";
  digits->assign(number);
  return {};
}

std::string CheckPhone(std::string_view text) {
  size_t digits = 0;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (c != ' ' && c != '+' && c != '-' && c != '(' && c != ')') {
      return "a telephone number holds only digits, spaces and + - ( )";
    }
  }
  if (digits < 6 || digits > 15) return "a telephone number has 6 to 15 digits";
  return "";
}

nlohmann::json OrNull(const std::optional<std::string>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

void FlagBody(FlagFields f, nlohmann::json& body) {
  if (!body.is_object() || !body.empty()) body = nlohmann::json::object();
  // In key order (see Put).
  if (f.office_hours || f.out_of_hours) {
    nlohmann::json contact = nlohmann::json::object();
    if (f.office_hours) Put(contact, "office_hours", std::move(*f.office_hours));
    if (f.out_of_hours) Put(contact, "out_of_hours", std::move(*f.out_of_hours));
    Put(body, "contact", std::move(contact));
  }
  Put(body, "end", OrNull(f.end));
  Put(body, "level", OrNull(f.level));
  if (f.note) Put(body, "note", std::move(*f.note));
  Put(body, "owner_agency", std::move(f.owner_agency));
  Put(body, "review_by", OrNull(f.review_by));
  Put(body, "start", std::move(f.start));
  Put(body, "status", std::move(f.status));
  Put(body, "type", std::move(f.type));
}

}  // namespace safegate::adapters
