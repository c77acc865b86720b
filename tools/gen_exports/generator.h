// Synthetic exports for N children across the three agencies of an area: a police Niche
// export, a hospital's FHIR Flag bundle and a CSC children-in-need census file (plus the
// CSV formats, for benchmarks), with a manifest of who is who. Children overlap across
// agencies, NHS numbers are in the 999 range reserved for testing (valid check digits), and
// deliberate noise sits where real exports have it: police nominals mostly lack NHS numbers,
// some names are misspelt and some dates of birth have day and month swapped (only where the
// swap is still a valid date, so every export parses; the noise is for subject linking).
//
// Deterministic: the same options give byte-identical output. All people are invented.
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <string>

namespace safegate::tools {

struct GenOptions {
  int children = 100;
  uint64_t seed = 1;
  std::string area = "bradford";
  std::string police_agency = "wyp";
  std::string health_agency = "bthft";
  std::string csc_agency = "bradford-csc";
};

struct GeneratedExports {
  std::string niche_xml;    // for niche-xml, ingested by the police agency
  std::string niche_csv;    // the same export for niche-csv
  std::string fhir_bundle;  // for fhir-flag, ingested by the health agency
  std::string cpis_csv;     // for cpis-csv, the CSC's CP-IS upload
  std::string cin_xml;      // for cin-xml, ingested by the CSC agency
  std::string manifest;     // JSON: each child's true identity, ids per agency, noise applied
  // How many records each export must give.
  size_t niche_records = 0, fhir_records = 0, cpis_records = 0, cin_records = 0;
};

GeneratedExports GenerateExports(const GenOptions& options);

}  // namespace safegate::tools
