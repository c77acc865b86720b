#include "adapters/common/batch.h"

#include <utility>

namespace safegate::adapters {

void BatchBuilder::Warn(std::string where, std::string what) {
  warnings_.Add(std::move(where), std::move(what));
}

void BatchBuilder::Add(record::Record r, const std::string& where, const FieldPositions& fields) {
  // The key is only unique within this caller's exports: agency is fixed per Parse().
  std::string key = r.source.record_id + '\x1f' + std::to_string(r.source.version);
  auto [it, inserted] = keys_.try_emplace(std::move(key), where);
  if (!inserted) {
    problems_.Add(where, "record id \"" + r.source.record_id + "\" version " +
                             std::to_string(r.source.version) + " appears twice (first at " +
                             it->second + ")");
    return;
  }
  auto checked = record::ParseRecord(record::ToJson(r));
  if (!checked.ok()) {
    // An adapter checks its fields before this; reaching here means a value it let through
    // is still not canonical. Report it at the input position, with the record field.
    for (const auto& p : checked.status().problems()) {
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
    if (checked.status().problems().empty()) {
      problems_.Add(where, "not a valid record: " + checked.status().detail());
    }
    return;
  }
  batch_.records.push_back(std::move(checked).value());
}

Result<ParsedBatch> BatchBuilder::Finish() {
  if (!problems_.empty()) return problems_.ToStatus(format_);
  batch_.warnings = warnings_.Take();
  return std::move(batch_);
}

std::string CheckNhsNumber(std::string_view text, std::string* digits) {
  std::string d;
  for (char c : text) {
    if (c == ' ') continue;
    if (c < '0' || c > '9') return "an NHS number is 10 digits";
    d.push_back(c);
  }
  if (d.size() != 10) return "an NHS number is 10 digits";
  if (!record::IsValidNhsNumber(d)) return "NHS number check digit is wrong";
  *digits = std::move(d);
  return "";
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

nlohmann::json FlagBody(const FlagFields& f) {
  nlohmann::json body = {
      {"type", f.type},
      {"level", OrNull(f.level)},
      {"status", f.status},
      {"start", f.start},
      {"end", OrNull(f.end)},
      {"review_by", OrNull(f.review_by)},
      {"owner_agency", f.owner_agency},
  };
  if (f.office_hours || f.out_of_hours) {
    nlohmann::json contact = nlohmann::json::object();
    if (f.office_hours) contact["office_hours"] = *f.office_hours;
    if (f.out_of_hours) contact["out_of_hours"] = *f.out_of_hours;
    body["contact"] = std::move(contact);
  }
  if (f.note) body["note"] = *f.note;
  return body;
}

}  // namespace safegate::adapters
