// libFuzzer target: untrusted bytes -> JSON -> ParseRecord, then the invariants a caller
// relies on: a record that parses round-trips through ToJson, and its canonical bytes are
// stable; a record that does not parse explains itself with at least one problem.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "record/record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using safegate::record::CanonicalJson;
  using safegate::record::ParseRecord;
  using safegate::record::ToJson;

  // Without exceptions, as the server parses request bodies.
  const nlohmann::json doc = nlohmann::json::parse(data, data + size, nullptr,
                                                   /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;

  auto parsed = ParseRecord(doc, "/record");
  if (!parsed.ok()) {
    if (parsed.status().problems().empty()) std::abort();
    return 0;
  }
  const nlohmann::json emitted = ToJson(*parsed);
  auto again = ParseRecord(emitted);
  if (!again.ok() || !(*again == *parsed)) std::abort();
  const std::string canonical = CanonicalJson(emitted);
  if (CanonicalJson(nlohmann::json::parse(canonical)) != canonical) std::abort();
  return 0;
}
