// Helpers for the adapters' tests: the source tree, the doc examples (tests parse the very
// examples docs/adapters/*.md show, so the pages cannot drift from the code), and assertions
// on problems.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "adapters/adapter.h"
#include "adapters/registry.h"

namespace safegate {
// So gtest prints problems readably in failure messages.
inline void PrintTo(const Problem& p, std::ostream* os) { *os << "[" << p.where << "] " << p.what; }
}  // namespace safegate

namespace safegate::adapters::testing {

inline std::filesystem::path SourceDir() {
  const char* dir = std::getenv("SAFEGATE_SOURCE_DIR");
  return dir != nullptr ? std::filesystem::path(dir)
                        : std::filesystem::path(SAFEGATE_SOURCE_DIR_DEFAULT);
}

inline std::optional<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The fenced block after "<!-- example: NAME -->" in docs/adapters/PAGE.md.
inline std::string DocExample(const std::string& page, const std::string& name) {
  auto text = ReadFile(SourceDir() / "docs" / "adapters" / (page + ".md"));
  if (!text) {
    ADD_FAILURE() << "cannot read docs/adapters/" << page << ".md";
    return "";
  }
  const std::string marker = "<!-- example: " + name + " -->";
  size_t at = text->find(marker);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no " << marker << " in " << page << ".md";
    return "";
  }
  const size_t fence = text->find("```", at);
  const size_t body = text->find('\n', fence) + 1;
  const size_t end = text->find("\n```", body);
  return text->substr(body, end - body + 1);
}

inline const IngestContext& Bradford(std::string agency) {
  static thread_local IngestContext ctx;
  ctx = {std::move(agency), "bradford"};
  return ctx;
}

inline Result<ParsedBatch> ParseWith(std::string_view format, std::string_view input,
                                     const std::string& agency) {
  const Adapter* a = FindAdapter(format);
  if (a == nullptr) return Status::Internal("no adapter " + std::string(format));
  return a->Parse(input, Bradford(agency));
}

inline std::string Describe(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += "  [" + p.where + "] " + p.what + "\n";
  return out;
}

// Matches a Problem whose where equals `where` and whose what contains `what_part`.
MATCHER_P2(ProblemAt, where, what_part, "") {
  return arg.where == where && arg.what.find(what_part) != std::string::npos;
}

}  // namespace safegate::adapters::testing
