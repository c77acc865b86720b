#include "daemon/server/api.h"

#include <array>
#include <cstdlib>
#include <set>
#include <utility>

#include "adapters/fhir/fhir_flag.h"
#include "adapters/registry.h"
#include "daemon/server/http_util.h"
#include "record/canonical_json.h"
#include "record/record.h"
#include "record/json_pointer.h"

namespace safegate::server {

using config::Role;
using nlohmann::json;

namespace {

enum class RouteId {
  kPushRecord,
  kGetRecord,
  kReadMailbox,
  kAckMessage,
  kQueryAudit,
  kVerifyAudit,
  kTreeHead,
  kInclusionProof,
  kConsistencyProof,
  kRecordConsent,
  kListConsents,
  kQueryStats,
  kIngest,
  kSubjectFlags,
  kProposeTransfer,  // out-of-area transfers (docs/transfers.md)
  kGetTransfer,
  kAcceptTransfer,
  kDeclineTransfer,
  kTransferConference,
  kPeerMessage,  // gateway to gateway: sealed bytes, not JSON
  kSubjectReport  // the subject access report (docs/subject-access.md)
};

constexpr unsigned RoleBit(Role r) { return 1u << static_cast<unsigned>(r); }
constexpr unsigned kProducers =
    RoleBit(Role::kPolice) | RoleBit(Role::kHealth) | RoleBit(Role::kCsc);
constexpr unsigned kAnyAgency = RoleBit(Role::kPolice) | RoleBit(Role::kHealth) |
                                RoleBit(Role::kCsc) | RoleBit(Role::kAudit) |
                                RoleBit(Role::kCommittee) | RoleBit(Role::kGateway);
constexpr unsigned kAuditors = RoleBit(Role::kAudit);
constexpr unsigned kStatsReaders = RoleBit(Role::kAudit) | RoleBit(Role::kCommittee);
constexpr unsigned kCsc = RoleBit(Role::kCsc);
constexpr unsigned kTransferLeads = RoleBit(Role::kCsc) | RoleBit(Role::kPolice);
constexpr unsigned kGateways = RoleBit(Role::kGateway);

// Every request the public listener answers, and who may make it. A segment "{id}" matches
// any one path segment and is passed to the handler.
struct Route {
  const char* method;
  const char* path;  // template, also the route's name in metrics, logs and audit entries
  unsigned roles;
  RouteId id;
};
constexpr std::array<Route, 21> kRoutes = {{
    {"POST", "/v1/records", kProducers, RouteId::kPushRecord},
    {"GET", "/v1/records/{id}", kAnyAgency, RouteId::kGetRecord},
    {"GET", "/v1/mailbox", kAnyAgency, RouteId::kReadMailbox},
    {"POST", "/v1/mailbox/{id}/ack", kAnyAgency, RouteId::kAckMessage},
    {"GET", "/v1/audit", kAuditors, RouteId::kQueryAudit},
    {"GET", "/v1/audit/verify", kAuditors, RouteId::kVerifyAudit},
    {"GET", "/v1/audit/tree-head", kAuditors, RouteId::kTreeHead},
    {"GET", "/v1/audit/proof/inclusion", kAuditors, RouteId::kInclusionProof},
    {"GET", "/v1/audit/proof/consistency", kAuditors, RouteId::kConsistencyProof},
    {"POST", "/v1/consents", kProducers, RouteId::kRecordConsent},
    {"GET", "/v1/subjects/{id}/consents", kProducers, RouteId::kListConsents},
    {"GET", "/v1/stats", kStatsReaders, RouteId::kQueryStats},
    {"POST", "/v1/ingest/{id}", kProducers, RouteId::kIngest},
    {"GET", "/v1/subjects/{id}/flags", kProducers, RouteId::kSubjectFlags},
    {"POST", "/v1/transfers", kCsc, RouteId::kProposeTransfer},
    {"GET", "/v1/transfers/{id}", kTransferLeads, RouteId::kGetTransfer},
    {"POST", "/v1/transfers/{id}/accept", kTransferLeads, RouteId::kAcceptTransfer},
    {"POST", "/v1/transfers/{id}/decline", kTransferLeads, RouteId::kDeclineTransfer},
    {"POST", "/v1/transfers/{id}/conference", kCsc, RouteId::kTransferConference},
    {"POST", "/v1/peer/messages", kGateways, RouteId::kPeerMessage},
    {"GET", "/v1/audit/subjects/{id}/report", kAuditors, RouteId::kSubjectReport},
}};

std::vector<std::string_view> SplitTemplate(std::string_view path) {
  std::vector<std::string_view> out;
  path.remove_prefix(1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// Matches decoded segments against a template; fills the "{id}" values.
bool Matches(const Route& route, const std::vector<std::string>& segments,
             std::vector<std::string>* params) {
  const auto parts = SplitTemplate(route.path);
  if (parts.size() != segments.size()) return false;
  std::vector<std::string> values;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "{id}") {
      values.push_back(segments[i]);
    } else if (parts[i] != segments[i]) {
      return false;
    }
  }
  if (params != nullptr) *params = std::move(values);
  return true;
}

std::string Dump(const json& value) {
  // The same bytes as value.dump(-1, ' ', false, error_handler_t::replace) (never throws:
  // invalid UTF-8 is replaced), written without decoding every ASCII byte (record.h).
  return record::CanonicalJson(value);
}

// A reply whose body is JSON text already written.
ApiReply JsonTextReply(int status, std::string body, std::string route) {
  ApiReply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.route = std::move(route);
  return reply;
}

ApiReply JsonReply(int status, const json& body, std::string route) {
  return JsonTextReply(status, Dump(body), std::move(route));
}

// Refuses any query parameter not in `allowed`.
Status CheckQueryNames(const std::map<std::string, std::string>& query,
                       std::initializer_list<std::string_view> allowed) {
  for (const auto& [name, value] : query) {
    bool known = false;
    for (auto a : allowed) known = known || a == name;
    if (!known) return Status::BadRequest("unknown query parameter '" + name + "'");
  }
  return Status::Ok();
}

// A header value lower case and without spaces or tabs.
std::string Squeezed(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == ' ' || c == '\t') continue;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

// The media type of a Content-Type value, without its parameters.
std::string BareMediaType(std::string_view value) {
  return Squeezed(value.substr(0, value.find(';')));
}

// True when the Accept header asks for FHIR JSON ahead of plain JSON (and not with q=0).
bool WantsFhir(std::string_view accept) {
  while (!accept.empty()) {
    const size_t comma = accept.find(',');
    const std::string range = Squeezed(accept.substr(0, comma));
    const size_t semi = range.find(';');
    const std::string type = range.substr(0, semi);
    bool refused = false;
    if (const size_t q = range.find(";q=", semi == std::string::npos ? range.size() : semi);
        q != std::string::npos) {
      refused = std::strtod(range.c_str() + q + 3, nullptr) <= 0.0;
    }
    if (!refused && type == "application/fhir+json") return true;
    if (!refused && (type == "application/json" || type == "application/*" || type == "*/*")) {
      return false;
    }
    if (comma == std::string_view::npos) break;
    accept.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

// The push answer's body: the bytes of Dump(outcome.ToJson()), written member by member in
// key order without building the JSON first (its reasons run to a kilobyte a delivery).
std::string PushAnswerBody(const PushOutcome& outcome) {
  std::string out;
  out.reserve(256);
  out += "{\"deliveries\":[";
  for (size_t i = 0; i < outcome.deliveries.size(); ++i) {
    const Delivery& d = outcome.deliveries[i];
    if (i > 0) out += ',';
    out += "{\"decision\":";
    record::AppendCanonicalJsonString(out, d.decision);
    out += ",\"message_id\":";
    if (d.message_id.empty()) {
      out += "null";
    } else {
      record::AppendCanonicalJsonString(out, d.message_id);
    }
    out += ",\"reasons\":[";
    for (size_t r = 0; r < d.reasons.size(); ++r) {
      if (r > 0) out += ',';
      record::AppendCanonicalJsonString(out, d.reasons[r]);
    }
    out += "],\"recipient\":";
    record::AppendCanonicalJsonString(out, d.recipient);
    out += '}';
  }
  out += "],\"record_id\":";
  record::AppendCanonicalJsonString(out, outcome.record_id);
  out += '}';
  return out;
}

struct Api::Call {
  Caller caller;
  ApiRequest request;
  Target target;
  std::vector<std::string> params;  // the "{id}" segments
  std::string route = "unknown";
  Post post;
  ReplyFn done;
};

json ErrorBody(const Status& status) {
  json body = {{"error", std::string(ErrorCodeName(status.code()))}, {"detail", status.detail()}};
  if (!status.problems().empty()) {
    json problems = json::array();
    for (const auto& p : status.problems()) {
      problems.push_back({{"where", p.where}, {"what", p.what}});
    }
    body["problems"] = std::move(problems);
  }
  return body;
}

ApiReply ErrorReply(const Status& status, std::string route) {
  const Status& s = status.ok() ? Status(ErrorCode::kInternal, "error without a code") : status;
  ApiReply reply = JsonReply(HttpStatusFor(s.code()), ErrorBody(s), std::move(route));
  reply.error = std::string(ErrorCodeName(s.code()));
  return reply;
}

Api::Api(Gateway& gateway, const EventLog& log) : gateway_(gateway), log_(log) {}

std::string Api::RouteOf(std::string_view target) {
  auto parsed = ParseTarget(target);
  if (!parsed.ok()) return "unknown";
  for (const auto& route : kRoutes) {
    if (Matches(route, parsed->segments, nullptr)) return route.path;
  }
  return "unknown";
}

void Api::Refuse(std::string actor, std::string route, const Status& status, int http_status,
                 Post post, ReplyFn done) const {
  auto call = std::make_shared<Call>();
  call->caller.agency = std::move(actor);
  call->route = std::move(route);
  call->post = std::move(post);
  call->done = std::move(done);
  Reject(std::move(call), status, http_status);
}

void Api::Reject(std::shared_ptr<Call> call, const Status& status, int http_status,
                 std::string allow) const {
  ApiReply reply = ErrorReply(status, call->route);
  if (http_status != 0) reply.status = http_status;
  reply.allow = std::move(allow);
  Rejection rejection;
  rejection.action = "request_rejected";
  rejection.actor = call->caller.agency.empty() ? "-" : call->caller.agency;
  rejection.reason = std::string(ErrorCodeName(status.code()));
  rejection.detail = {{"route", call->route}, {"status", reply.status}};
  // The reply waits for the audit entry: a refusal the log does not show never reaches
  // the client either.
  gateway_.Reject(
      std::move(rejection), [this, call, reply = std::move(reply)](Result<Empty> audited) mutable {
        call->post([this, call, reply = std::move(reply), audited = std::move(audited)]() mutable {
          if (!audited.ok()) {
            log_.Event(LogLevel::kError, "audit_failed",
                       {{"action", "request_rejected"},
                        {"route", call->route},
                        {"error", audited.status().ToString()}});
          }
          call->done(std::move(reply));
        });
      });
}

void Api::Handle(const Caller& caller, ApiRequest request, Post post, ReplyFn done) const {
  auto call = std::make_shared<Call>();
  call->caller = caller;
  call->request = std::move(request);
  call->post = std::move(post);
  call->done = std::move(done);
  Dispatch(std::move(call));
}

void Api::Dispatch(std::shared_ptr<Call> call) const {
  auto target = ParseTarget(call->request.target);
  if (!target.ok()) return Reject(std::move(call), target.status());
  call->target = std::move(target).value();

  const Route* found = nullptr;
  std::string allow;
  for (const auto& route : kRoutes) {
    std::vector<std::string> params;
    if (!Matches(route, call->target.segments, &params)) continue;
    call->route = route.path;
    if (call->request.method == route.method) {
      found = &route;
      call->params = std::move(params);
      break;
    }
    if (!allow.empty()) allow += ", ";
    allow += route.method;
  }
  if (found == nullptr) {
    if (allow.empty()) return Reject(std::move(call), Status::NotFound("no endpoint at this path"));
    // 405 carries the API's bad_request code, and an Allow header.
    Status status(ErrorCode::kBadRequest,
                  "method " + call->request.method + " not allowed here; allowed: " + allow);
    return Reject(std::move(call), status, 405, allow);
  }
  if ((found->roles & RoleBit(call->caller.role)) == 0) {
    return Reject(std::move(call),
                  Status::Forbidden("an agency with role '" +
                                    std::string(config::RoleName(call->caller.role)) +
                                    "' may not call " + found->method + " " + found->path));
  }
  // A peer gateway's certificate (agency "gateway:<area>") opens the gateway-to-gateway
  // route and nothing else: it is no agency of this area.
  if (call->caller.agency.rfind("gateway:", 0) == 0 && found->id != RouteId::kPeerMessage) {
    return Reject(std::move(call),
                  Status::Forbidden("a peer gateway may only call POST /v1/peer/messages"));
  }
  // (An ingest body is an export in its own format: Ingest checks its media type.)
  if (call->request.has_body && call->request.method == "POST" &&
      found->id != RouteId::kIngest && found->id != RouteId::kPeerMessage &&
      !IsJsonMediaType(call->request.content_type)) {
    return Reject(std::move(call),
                  Status(ErrorCode::kUnsupportedMediaType,
                         "request body must be Content-Type application/json (UTF-8), not '" +
                             call->request.content_type.substr(0, 100) + "'"));
  }
  switch (found->id) {
    case RouteId::kPushRecord:
      return PushRecord(std::move(call));
    case RouteId::kGetRecord:
      return GetRecord(std::move(call));
    case RouteId::kReadMailbox:
      return ReadMailbox(std::move(call));
    case RouteId::kAckMessage:
      return AckMessage(std::move(call));
    case RouteId::kQueryAudit:
      return QueryAudit(std::move(call));
    case RouteId::kVerifyAudit:
      return VerifyAudit(std::move(call));
    case RouteId::kTreeHead:
      return TreeHead(std::move(call));
    case RouteId::kInclusionProof:
      return InclusionProof(std::move(call));
    case RouteId::kConsistencyProof:
      return ConsistencyProof(std::move(call));
    case RouteId::kRecordConsent:
      return RecordConsent(std::move(call));
    case RouteId::kListConsents:
      return ListConsents(std::move(call));
    case RouteId::kQueryStats:
      return QueryStats(std::move(call));
    case RouteId::kIngest:
      return Ingest(std::move(call));
    case RouteId::kSubjectFlags:
      return SubjectFlags(std::move(call));
    case RouteId::kProposeTransfer:
      return ProposeTransfer(std::move(call));
    case RouteId::kGetTransfer:
      return GetTransfer(std::move(call));
    case RouteId::kAcceptTransfer:
      return AnswerTransfer(std::move(call), "accept");
    case RouteId::kDeclineTransfer:
      return AnswerTransfer(std::move(call), "decline");
    case RouteId::kTransferConference:
      return AnswerTransfer(std::move(call), "conference");
    case RouteId::kPeerMessage:
      return PeerMessage(std::move(call));
    case RouteId::kSubjectReport:
      return SubjectReport(std::move(call));
  }
}

namespace {

// Hops a Gateway result onto the connection's strand, then renders it there.
template <typename T, typename Render>
Callback<T> Deliver(std::shared_ptr<Api::Call> call, Render render) {
  return [call, render = std::move(render)](Result<T> result) mutable {
    call->post([call, render = std::move(render), result = std::move(result)]() mutable {
      if (!result.ok()) {
        // Refusals from the Gateway are already audited; only render them.
        return call->done(ErrorReply(result.status(), call->route));
      }
      call->done(render(result.value()));
    });
  };
}
}  // namespace

void Api::PushRecord(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  if (!call->request.has_body) {
    return Reject(std::move(call),
                  Status::BadRequest("request body is empty; expected a JSON object"));
  }
  auto parsed = ParseJsonBody(call->request.body);
  if (!parsed.ok()) return Reject(std::move(call), parsed.status());
  const json& body = *parsed;

  std::vector<Problem> problems;
  if (!body.is_object()) {
    return Reject(std::move(call), Status::Invalid("request body must be a JSON object",
                                                   {{"", "must be an object"}}));
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "record" && key != "purpose" && key != "recipients" && key != "override") {
      problems.push_back({"/" + record::JsonPointerToken(key), "unknown field"});
    }
  }
  PushRequest push;
  if (auto it = body.find("purpose"); it == body.end()) {
    problems.push_back({"/purpose", "required"});
  } else if (!it->is_string() || !IsSlug(it->get_ref<const std::string&>())) {
    problems.push_back({"/purpose", "must be a purpose id: 1 to 64 of a-z, 0-9, '-', '_'"});
  } else {
    push.purpose = it->get<std::string>();
  }
  if (auto it = body.find("recipients"); it == body.end()) {
    problems.push_back({"/recipients", "required: a non-empty array of agency ids"});
  } else if (!it->is_array() || it->empty()) {
    problems.push_back({"/recipients", "must be a non-empty array of agency ids"});
  } else {
    std::set<std::string> seen;
    for (size_t i = 0; i < it->size(); ++i) {
      const json& r = (*it)[i];
      const std::string where = "/recipients/" + std::to_string(i);
      if (!r.is_string() || !IsSlug(r.get_ref<const std::string&>())) {
        problems.push_back({where, "must be an agency id"});
      } else if (!seen.insert(r.get<std::string>()).second) {
        problems.push_back({where, "duplicate recipient"});
      } else {
        push.recipients.push_back(r.get<std::string>());
      }
    }
  }
  if (auto it = body.find("override"); it != body.end()) {
    if (!it->is_object()) {
      problems.push_back({"/override", "must be an object"});
    } else {
      push.override_request = *it;
    }
  }
  if (auto it = body.find("record"); it == body.end()) {
    problems.push_back({"/record", "required"});
  } else {
    auto record = record::ParseRecord(*it, "/record");
    if (record.ok()) {
      push.record = std::move(record).value();
    } else if (record.status().problems().empty()) {
      problems.push_back({"/record", record.status().detail()});
    } else {
      for (const auto& p : record.status().problems()) problems.push_back(p);
    }
  }
  if (!problems.empty()) {
    const size_t n = problems.size();
    return Reject(std::move(call), Status::Invalid("request body has " + std::to_string(n) +
                                                       (n == 1 ? " problem" : " problems"),
                                                   std::move(problems)));
  }
  const Caller caller = call->caller;
  gateway_.Push(caller, std::move(push),
                Deliver<PushOutcome>(call, [call](const PushOutcome& outcome) {
                  return JsonTextReply(outcome.created ? 201 : 200, PushAnswerBody(outcome),
                                       call->route);
                }));
}

void Api::ReadMailbox(std::shared_ptr<Call> call) const {
  const auto& q = call->target.query;
  if (Status s = CheckQueryNames(q, {"limit", "after"}); !s.ok()) return Reject(std::move(call), s);
  int64_t limit = 100;
  if (auto it = q.find("limit"); it != q.end()) {
    auto v = ParseIntParam("limit", it->second, 1, 1000);
    if (!v.ok()) return Reject(std::move(call), v.status());
    limit = *v;
  }
  std::string after;
  if (auto it = q.find("after"); it != q.end()) {
    if (!IsToken(it->second)) {
      return Reject(std::move(call),
                    Status::BadRequest("query parameter 'after' must be a cursor returned as "
                                       "'next' by an earlier page"));
    }
    after = it->second;
  }
  if (WantsFhir(call->request.accept)) {
    return ReadMailboxAsFhir(std::move(call), static_cast<int>(limit), std::move(after));
  }
  gateway_.ReadMailbox(call->caller, static_cast<int>(limit), std::move(after),
                       Deliver<MailboxPage>(call, [call](const MailboxPage& page) {
                         return JsonReply(200, page.ToJson(), call->route);
                       }));
}

void Api::AckMessage(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  const std::string& id = call->params.at(0);
  if (!IsToken(id)) {
    return Reject(std::move(call), Status::BadRequest("path parameter 'message_id' is not a "
                                                      "message id"));
  }
  gateway_.Ack(call->caller, id, Deliver<Empty>(call, [call](const Empty&) {
                 ApiReply reply;
                 reply.status = 204;
                 reply.route = call->route;
                 return reply;
               }));
}

void Api::GetRecord(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  const std::string& id = call->params.at(0);
  if (!IsToken(id)) {
    return Reject(std::move(call),
                  Status::BadRequest("path parameter 'record_id' is not a record id"));
  }
  gateway_.GetRecord(call->caller, id, Deliver<json>(call, [call](const json& record) {
                       return JsonReply(200, record, call->route);
                     }));
}

void Api::QueryAudit(std::shared_ptr<Call> call) const {
  const auto& q = call->target.query;
  if (Status s = CheckQueryNames(
          q, {"purpose", "subject", "agency", "action", "from", "to", "limit", "after"});
      !s.ok()) {
    return Reject(std::move(call), s);
  }
  AuditFilter filter;
  auto slug = [&](const char* name, std::string& out) -> Status {
    if (auto it = q.find(name); it != q.end()) {
      if (!IsSlug(it->second)) {
        return Status::BadRequest(std::string("query parameter '") + name +
                                  "' must be 1 to 64 of a-z, 0-9, '-', '_'");
      }
      out = it->second;
    }
    return Status::Ok();
  };
  auto time = [&](const char* name, std::optional<int64_t>& out) -> Status {
    if (auto it = q.find(name); it != q.end()) {
      out = ParseRfc3339Ms(it->second);
      if (!out) {
        return Status::BadRequest(std::string("query parameter '") + name +
                                  "' must be an RFC 3339 date-time such as "
                                  "2024-05-01T10:00:00Z");
      }
    }
    return Status::Ok();
  };
  for (Status s :
       {slug("purpose", filter.purpose), slug("agency", filter.agency),
        slug("action", filter.action), time("from", filter.from_ms), time("to", filter.to_ms)}) {
    if (!s.ok()) return Reject(std::move(call), s);
  }
  if (filter.from_ms && filter.to_ms && *filter.from_ms > *filter.to_ms) {
    return Reject(std::move(call), Status::BadRequest("query parameter 'from' is later than 'to'"));
  }
  if (auto it = q.find("subject"); it != q.end()) {
    auto ref = record::ParseSubjectRef(it->second);
    if (!ref.ok()) {
      return Reject(std::move(call),
                    Status::BadRequest("query parameter 'subject': " + ref.status().detail()));
    }
    filter.subject = ref->ToString();
  }
  if (auto it = q.find("limit"); it != q.end()) {
    auto v = ParseIntParam("limit", it->second, 1, 1000);
    if (!v.ok()) return Reject(std::move(call), v.status());
    filter.limit = static_cast<int>(*v);
  }
  if (auto it = q.find("after"); it != q.end()) {
    if (!IsToken(it->second)) {
      return Reject(std::move(call),
                    Status::BadRequest("query parameter 'after' must be a cursor returned as "
                                       "'next' by an earlier page"));
    }
    filter.after = it->second;
  }
  gateway_.QueryAudit(call->caller, std::move(filter),
                      Deliver<AuditPage>(call, [call](const AuditPage& page) {
                        return JsonReply(200, page.ToJson(), call->route);
                      }));
}

void Api::VerifyAudit(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  gateway_.VerifyAudit(call->caller, Deliver<VerifyReport>(call, [call](const VerifyReport& r) {
                         return JsonReply(200, r.ToJson(), call->route);
                       }));
}

// The verifiable audit log (docs/audit-merkle.md): the Gateway answers API.md's objects as
// they are, and audits each read.
void Api::TreeHead(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  gateway_.GetTreeHead(call->caller, Deliver<json>(call, [call](const json& head) {
                         return JsonReply(200, head, call->route);
                       }));
}

namespace {
// A tree size or position in a query: 1 to 2^53 (what a JSON reader keeps exactly).
constexpr int64_t kMaxTreeSize = int64_t{1} << 53;
}  // namespace

void Api::InclusionProof(std::shared_ptr<Call> call) const {
  const auto& q = call->target.query;
  if (Status s = CheckQueryNames(q, {"seq", "tree_size"}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  auto seq_text = q.find("seq");
  if (seq_text == q.end()) {
    return Reject(std::move(call), Status::BadRequest("query parameter 'seq' is required"));
  }
  auto seq = ParseIntParam("seq", seq_text->second, 1, kMaxTreeSize);
  if (!seq.ok()) return Reject(std::move(call), seq.status());
  int64_t tree_size = 0;  // the latest signed head
  if (auto it = q.find("tree_size"); it != q.end()) {
    auto v = ParseIntParam("tree_size", it->second, 1, kMaxTreeSize);
    if (!v.ok()) return Reject(std::move(call), v.status());
    tree_size = *v;
  }
  gateway_.GetInclusionProof(call->caller, *seq, tree_size,
                             Deliver<json>(call, [call](const json& proof) {
                               return JsonReply(200, proof, call->route);
                             }));
}

void Api::ConsistencyProof(std::shared_ptr<Call> call) const {
  const auto& q = call->target.query;
  if (Status s = CheckQueryNames(q, {"first", "second"}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  int64_t sizes[2] = {0, 0};
  const char* names[2] = {"first", "second"};
  for (int i = 0; i < 2; ++i) {
    auto it = q.find(names[i]);
    if (it == q.end()) {
      return Reject(std::move(call), Status::BadRequest(std::string("query parameter '") +
                                                        names[i] + "' is required"));
    }
    auto v = ParseIntParam(names[i], it->second, 1, kMaxTreeSize);
    if (!v.ok()) return Reject(std::move(call), v.status());
    sizes[i] = *v;
  }
  gateway_.GetConsistencyProof(call->caller, sizes[0], sizes[1],
                               Deliver<json>(call, [call](const json& proof) {
                                 return JsonReply(200, proof, call->route);
                               }));
}

// POST /v1/consents: the body goes to the Gateway whole, which checks every member (and
// audits a refusal with its problems).
void Api::RecordConsent(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  if (!call->request.has_body) {
    return Reject(std::move(call),
                  Status::BadRequest("request body is empty; expected a JSON object"));
  }
  auto parsed = ParseJsonBody(call->request.body);
  if (!parsed.ok()) return Reject(std::move(call), parsed.status());
  gateway_.RecordConsent(call->caller, std::move(parsed).value(),
                         Deliver<ConsentRecord>(call, [call](const ConsentRecord& c) {
                           return JsonReply(201, c.ToJson(), call->route);
                         }));
}

void Api::ListConsents(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  gateway_.ListConsents(call->caller, call->params.at(0),
                        Deliver<ConsentList>(call, [call](const ConsentList& list) {
                          return JsonReply(200, list.ToJson(), call->route);
                        }));
}

void Api::QueryStats(std::shared_ptr<Call> call) const {
  const auto& q = call->target.query;
  if (Status s = CheckQueryNames(q, {"from", "to"}); !s.ok()) return Reject(std::move(call), s);
  StatsQuery query;
  if (auto it = q.find("from"); it != q.end()) query.from = it->second;
  if (auto it = q.find("to"); it != q.end()) query.to = it->second;
  gateway_.QueryStats(call->caller, std::move(query),
                      Deliver<StatsReport>(call, [call](const StatsReport& report) {
                        return JsonReply(200, report.ToJson(), call->route);
                      }));
}

// ---- Ingest, the flags view and the FHIR mailbox (docs/ingest.md, docs/subjects.md) ------

namespace {

// "a,b" -> {"a", "b"}; every item an agency id.
Result<std::vector<std::string>> RecipientList(std::string_view text) {
  std::vector<std::string> out;
  while (true) {
    const size_t comma = text.find(',');
    const std::string item(text.substr(0, comma));
    if (!IsSlug(item)) {
      return Status::BadRequest(
          "query parameter 'recipients' must be agency ids separated by commas");
    }
    out.push_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// A flag delivery as RenderFhirFlagBundle takes it. The view may be redacted, so when it is
// no longer a whole canonical record, what rendering reads is taken as it is.
record::Record FlagForRendering(const json& view) {
  if (auto parsed = record::ParseRecord(view); parsed.ok()) return std::move(parsed).value();
  record::Record r;
  r.kind = record::Kind::kFlag;
  auto text = [](const json& obj, const char* key) {
    auto it = obj.is_object() ? obj.find(key) : obj.end();
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const json subject = view.is_object() ? view.value("subject", json::object()) : json::object();
  if (std::string nhs = text(subject, "nhs_number"); !nhs.empty()) r.subject.nhs_number = nhs;
  if (auto ids = subject.find("local_ids"); ids != subject.end() && ids->is_array()) {
    for (const json& id : *ids) r.subject.local_ids.push_back({text(id, "system"), text(id, "value")});
  }
  const json source = view.is_object() ? view.value("source", json::object()) : json::object();
  r.source.agency = text(source, "agency");
  r.source.system = text(source, "system");
  r.source.record_id = text(source, "record_id");
  r.source.recorded_at = text(source, "recorded_at");
  if (auto v = source.find("version"); v != source.end() && v->is_number_integer()) {
    r.source.version = v->get<int64_t>();
  }
  if (auto body = view.is_object() ? view.find("body") : view.end();
      body != view.end() && body->is_object()) {
    r.body = *body;
  }
  return r;
}

}  // namespace

// POST /v1/ingest/{format}?purpose=P[&recipients=a,b]: the body is the export, in the
// adapter's media type (or application/octet-stream).
void Api::Ingest(std::shared_ptr<Call> call) const {
  const auto& q = call->target.query;
  if (Status s = CheckQueryNames(q, {"purpose", "recipients"}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  IngestRequest req;
  req.format = call->params.at(0);
  // An unknown format goes on to the Gateway, which refuses it (404, listing the formats).
  if (const adapters::Adapter* adapter = adapters::FindAdapter(req.format)) {
    const std::string type = BareMediaType(call->request.content_type);
    if (type != adapter->MediaType() && type != "application/octet-stream") {
      return Reject(std::move(call),
                    Status(ErrorCode::kUnsupportedMediaType,
                           "a " + req.format + " export is sent as Content-Type " +
                               std::string(adapter->MediaType()) +
                               " (or application/octet-stream), not '" +
                               call->request.content_type.substr(0, 100) + "'"));
    }
  }
  auto purpose = q.find("purpose");
  if (purpose == q.end() || !IsSlug(purpose->second)) {
    return Reject(std::move(call),
                  Status::BadRequest("query parameter 'purpose' is required: a purpose id, 1 "
                                     "to 64 of a-z, 0-9, '-', '_'"));
  }
  req.purpose = purpose->second;
  if (auto it = q.find("recipients"); it != q.end()) {
    auto list = RecipientList(it->second);
    if (!list.ok()) return Reject(std::move(call), list.status());
    req.recipients = std::move(list).value();
  }
  // Parsing a large export is CPU work: on the worker, not on a network thread. The body
  // stays in `call` until Ingest has returned (it parses before returning).
  auto run = [this, call, req = std::move(req)]() mutable {
    req.content = call->request.body;
    gateway_.Ingest(call->caller, std::move(req),
                    Deliver<IngestOutcome>(call, [call](const IngestOutcome& outcome) {
                      return JsonReply(outcome.created > 0 ? 201 : 200, outcome.ToJson(),
                                       call->route);
                    }));
  };
  if (worker_) return worker_(std::move(run));
  run();
}

// GET /v1/subjects/{ref}/flags?purpose=P
void Api::SubjectFlags(std::shared_ptr<Call> call) const {
  const auto& q = call->target.query;
  if (Status s = CheckQueryNames(q, {"purpose"}); !s.ok()) return Reject(std::move(call), s);
  auto purpose = q.find("purpose");
  if (purpose == q.end() || !IsSlug(purpose->second)) {
    return Reject(std::move(call),
                  Status::BadRequest("query parameter 'purpose' is required: a purpose id, 1 "
                                     "to 64 of a-z, 0-9, '-', '_'"));
  }
  // The reference is checked (and a bad one refused and audited) by the Gateway.
  gateway_.SubjectFlags(call->caller, call->params.at(0), purpose->second,
                        Deliver<FlagsView>(call, [call](const FlagsView& view) {
                          return JsonReply(200, view.ToJson(), call->route);
                        }));
}

// GET /v1/mailbox with Accept: application/fhir+json: the flag deliveries as a FHIR R4
// Bundle of UK Core Flags. Each Flag carries the message id (to acknowledge it) as an
// identifier; the next page is Bundle.link "next".
void Api::ReadMailboxAsFhir(std::shared_ptr<Call> call, int limit, std::string after) const {
  gateway_.ReadFlagMailbox(
      call->caller, limit, std::move(after),
      Deliver<MailboxPage>(call, [call, limit](const MailboxPage& page) {
        std::vector<record::Record> records;
        records.reserve(page.messages.size());
        for (const MailboxMessage& m : page.messages) records.push_back(FlagForRendering(m.record));
        json bundle = adapters::RenderFhirFlagBundle(records);
        json& entries = bundle["entry"];
        for (size_t i = 0; i < entries.size() && i < page.messages.size(); ++i) {
          entries[i]["resource"]["identifier"].push_back(
              {{"system", "https://safegate.invalid/fhir/Id/mailbox-message"},
               {"value", page.messages[i].message_id}});
        }
        json links = json::array(
            {{{"relation", "self"}, {"url", "/v1/mailbox?limit=" + std::to_string(limit)}}});
        if (!page.next.empty()) {
          links.push_back({{"relation", "next"},
                           {"url", "/v1/mailbox?limit=" + std::to_string(limit) +
                                       "&after=" + page.next}});
        }
        bundle["link"] = std::move(links);
        ApiReply reply = JsonReply(200, bundle, call->route);
        reply.content_type = "application/fhir+json";
        return reply;
      }));
}

// ---- Out-of-area transfers (docs/transfers.md) ------------------------------------------

// POST /v1/transfers: the body goes to the Gateway whole, which checks every member.
void Api::ProposeTransfer(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  if (!call->request.has_body) {
    return Reject(std::move(call),
                  Status::BadRequest("request body is empty; expected a JSON object"));
  }
  auto parsed = ParseJsonBody(call->request.body);
  if (!parsed.ok()) return Reject(std::move(call), parsed.status());
  gateway_.ProposeTransfer(call->caller, std::move(parsed).value(),
                           Deliver<json>(call, [call](const json& out) {
                             return JsonReply(201, out, call->route);
                           }));
}

void Api::GetTransfer(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  gateway_.GetTransfer(call->caller, call->params.at(0),
                       Deliver<json>(call, [call](const json& view) {
                         return JsonReply(200, view, call->route);
                       }));
}

// accept, decline and conference. The conference's body may be empty (held now).
void Api::AnswerTransfer(std::shared_ptr<Call> call, std::string action) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  json body = json::object();
  if (call->request.has_body) {
    auto parsed = ParseJsonBody(call->request.body);
    if (!parsed.ok()) return Reject(std::move(call), parsed.status());
    body = std::move(parsed).value();
  } else if (action != "conference") {
    return Reject(std::move(call),
                  Status::BadRequest("request body is empty; expected a JSON object"));
  }
  gateway_.AnswerTransfer(call->caller, call->params.at(0), std::move(action), std::move(body),
                          Deliver<json>(call, [call](const json& view) {
                            return JsonReply(200, view, call->route);
                          }));
}

// POST /v1/peer/messages: a peer gateway's sealed message, opened by the Gateway before
// anything is stored. Only callers whose certificate is a registered peer's reach here.
void Api::PeerMessage(std::shared_ptr<Call> call) const {
  if (Status s = CheckQueryNames(call->target.query, {}); !s.ok()) {
    return Reject(std::move(call), s);
  }
  if (BareMediaType(call->request.content_type) != "application/octet-stream") {
    return Reject(std::move(call),
                  Status(ErrorCode::kUnsupportedMediaType,
                         "a transfer message is sent as Content-Type application/octet-stream, "
                         "not '" + call->request.content_type.substr(0, 100) + "'"));
  }
  if (!call->request.has_body) {
    return Reject(std::move(call), Status::BadRequest("request body is empty; expected the "
                                                      "sealed transfer message"));
  }
  gateway_.ReceivePeerMessage(call->caller, std::move(call->request.body),
                              Deliver<PeerMessageReceipt>(call, [call](const PeerMessageReceipt& r) {
                                return JsonReply(200, r.ToJson(), call->route);
                              }));
}


// GET /v1/audit/subjects/{ref}/report?purpose=P: the subject access report. The reference is
// checked (and a bad one refused and audited) by the Gateway, like the flags view's.
void Api::SubjectReport(std::shared_ptr<Call> call) const {
  const auto& q = call->target.query;
  if (Status s = CheckQueryNames(q, {"purpose"}); !s.ok()) return Reject(std::move(call), s);
  auto purpose = q.find("purpose");
  if (purpose == q.end() || !IsSlug(purpose->second)) {
    return Reject(std::move(call),
                  Status::BadRequest("query parameter 'purpose' is required: why the report is "
                                     "made, a purpose id such as subject_access (1 to 64 of "
                                     "a-z, 0-9, '-', '_')"));
  }
  gateway_.SubjectReport(call->caller, call->params.at(0), purpose->second,
                         Deliver<json>(call, [call](const json& report) {
                           return JsonReply(200, report, call->route);
                         }));
}

}  // namespace safegate::server
