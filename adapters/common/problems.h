// ProblemList: collects what is wrong with one input while an adapter reads all of it, so a
// rejected export lists every problem at once rather than the first.
//
// The list is capped (kMaxProblems) so a hostile or badly broken file cannot make the reply or
// the memory grow without bound; past the cap, problems are only counted and the last entry
// says how many more there were.
//
// Thread-safety: none; one list per Parse() call.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "record/status.h"

namespace safegate::adapters {

class ProblemList {
 public:
  static constexpr size_t kMaxProblems = 1000;

  void Add(std::string where, std::string what);
  bool empty() const { return problems_.empty(); }
  size_t size() const { return problems_.size() + dropped_; }

  // The problems, with a closing "... and N more" entry when some were dropped.
  std::vector<Problem> Take();
  // Status::Invalid("<format>: N problems", problems). REQUIRES: !empty().
  Status ToStatus(std::string_view format);

 private:
  std::vector<Problem> problems_;
  size_t dropped_ = 0;
};

}  // namespace safegate::adapters
