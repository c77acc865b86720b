#include "daemon/server/api.h"

#include <array>
#include <set>
#include <utility>

#include "daemon/server/http_util.h"
#include "record/record.h"

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
  kVerifyAudit
};

constexpr unsigned RoleBit(Role r) { return 1u << static_cast<unsigned>(r); }
constexpr unsigned kProducers =
    RoleBit(Role::kPolice) | RoleBit(Role::kHealth) | RoleBit(Role::kCsc);
constexpr unsigned kAnyAgency = RoleBit(Role::kPolice) | RoleBit(Role::kHealth) |
                                RoleBit(Role::kCsc) | RoleBit(Role::kAudit) |
                                RoleBit(Role::kCommittee) | RoleBit(Role::kGateway);
constexpr unsigned kAuditors = RoleBit(Role::kAudit);

// Every request the public listener answers, and who may make it. A segment "{id}" matches
// any one path segment and is passed to the handler.
struct Route {
  const char* method;
  const char* path;  // template, also the route's name in metrics, logs and audit entries
  unsigned roles;
  RouteId id;
};
constexpr std::array<Route, 6> kRoutes = {{
    {"POST", "/v1/records", kProducers, RouteId::kPushRecord},
    {"GET", "/v1/records/{id}", kAnyAgency, RouteId::kGetRecord},
    {"GET", "/v1/mailbox", kAnyAgency, RouteId::kReadMailbox},
    {"POST", "/v1/mailbox/{id}/ack", kAnyAgency, RouteId::kAckMessage},
    {"GET", "/v1/audit", kAuditors, RouteId::kQueryAudit},
    {"GET", "/v1/audit/verify", kAuditors, RouteId::kVerifyAudit},
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

// A JSON pointer token for an object key (RFC 6901: '~' -> "~0", '/' -> "~1").
std::string PointerToken(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Dump(const json& value) {
  // Never throws: text from the store is UTF-8, but a replacement beats an exception here.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

ApiReply JsonReply(int status, const json& body, std::string route) {
  ApiReply reply;
  reply.status = status;
  reply.body = Dump(body);
  reply.route = std::move(route);
  return reply;
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

}  // namespace

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
  if (call->request.has_body && call->request.method == "POST" &&
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
      problems.push_back({"/" + PointerToken(key), "unknown field"});
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
                  return JsonReply(outcome.created ? 201 : 200, outcome.ToJson(), call->route);
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

}  // namespace safegate::server
