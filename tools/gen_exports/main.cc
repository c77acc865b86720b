// gen-exports: writes synthetic exports for N children of one area (see generator.h).
//   gen-exports --children N [--seed S] [--area A] --out DIR
// Writes DIR/niche.xml, niche.csv, fhir-flags.json, cpis.csv, cin.xml and manifest.json.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "tools/gen_exports/generator.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: gen-exports --children N [--seed S] [--area AREA] [--police ID] "
               "[--health ID] [--csc ID] --out DIR\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  safegate::tools::GenOptions options;
  std::string out_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) return Usage();
    const std::string value = argv[++i];
    if (arg == "--children") {
      options.children = std::atoi(value.c_str());
    } else if (arg == "--seed") {
      options.seed = std::strtoull(value.c_str(), nullptr, 10);
    } else if (arg == "--area") {
      options.area = value;
    } else if (arg == "--police") {
      options.police_agency = value;
    } else if (arg == "--health") {
      options.health_agency = value;
    } else if (arg == "--csc") {
      options.csc_agency = value;
    } else if (arg == "--out") {
      out_dir = value;
    } else {
      return Usage();
    }
  }
  if (out_dir.empty() || options.children <= 0) return Usage();

  const auto exports = safegate::tools::GenerateExports(options);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    std::fprintf(stderr, "gen-exports: cannot create %s: %s\n", out_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  const std::pair<const char*, const std::string*> files[] = {
      {"niche.xml", &exports.niche_xml},
      {"niche.csv", &exports.niche_csv},
      {"fhir-flags.json", &exports.fhir_bundle},
      {"cpis.csv", &exports.cpis_csv},
      {"cin.xml", &exports.cin_xml},
      {"manifest.json", &exports.manifest}};
  for (const auto& [name, text] : files) {
    const auto path = std::filesystem::path(out_dir) / name;
    std::ofstream f(path, std::ios::binary);
    f << *text;
    if (!f) {
      std::fprintf(stderr, "gen-exports: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  std::printf("%d children: niche %zu records, fhir-flag %zu, cpis-csv %zu, cin-xml %zu -> %s\n",
              options.children, exports.niche_records, exports.fhir_records, exports.cpis_records,
              exports.cin_records, out_dir.c_str());
  return 0;
}
