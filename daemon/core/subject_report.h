// The subject access report in the store (docs/subject-access.md): every audit entry about
// one subject reference, sorted for a person to read, with the subject's consents and the
// signed tree head the report was cut at. Written against StoreContext like the policy's and
// the ingest's parts of the store, so that the report's own audit entry is written in the
// same transaction as the reads it describes.
//
// Thread-safety: PrepareSubjectReport runs on the calling thread; the job it returns runs on
// the store's writer thread inside a job (REQUIRES: a transaction is open).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "daemon/core/gateway.h"
#include "daemon/core/store_context.h"

namespace safegate::core {

// The job behind Gateway::SubjectReport. Refusals (kForbidden, kBadRequest, kInvalidInput)
// are audited as request_rejected with operation "subject_report".
TypedJob<nlohmann::json> PrepareSubjectReport(StoreContext& store, const Caller& caller,
                                              std::string ref, std::string purpose);

}  // namespace safegate::core
