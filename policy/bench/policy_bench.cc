// Decision latency with the default policy grown to 100 rules (the issue's target: median
// under 2 µs, p99 under 10 µs, one thread).
//
//   policy_bench [--benchmark_filter=...] [--benchmark_repetitions=N]
//
// The default policy (SAFEGATE_DEFAULT_POLICY, or $SAFEGATE_POLICY_FILE) is extended with
// synthetic permit rules, each for its own recipient agency in a synthetic area, spread over
// the buckets the real inputs use (safeguarding, s47_enquiry, missing_child, unscheduled_care
// to csc, police and health), so a decision scans them as it would real rules. The grown
// policy must pass the same validation as any policy.
//
// BM_Decide/<input> reports the mean time per decision. BM_DecideLatency times every call
// on its own (steady_clock, whose own cost of ~20-30 ns is included) over a mix of inputs and
// reports p50, p99 and p99.9 in nanoseconds as counters.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace safegate::policy {
namespace {

constexpr int kTargetRules = 100;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string DefaultPolicyPath() {
  const char* env = std::getenv("SAFEGATE_POLICY_FILE");
  return env != nullptr ? env : SAFEGATE_DEFAULT_POLICY;
}

// The default policy's text with synthetic rules appended until it has kTargetRules.
std::string GrownPolicyText() {
  std::string text = ReadFile(DefaultPolicyPath());
  auto base = ParsePolicy(text, "default.toml");
  if (!base.ok()) {
    std::fprintf(stderr, "default policy does not load: %s\n", base.status().ToString().c_str());
    std::exit(1);
  }
  int have = 0;
  for (const RuleSummary& r : (*base)->rules()) have += r.line > 0 ? 1 : 0;
  const char* purposes[] = {"safeguarding", "s47_enquiry", "missing_child", "unscheduled_care"};
  const char* roles[] = {"csc", "police", "health"};
  std::ostringstream extra;
  for (int i = 0; have + i < kTargetRules; ++i) {
    const char* purpose = purposes[i % 4];
    const char* role = roles[(i / 4) % 3];
    const char* source = roles[(i / 12) % 3];
    extra << "\n[agencies.synthetic-" << i << "]\nrole = \"" << role
          << "\"\narea = \"synthetic\"\n";
    extra << "\n[[rule]]\nid = \"synthetic-" << i << "\"\neffect = \"permit\"\n"
          << "reason = \"synthetic rule for the benchmark\"\n"
          << "match = { purpose = \"" << purpose << "\", source_role = \"" << source
          << "\", recipient_role = \"" << role << "\", recipient_agency = \"synthetic-" << i
          << "\", recipient_area = \"synthetic\", kind = [\"flag\", \"plan\"] }\n"
          << "lawful_basis = \"UK GDPR Art 6(1)(e) public task\"\n"
          << "special_category_condition = \"UK GDPR Art 9(2)(g); DPA 2018 Sch 1 para 18\"\n"
          << "criminal_offence_condition = \"DPA 2018 Sch 1 para 18\"\n"
          << "allow_fields = [\"/subject/nhs_number\", \"/body/type\"]\n";
  }
  return text + extra.str();
}

std::shared_ptr<const Policy> GrownPolicy() {
  static const std::shared_ptr<const Policy> policy = [] {
    auto p = ParsePolicy(GrownPolicyText(), "default.toml+synthetic");
    if (!p.ok()) {
      std::fprintf(stderr, "grown policy refused: %s\n", p.status().ToString().c_str());
      for (const Problem& pr : p.status().problems()) {
        std::fprintf(stderr, "  %s: %s\n", pr.where.c_str(), pr.what.c_str());
      }
      std::exit(1);
    }
    int rules = 0;
    for (const RuleSummary& r : (*p)->rules()) rules += r.line > 0 ? 1 : 0;
    if (rules != kTargetRules) {
      std::fprintf(stderr, "grown policy has %d rules, not %d\n", rules, kTargetRules);
      std::exit(1);
    }
    return *p;
  }();
  return policy;
}

DecisionInput Input(Purpose purpose, Party source, Party recipient) {
  DecisionInput in;
  in.kind = record::Kind::kFlag;
  in.birth_date = "2010-03-01";
  in.now = *ParseTimestamp("2024-06-01T12:00:00Z");
  in.source = std::move(source);
  in.recipient = std::move(recipient);
  in.purpose = purpose;
  return in;
}

const Party kWyp{"wyp", Role::kPolice, "bradford"};
const Party kCsc{"bradford-csc", Role::kCsc, "bradford"};
const Party kHealth{"bthft", Role::kHealth, "bradford"};

struct NamedInput {
  const char* name;
  DecisionInput input;
  Effect expected;
};

std::vector<NamedInput> Inputs() {
  std::vector<NamedInput> v;
  DecisionInput permit = Input(Purpose::kSafeguarding, kWyp, kCsc);
  permit.classification.criminal_offence = true;
  permit.classification.schedule12a = {1, 2, 7};
  v.push_back({"permit_police_to_csc", permit, Effect::kPermit});

  v.push_back(
      {"redact_csc_to_health", Input(Purpose::kSafeguarding, kCsc, kHealth), Effect::kRedact});

  DecisionInput c = Input(Purpose::kSafeguarding, kWyp, kCsc);
  c.classification.handling = "C";
  v.push_back({"deny_handling_c", c, Effect::kDeny});

  DecisionInput ov = Input(Purpose::kSafeguarding, kWyp, kCsc);
  ov.consent = ConsentState::kRefused;
  ov.safeguarding_override = Override{"DPA 2018 Sch 1 para 18", "reason", "DS 1"};
  v.push_back({"permit_with_override", ov, Effect::kPermit});

  v.push_back({"default_deny", Input(Purpose::kUnscheduledCare, kWyp, kHealth), Effect::kDeny});

  DecisionInput stats =
      Input(Purpose::kStatistics, kCsc, Party{"bradford-gw", Role::kGateway, "bradford"});
  stats.classification.schedule12a = {1};
  v.push_back({"deny_schedule12a_statistics", stats, Effect::kDeny});

  v.push_back({"redact_synthetic_rule",
               Input(Purpose::kSafeguarding, kCsc, Party{"synthetic-0", Role::kCsc, "synthetic"}),
               Effect::kRedact});
  return v;
}

void BM_Decide(benchmark::State& state, const NamedInput& in) {
  auto policy = GrownPolicy();
  Decision check = policy->Decide(in.input);
  if (check.effect != in.expected) {
    state.SkipWithError("unexpected effect");
    return;
  }
  for (auto _ : state) {
    Decision d = policy->Decide(in.input);
    benchmark::DoNotOptimize(d);
  }
}

void BM_DecideLatency(benchmark::State& state) {
  auto policy = GrownPolicy();
  const std::vector<NamedInput> inputs = Inputs();
  std::vector<int64_t> ns;
  ns.reserve(1 << 20);
  size_t i = 0;
  for (auto _ : state) {
    const DecisionInput& in = inputs[i++ % inputs.size()].input;
    auto t0 = std::chrono::steady_clock::now();
    Decision d = policy->Decide(in);
    benchmark::DoNotOptimize(d);
    auto t1 = std::chrono::steady_clock::now();
    if (ns.size() < ns.capacity()) {
      ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
    }
  }
  if (ns.empty()) return;
  std::sort(ns.begin(), ns.end());
  auto pct = [&](double q) {
    return static_cast<double>(
        ns[std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())))]);
  };
  state.counters["p50_ns"] = pct(0.50);
  state.counters["p99_ns"] = pct(0.99);
  state.counters["p999_ns"] = pct(0.999);
  state.counters["max_ns"] = static_cast<double>(ns.back());
  state.counters["samples"] = static_cast<double>(ns.size());
}

void BM_Redact(benchmark::State& state) {
  auto policy = GrownPolicy();
  Decision d = policy->Decide(Input(Purpose::kSafeguarding, kCsc, kHealth));
  nlohmann::json record = nlohmann::json::parse(R"J({
    "kind": "flag",
    "subject": {"nhs_number": "9990000034", "local_ids": [{"system": "csc:bradford", "value": "BRA-000456"}],
                "given_name": "Chloe", "family_name": "Example", "birth_date": "2016-11-02",
                "postcode": "BD7 1AA"},
    "source": {"agency": "bradford-csc", "system": "liquidlogic", "record_id": "CPIS-9001",
               "version": 1, "recorded_at": "2024-04-02T08:30:00Z"},
    "classification": {"special_category": false, "criminal_offence": false, "schedule12a": [],
                       "handling": "P"},
    "body": {"type": "cp_plan", "level": null, "status": "active", "start": "2024-04-01",
             "end": null, "review_by": "2024-07-01", "owner_agency": "bradford-csc",
             "contact": {"office_hours": "01274 222222", "out_of_hours": "01274 333333"},
             "note": "free text"}
  })J");
  for (auto _ : state) {
    Redaction r = Redact(record, d);
    benchmark::DoNotOptimize(r);
  }
}

// Loading is what a SIGHUP reload costs (off the request path).
void BM_ParseGrownPolicy(benchmark::State& state) {
  const std::string text = GrownPolicyText();
  for (auto _ : state) {
    auto p = ParsePolicy(text, "grown");
    benchmark::DoNotOptimize(p);
  }
}

int RegisterAll() {
  for (const NamedInput& in : Inputs()) {
    benchmark::RegisterBenchmark((std::string("BM_Decide/") + in.name).c_str(),
                                 [in](benchmark::State& s) { BM_Decide(s, in); });
  }
  benchmark::RegisterBenchmark("BM_DecideLatency", BM_DecideLatency)->Iterations(1'000'000);
  benchmark::RegisterBenchmark("BM_Redact", BM_Redact);
  benchmark::RegisterBenchmark("BM_ParseGrownPolicy", BM_ParseGrownPolicy)
      ->Unit(benchmark::kMillisecond);
  return 0;
}

}  // namespace
}  // namespace safegate::policy

int main(int argc, char** argv) {
  safegate::policy::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
