// Ingest and the flags view as store jobs: what Gateway::Ingest and Gateway::SubjectFlags do,
// written against StoreContext so that any store that offers it runs them the same way.
// docs/ingest.md and docs/subjects.md describe the behaviour.
//
// Thread-safety: the Prepare functions run on the calling thread (they parse the export and
// check what can be checked without the database); the jobs they return run on the writer.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/core/gateway.h"
#include "daemon/core/store_context.h"

namespace safegate::core {

// The recipients an ingest without explicit recipients delivers to: every registered agency
// of role police, health or csc in the caller's area, other than the caller, in registry
// order.
std::vector<std::string> DefaultRecipients(const config::Registry& registry, const Caller& caller);

// Parses the export now (the caller's thread) and returns the job that stores it. A refusal
// found while parsing (unknown format, bad rows, a role that may not push) comes back as a
// job that refuses, so that it is audited like any other refusal.
TypedJob<IngestOutcome> PrepareIngest(StoreContext& store, const Caller& caller,
                                      const IngestRequest& request);

// The job answering GET /v1/subjects/{ref}/flags.
TypedJob<FlagsView> PrepareSubjectFlags(StoreContext& store, const Caller& caller,
                                        std::string ref, std::string purpose);


// The purposes for which a health caller's flag query is a silent read (no access
// notification), as NHS CP-IS allows for scheduled care.
bool IsSilentRead(const Caller& caller, const std::string& purpose);

}  // namespace safegate::core
