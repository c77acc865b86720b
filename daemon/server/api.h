// Api: the public listener's routes, independent of sockets and of Beast.
//
// The connection code frames one HTTP request (size limits and timeouts already enforced),
// names the caller from its certificate, and hands the request here. Api routes it through
// one explicit table (path template, method, roles that may call it), checks its query
// parameters and body, calls one Gateway method, and renders the result or the error.
//
// Every refusal made here (unknown route, wrong method or role, bad parameter, bad body)
// is audited as request_rejected through Gateway::Reject, and the reply is released only
// after that audit entry is committed. Refusals returned by Gateway methods were audited by
// the Gateway itself and are only rendered.
//
// Threading: Handle() may be called from any thread. `done` is always invoked through
// `post` (the connection's strand), never inline, and exactly once; heavy work such as
// rendering a mailbox page also runs there, never on the store's writer thread.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/core/gateway.h"
#include "daemon/server/event_log.h"
#include "record/status.h"

namespace safegate::server {

// One framed request.
struct ApiRequest {
  std::string method;        // "GET", "POST", ...
  std::string target;        // origin-form target as sent, percent-encoded
  std::string content_type;  // "" when absent
  std::string body;
  bool has_body = false;  // a non-empty body was sent
  std::string accept;     // the Accept header, "" when absent
};

struct ApiReply {
  int status = 200;
  std::string body;               // JSON text; empty for 204
  std::string route = "unknown";  // route template for metrics and logs, never the raw path
  std::string allow;              // the Allow header of a 405
  std::string error;              // the API error code, empty on success (for logs)
  std::string content_type;       // "" means application/json
};

using Post = std::function<void(std::function<void()>)>;
using ReplyFn = std::function<void(ApiReply)>;

// The one place a Status becomes a client-visible error body:
// {"error": CODE, "detail": TEXT[, "problems": [{"where", "what"}]]}.
nlohmann::json ErrorBody(const Status& status);
// ErrorBody with the status code HttpStatusFor(status.code()).
ApiReply ErrorReply(const Status& status, std::string route);

// The body of a push's answer (201, or 200 for a replay): the same bytes as the canonical JSON
// of outcome.ToJson(), written without building the JSON first.
std::string PushAnswerBody(const PushOutcome& outcome);

class Api {
 public:
  // `gateway` and `log` are not owned and must outlive the Api and every call in flight.
  Api(Gateway& gateway, const EventLog& log);

  void Handle(const Caller& caller, ApiRequest request, Post post, ReplyFn done) const;

  // A request the connection layer refused before it was routed (413, 431, malformed
  // HTTP, a certificate no longer registered): audits request_rejected with `actor` ("-"
  // when the caller is unknown), then replies with ErrorReply(status, route).
  // `http_status` replaces the status HttpStatusFor(status.code()) gives (431 carries the
  // code bad_request); 0 keeps it.
  void Refuse(std::string actor, std::string route, const Status& status, int http_status,
              Post post, ReplyFn done) const;

  // The route template for a method and target, "unknown" if none matches (for the
  // connection layer's logs and metrics when it refuses a request itself).
  static std::string RouteOf(std::string_view target);

  // Where CPU-heavy work goes (parsing an export for POST /v1/ingest), off the network
  // threads. Unset: it runs on the calling thread. Call before serving.
  void SetWorker(Post worker) { worker_ = std::move(worker); }

  struct Call;  // one request in progress (defined in api.cc)

 private:
  void Dispatch(std::shared_ptr<Call> call) const;
  void PushRecord(std::shared_ptr<Call> call) const;
  void ReadMailbox(std::shared_ptr<Call> call) const;
  void AckMessage(std::shared_ptr<Call> call) const;
  void GetRecord(std::shared_ptr<Call> call) const;
  void QueryAudit(std::shared_ptr<Call> call) const;
  void VerifyAudit(std::shared_ptr<Call> call) const;
  void TreeHead(std::shared_ptr<Call> call) const;  // the verifiable audit log's routes
  void InclusionProof(std::shared_ptr<Call> call) const;
  void ConsistencyProof(std::shared_ptr<Call> call) const;
  void RecordConsent(std::shared_ptr<Call> call) const;  // the policy's routes
  void ListConsents(std::shared_ptr<Call> call) const;
  void QueryStats(std::shared_ptr<Call> call) const;
  void Ingest(std::shared_ptr<Call> call) const;  // ingest and the flags view
  void SubjectFlags(std::shared_ptr<Call> call) const;
  void ReadMailboxAsFhir(std::shared_ptr<Call> call, int limit, std::string after) const;
  void ProposeTransfer(std::shared_ptr<Call> call) const;  // out-of-area transfers
  void GetTransfer(std::shared_ptr<Call> call) const;
  void AnswerTransfer(std::shared_ptr<Call> call, std::string action) const;
  void PeerMessage(std::shared_ptr<Call> call) const;  // gateway to gateway
  void SubjectReport(std::shared_ptr<Call> call) const;  // the subject access report
  void Reject(std::shared_ptr<Call> call, const Status& status, int http_status = 0,
              std::string allow = "") const;

  Gateway& gateway_;
  const EventLog& log_;
  Post worker_;
};

}  // namespace safegate::server
