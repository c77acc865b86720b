// Parse throughput per adapter (bytes/s and records/s) on exports generated for 5,000
// children (tools/gen_exports), the scale of a large area's weekly exports.
#include <benchmark/benchmark.h>

#include <string>

#include "adapters/fhir/fhir_flag.h"
#include "adapters/registry.h"
#include "tools/gen_exports/generator.h"

namespace {

const safegate::tools::GeneratedExports& Exports() {
  static const safegate::tools::GeneratedExports kExports = [] {
    safegate::tools::GenOptions options;
    options.children = 5000;
    options.seed = 7;
    return safegate::tools::GenerateExports(options);
  }();
  return kExports;
}

void BM_Parse(benchmark::State& state, const char* format, const std::string* input) {
  const auto* adapter = safegate::adapters::FindAdapter(format);
  const safegate::adapters::IngestContext context{"bench-agency", "bradford"};
  size_t records = 0;
  for (auto _ : state) {
    auto batch = adapter->Parse(*input, context);
    if (!batch.ok()) {
      state.SkipWithError(batch.status().ToString().c_str());
      return;
    }
    records += batch->records.size();
    benchmark::DoNotOptimize(batch);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * input->size()));
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.counters["input_MB"] = static_cast<double>(input->size()) / 1e6;
}

void BM_RenderFhir(benchmark::State& state) {
  const auto* adapter = safegate::adapters::FindAdapter("fhir-flag");
  auto batch = adapter->Parse(Exports().fhir_bundle, {"bench-agency", "bradford"});
  size_t records = 0;
  for (auto _ : state) {
    auto bundle = safegate::adapters::RenderFhirFlagBundle(batch->records);
    benchmark::DoNotOptimize(bundle);
    records += batch->records.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(records));
}

const int kRegistered = [] {
  const auto& e = Exports();
  benchmark::RegisterBenchmark("Parse/niche-xml", BM_Parse, "niche-xml", &e.niche_xml)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("Parse/niche-csv", BM_Parse, "niche-csv", &e.niche_csv)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("Parse/fhir-flag", BM_Parse, "fhir-flag", &e.fhir_bundle)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("Parse/cpis-csv", BM_Parse, "cpis-csv", &e.cpis_csv)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("Parse/cin-xml", BM_Parse, "cin-xml", &e.cin_xml)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("Render/fhir-flag-bundle", BM_RenderFhir)
      ->Unit(benchmark::kMillisecond);
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
