// PolicyHolder: the gateway's current policy, swapped whole on reload (SIGHUP).
//
// Request handlers take a snapshot with Current() once per request and decide with it; a
// reload builds and validates the new policy completely before swapping the pointer, so a
// handler sees either the old policy or the new one, never a mixture. A file that fails to
// load leaves the old policy in place and the returned Status names "file:line" and the
// reason for every problem; the caller writes the policy_reloaded / policy_reload_failed
// audit entry.
//
// Thread-safety: Current() and Reload() may be called from any thread. Current() takes a
// short internal lock only to copy the shared_ptr (no decision work happens under it).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "policy/policy.h"

namespace safegate::policy {

class PolicyHolder {
 public:
  // REQUIRES: initial is not null.
  explicit PolicyHolder(std::shared_ptr<const Policy> initial, std::string path);

  std::shared_ptr<const Policy> Current() const;
  const std::string& path() const { return path_; }

  // Loads the file given at construction. On success the new policy is current and the
  // result holds it; on failure the old policy stays and the Status explains why.
  Result<std::shared_ptr<const Policy>> Reload();

 private:
  const std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const Policy> current_;  // guarded by mu_
};

}  // namespace safegate::policy
