// libFuzzer target for one adapter, chosen at build time (SAFEGATE_FUZZ_FORMAT, e.g.
// "niche-xml"). Arbitrary bytes must never crash, hang or leak; a batch that parses must be
// canonical (every record passes ParseRecord) and deterministic (parsing again gives the same
// records); flag records must survive the FHIR rendering and parse back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "adapters/fhir/fhir_flag.h"
#include "adapters/registry.h"

#ifndef SAFEGATE_FUZZ_FORMAT
#error "define SAFEGATE_FUZZ_FORMAT to an adapter name"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace safegate;
  static const adapters::Adapter* adapter = adapters::FindAdapter(SAFEGATE_FUZZ_FORMAT);
  if (adapter == nullptr) std::abort();
  const adapters::IngestContext context{"fuzz-agency", "fuzz-area"};
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto batch = adapter->Parse(input, context);
  if (!batch.ok()) {
    if (batch.status().problems().empty()) std::abort();  // a rejection always says where
    return 0;
  }
  for (const auto& r : batch->records) {
    if (!record::ParseRecord(record::ToJson(r)).ok()) std::abort();
  }
  auto again = adapter->Parse(input, context);
  if (!again.ok() || !(again->records == batch->records)) std::abort();
  // Flags about a child with an NHS number render to FHIR that fhir-flag reads back.
  std::vector<record::Record> flags;
  for (const auto& r : batch->records) {
    if (r.kind == record::Kind::kFlag && r.subject.nhs_number) flags.push_back(r);
  }
  const std::string rendered = adapters::RenderFhirFlagBundle(flags).dump();
  auto back = adapters::FindAdapter("fhir-flag")->Parse(rendered, context);
  if (!back.ok() || back->records.size() != flags.size()) std::abort();
  return 0;
}
