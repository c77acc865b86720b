#include "adapters/common/problems.h"

#include <utility>

namespace safegate::adapters {

void ProblemList::Add(std::string where, std::string what) {
  if (problems_.size() >= kMaxProblems) {
    ++dropped_;
    return;
  }
  problems_.push_back({std::move(where), std::move(what)});
}

std::vector<Problem> ProblemList::Take() {
  std::vector<Problem> out = std::move(problems_);
  if (dropped_ > 0) {
    out.push_back({"", "... and " + std::to_string(dropped_) + " more problems not listed"});
  }
  problems_.clear();
  dropped_ = 0;
  return out;
}

Status ProblemList::ToStatus(std::string_view format) {
  const size_t n = size();
  std::string detail = std::string(format) + ": " + std::to_string(n) +
                       (n == 1 ? " problem" : " problems") + " in the export; nothing was ingested";
  return Status::Invalid(std::move(detail), Take());
}

}  // namespace safegate::adapters
