#include "policy/policy_holder.h"

#include <cassert>
#include <utility>

namespace safegate::policy {

PolicyHolder::PolicyHolder(std::shared_ptr<const Policy> initial, std::string path)
    : path_(std::move(path)), current_(std::move(initial)) {
  assert(current_ != nullptr);
}

std::shared_ptr<const Policy> PolicyHolder::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

Result<std::shared_ptr<const Policy>> PolicyHolder::Reload() {
  // Load outside the lock: parsing and validation can take milliseconds.
  Result<std::shared_ptr<const Policy>> loaded = LoadPolicy(path_);
  if (!loaded.ok()) return loaded;
  std::lock_guard<std::mutex> lock(mu_);
  current_ = *loaded;
  return loaded;
}

}  // namespace safegate::policy
