#include "daemon/core/audit_log.h"

#include <algorithm>
#include <bit>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon/audit/encoding.h"
#include "daemon/core/crypto.h"
#include "daemon/core/time_format.h"
#include "record/canonical_json.h"
#include "record/record.h"

namespace safegate::core {
namespace {

using nlohmann::json;

constexpr const char* kInsertEntry =
    "INSERT INTO audit(seq, at_ms, actor, action, key_id, record_id, message_id, purpose, "
    "decision, entry, hash, details) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
constexpr const char* kInsertAgency = "INSERT INTO audit_agencies(agency, seq) VALUES (?1, ?2)";

// The eleven keys of an entry (bytes version 2), in canonical (sorted) order.
constexpr std::string_view kKeys[] = {"action",     "actor",   "at",      "decision",
                                      "detail",     "details_hash", "message_id", "purpose",
                                      "reasons",    "record_id",    "seq"};

std::optional<std::string> StringField(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

bool IsHashHex(std::string_view s) {
  if (s.size() != 2 * kHashBytes) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NodeName(int level, uint64_t index) {
  return "(" + std::to_string(level) + ", " + std::to_string(index) + ")";
}

// A NodeStore that stores nothing: every node the recomputed tree produces is compared with
// the node stored in merkle_nodes, and the first that differs (or is missing) is remembered.
class CheckingNodeStore final : public audit::NodeStore {
 public:
  explicit CheckingNodeStore(Db* db) : stored_(db) {}
  Result<audit::Hash> Get(int, uint64_t) const override {
    return Status::Internal("verification never reads back a node it computed");
  }
  Status Put(int level, uint64_t index, const audit::Hash& hash) override {
    if (mismatch_) return Status::Ok();
    auto stored = stored_.Get(level, index);
    if (!stored.ok()) {
      mismatch_ = stored.status().detail();
    } else if (*stored != hash) {
      mismatch_ = level == 0 ? "the stored leaf hash " + NodeName(level, index) +
                                   " is not SHA-256(0x00 || entry)"
                             : "the stored node " + NodeName(level, index) +
                                   " is not the hash of its children";
    }
    return Status::Ok();
  }
  std::optional<std::string> TakeMismatch() { return std::exchange(mismatch_, std::nullopt); }

 private:
  SqliteNodeStore stored_;
  std::optional<std::string> mismatch_;
};

}  // namespace

std::string AuditEntryBytes(const AuditEntry& e) {
  // The canonical JSON of {action, actor, at, decision, detail, details_hash, message_id,
  // purpose, reasons, record_id, seq}, written member by member in key order rather than
  // built as an object first (which copied the detail): every push makes three of these.
  // AuditEntryBytesTest compares it with CanonicalJson of the object.
  std::string out;
  out.reserve(256);
  auto text = [&out](const char* key, const std::string& value) {
    out += key;
    record::AppendCanonicalJsonString(out, value);
  };
  text("{\"action\":", e.action);
  text(",\"actor\":", e.actor);
  text(",\"at\":", FormatTimeMs(e.at_ms));
  text(",\"decision\":", e.decision);
  out += ",\"detail\":";
  if (e.detail.is_object()) {
    record::AppendCanonicalJson(out, e.detail);
  } else {
    out += "{}";
  }
  text(",\"details_hash\":", e.details_hash);
  text(",\"message_id\":", e.message_id);
  text(",\"purpose\":", e.purpose);
  out += ",\"reasons\":[";
  for (size_t i = 0; i < e.reasons.size(); ++i) {
    if (i > 0) out += ',';
    record::AppendCanonicalJsonString(out, e.reasons[i]);
  }
  out += ']';
  text(",\"record_id\":", e.record_id);
  out += ",\"seq\":";
  out += std::to_string(e.seq);
  out += '}';
  return out;
}

Result<AuditEntry> ParseAuditEntry(std::string_view bytes) {
  const json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal("audit entry is not a JSON object");
  }
  for (std::string_view k : kKeys) {
    if (!j.contains(k)) return Status::Internal("audit entry lacks \"" + std::string(k) + "\"");
  }
  if (j.size() != std::size(kKeys)) {
    return Status::Internal("audit entry has " + std::to_string(j.size()) + " keys, not 11");
  }
  AuditEntry e;
  struct Text {
    const char* key;
    std::string* out;
  };
  for (const Text& t :
       {Text{"action", &e.action}, Text{"actor", &e.actor}, Text{"decision", &e.decision},
        Text{"details_hash", &e.details_hash}, Text{"message_id", &e.message_id},
        Text{"purpose", &e.purpose}, Text{"record_id", &e.record_id}}) {
    auto v = StringField(j, t.key);
    if (!v) return Status::Internal(std::string("audit entry \"") + t.key + "\" is not a string");
    *t.out = std::move(*v);
  }
  if (!e.details_hash.empty() && !IsHashHex(e.details_hash)) {
    return Status::Internal(
        "audit entry \"details_hash\" is neither empty nor 64 lower-case hex characters");
  }
  auto at = StringField(j, "at");
  auto at_ms = at ? ParseTimeMs(*at) : std::nullopt;
  if (!at_ms) return Status::Internal("audit entry \"at\" is not an RFC 3339 time");
  e.at_ms = *at_ms;
  const json& seq = j["seq"];
  if (!seq.is_number_integer()) return Status::Internal("audit entry \"seq\" is not an integer");
  e.seq = seq.get<int64_t>();
  const json& reasons = j["reasons"];
  if (!reasons.is_array()) return Status::Internal("audit entry \"reasons\" is not an array");
  for (const json& r : reasons) {
    if (!r.is_string()) return Status::Internal("audit entry \"reasons\" holds a non-string");
    e.reasons.push_back(r.get<std::string>());
  }
  if (!j["detail"].is_object()) return Status::Internal("audit entry \"detail\" is not an object");
  e.detail = j["detail"];
  return e;
}

std::set<std::string> AgenciesNamedBy(const AuditEntry& e) {
  std::set<std::string> out;
  if (!e.actor.empty() && e.actor != "-") out.insert(e.actor);
  if (!e.detail.is_object()) return out;
  if (auto it = e.detail.find("recipient"); it != e.detail.end() && it->is_string()) {
    out.insert(it->get<std::string>());
  }
  for (const char* key : {"recipients", "notified"}) {
    auto it = e.detail.find(key);
    if (it == e.detail.end() || !it->is_array()) continue;
    for (const json& v : *it) {
      if (v.is_string()) out.insert(v.get<std::string>());
    }
  }
  out.erase("");
  return out;
}

AuditLog::AuditLog(Db* db, AuditLogOptions options)
    : db_(db),
      options_(options),
      nodes_(db),
      tree_(*audit::MerkleTree::Open(&nodes_, 0)) {}  // size 0 reads nothing: cannot fail

Status AuditLog::Load() {
  ForgetSubjectKeys();
  ChainHead head;
  {
    auto stmt = db_->Prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (!stmt.ok()) return stmt.status();
    auto row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    if (*row) {
      head.seq = (*stmt)->Int(0);
      head.hash = (*stmt)->Blob(1);
    }
    (*stmt)->Reset();
    if (head.hash.size() != kHashBytes) {
      return Status::Internal("audit log: the hash of entry " + std::to_string(head.seq) +
                              " is not 32 bytes; run safegatectl audit verify");
    }
  }
  const std::string damaged = "; the audit log was tampered with or damaged: run safegatectl "
                              "audit verify, and restore the database from a backup";
  auto tree = audit::MerkleTree::Open(&nodes_, static_cast<uint64_t>(head.seq));
  if (!tree.ok()) {
    return Status::Internal("audit log: the Merkle tree lacks nodes for the " +
                            std::to_string(head.seq) + " entries (" + tree.status().detail() +
                            ")" + damaged);
  }
  auto leaves = StoredLeafCount(*db_);
  if (!leaves.ok()) return Status::Internal(leaves.status().detail() + damaged);
  if (*leaves > static_cast<uint64_t>(head.seq)) {
    return Status::Internal("audit log: the Merkle tree holds leaves for " +
                            std::to_string(*leaves) + " entries, but the log ends at entry " +
                            std::to_string(head.seq) + ": entries were removed" + damaged);
  }
  auto latest = ReadLatestTreeHead(*db_);
  if (!latest.ok()) return latest.status();
  std::optional<audit::SignedTreeHead> latest_head;
  if (*latest) {
    const StoredTreeHead& sth = **latest;
    const std::string which = "the tree head at position " + std::to_string(sth.position) +
                              " (tree size " + std::to_string(sth.head.tree_size) + ")";
    if (sth.head.tree_size > static_cast<uint64_t>(head.seq)) {
      return Status::Internal("audit log: " + which + " was signed over more entries than the " +
                              "log holds (" + std::to_string(head.seq) +
                              "): entries were removed" + damaged);
    }
    auto root = audit::RootAt(nodes_, sth.head.tree_size);
    if (!root.ok()) return root.status();
    if (*root != sth.head.root_hash) {
      return Status::Internal("audit log: " + which +
                              " does not match the Merkle tree's root at that size" + damaged);
    }
    if (options_.signing_key != nullptr &&
        !audit::VerifyTreeHead(sth.head, options_.signing_key->public_key()).ok()) {
      return Status::Internal("audit log: " + which +
                              " was not signed by this gateway's signing key (signing.key was "
                              "replaced?); restore the signing key the log was signed with");
    }
    latest_head = sth.head;
  }
  head_ = std::move(head);
  tree_ = std::move(*tree);
  latest_head_ = std::move(latest_head);
  last_signed_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

Status AuditLog::Append(AuditEntry& e) {
  const int64_t seq = head_.seq + 1;
  if (!e.detail.is_object()) e.detail = json::object();
  std::optional<SubjectKeys::Sealed> sealed;
  if (!e.subject.empty() || !e.text.empty()) {
    if (e.subject.empty()) {
      return Status::Internal("audit: an entry's free text must be about a subject (it is sealed "
                              "under the subject's key)");
    }
    if (options_.subject_keys == nullptr) {
      return Status::Internal("audit: this log cannot seal the details of an entry");
    }
    auto s = options_.subject_keys->Seal(e.subject, e.text, seq, e.at_ms);
    if (!s.ok()) return s.status();
    sealed = std::move(*s);
  }
  e.seq = seq;
  e.details_hash = sealed ? sealed->details_hash : "";
  e.erased = false;
  const std::string bytes = AuditEntryBytes(e);
  std::string hash = Sha256(head_.hash, bytes);

  auto ins = db_->Prepare(kInsertEntry);
  if (!ins.ok()) return ins.status();
  Stmt& s = **ins;
  s.Bind(1, e.seq).Bind(2, e.at_ms).Bind(3, e.actor).Bind(4, e.action);
  if (sealed) {
    s.Bind(5, sealed->key_id).BindBlob(12, sealed->blob);
  } else {
    s.BindNull(5).BindNull(12);
  }
  s.Bind(6, e.record_id).Bind(7, e.message_id).Bind(8, e.purpose).Bind(9, e.decision);
  s.BindBlob(10, bytes).BindBlob(11, hash);
  if (Status st = s.Run(); !st.ok()) return st;
  for (const std::string& agency : AgenciesNamedBy(e)) {
    auto a = db_->Prepare(kInsertAgency);
    if (!a.ok()) return a.status();
    (*a)->Bind(1, agency).Bind(2, e.seq);
    if (Status st = (*a)->Run(); !st.ok()) return st;
  }
  // Last: MerkleTree::Append changes nothing in memory when it fails.
  if (Status st = tree_.AppendEntry(bytes); !st.ok()) return st;
  e.hash = Hex(hash);
  head_ = ChainHead{e.seq, std::move(hash)};
  return Status::Ok();
}

AuditLog::Checkpoint AuditLog::Save() const { return {head_, tree_.Save(), latest_head_}; }

void AuditLog::ForgetSubjectKeys() {
  if (options_.subject_keys != nullptr) options_.subject_keys->Forget();
}

void AuditLog::Restore(Checkpoint checkpoint) {
  ForgetSubjectKeys();  // it may have been found in, or made by, what was rolled back
  head_ = std::move(checkpoint.chain);
  tree_.Restore(std::move(checkpoint.tree));
  latest_head_ = std::move(checkpoint.latest_head);
}

Result<bool> AuditLog::SignHeadIfDue(bool force) {
  if (options_.signing_key == nullptr) return false;
  const uint64_t size = tree_.size();
  const uint64_t last = latest_head_ ? latest_head_->tree_size : 0;
  if (size == 0 || (latest_head_ && size <= last)) return false;  // nothing new to sign
  const auto now = std::chrono::steady_clock::now();
  const int64_t waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - last_signed_).count();
  if (!force && !audit::TreeHeadDue(options_.head_policy, size, last, waited, 0)) return false;
  int64_t ts = options_.clock != nullptr ? options_.clock->NowMs() : SystemClock().NowMs();
  // Heads' timestamps never go backwards, even if the clock does.
  if (latest_head_) ts = std::max<int64_t>(ts, static_cast<int64_t>(latest_head_->timestamp_ms));
  const audit::SignedTreeHead sth = audit::SignTreeHead(*options_.signing_key, size, tree_.Root(),
                                                        static_cast<uint64_t>(std::max<int64_t>(0, ts)));
  auto position = InsertTreeHead(*db_, sth);
  if (!position.ok()) {
    last_signed_ = now;  // try again one interval later, not in a tight loop
    return position.status();
  }
  latest_head_ = sth;
  last_signed_ = now;
  return true;
}

std::optional<std::chrono::milliseconds> AuditLog::HeadDueIn() const {
  if (options_.signing_key == nullptr) return std::nullopt;
  const uint64_t last = latest_head_ ? latest_head_->tree_size : 0;
  if (tree_.size() <= last) return std::nullopt;
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - last_signed_);
  const std::chrono::milliseconds interval(options_.head_policy.interval_ms);
  return waited >= interval ? std::chrono::milliseconds(0) : interval - waited;
}

// ---- Verification -----------------------------------------------------------------------

namespace {

struct Fault {
  int64_t seq;  // the first entry the fault concerns, for ordering and first_bad_seq
  VerifyReport::HeadFault head;
};

// The rows of audit_agencies in (seq, agency) order. The table is keyed (agency, seq), which
// is what the audit query's agency filter reads and what an append extends at one place per
// agency; so this reads each agency's rows in seq order and merges them (a few dozen
// agencies: one statement each).
class AgencyRowsBySeq {
 public:
  static Result<AgencyRowsBySeq> Open(Db& db) {
    AgencyRowsBySeq out;
    // The distinct agencies, each found by one index seek rather than a scan of every row.
    auto names = db.PrepareOnce(
        "WITH RECURSIVE a(agency) AS ("
        "  SELECT min(agency) FROM audit_agencies"
        "  UNION ALL"
        "  SELECT (SELECT min(agency) FROM audit_agencies WHERE agency > a.agency) FROM a"
        "  WHERE a.agency IS NOT NULL) "
        "SELECT agency FROM a WHERE agency IS NOT NULL");
    if (!names.ok()) return names.status();
    for (;;) {
      auto row = (*names)->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      auto rows = db.PrepareOnce("SELECT seq FROM audit_agencies WHERE agency = ?1 ORDER BY seq");
      if (!rows.ok()) return rows.status();
      out.cursors_.push_back({(*names)->Text(0), std::move(*rows)});
      out.cursors_.back().rows->Bind(1, out.cursors_.back().agency);
      if (Status s = out.Advance(out.cursors_.size() - 1); !s.ok()) return s;
    }
    return out;
  }

  bool has() const { return !heap_.empty(); }
  // REQUIRES: has(). The smallest seq not yet read, and (for equal seqs) its smallest agency.
  int64_t seq() const { return heap_.top().first; }
  const std::string& agency() const { return cursors_[heap_.top().second].agency; }
  Status Next() {
    const size_t i = heap_.top().second;
    heap_.pop();
    return Advance(i);
  }

 private:
  struct Cursor {
    std::string agency;
    std::unique_ptr<Stmt> rows;
  };
  Status Advance(size_t i) {
    auto row = cursors_[i].rows->Step();
    if (!row.ok()) return row.status();
    if (*row) heap_.push({cursors_[i].rows->Int(0), i});
    return Status::Ok();
  }

  std::vector<Cursor> cursors_;  // in agency order, so equal seqs come out in agency order
  std::priority_queue<std::pair<int64_t, size_t>, std::vector<std::pair<int64_t, size_t>>,
                      std::greater<>>
      heap_;
};

}  // namespace

Result<VerifyReport> VerifyLog(Db& db, const VerifyOptions& options) {
  auto rows = db.PrepareOnce(
      "SELECT seq, at_ms, actor, action, key_id, record_id, message_id, purpose, decision, "
      "entry, hash, details FROM audit ORDER BY seq");
  if (!rows.ok()) return rows.status();
  Stmt& r = **rows;
  auto agencies = AgencyRowsBySeq::Open(db);
  if (!agencies.ok()) return agencies.status();
  AgencyRowsBySeq& a = *agencies;

  // The signed heads first: the walk records the recomputed root at each size they sign.
  auto heads = ReadTreeHeads(db);
  if (!heads.ok()) return heads.status();
  std::map<uint64_t, std::optional<audit::Hash>> roots;  // tree size -> recomputed root
  for (const StoredTreeHead& h : *heads) roots[h.head.tree_size];
  if (auto it = roots.find(0); it != roots.end()) it->second = audit::EmptyRoot();

  VerifyReport report;
  auto fail = [&report](int64_t seq, std::string problem) {
    if (!report.ok) return;  // keep the first problem only
    report.ok = false;
    report.first_bad_seq = seq;
    report.problem = std::move(problem);
  };

  // audit_agencies is read in step with audit (both in seq order): a merge join.

  CheckingNodeStore checking(&db);
  auto tree = audit::MerkleTree::Open(&checking, 0);
  if (!tree.ok()) return tree.status();
  SubjectKeys::Cache key_cache;

  std::string prev(kHashBytes, '\0');
  int64_t expected = 1;
  std::string last_hash;
  for (;;) {
    auto row = r.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ++report.entries;
    const int64_t seq = r.Int(0);
    const std::string bytes = r.Blob(9);
    const std::string stored_hash = r.Blob(10);
    last_hash = stored_hash;

    // Index rows for seqs before this one belong to no entry (a deleted one, normally).
    std::optional<int64_t> orphan;
    while (a.has() && a.seq() < seq) {
      if (!orphan) orphan = a.seq();
      if (Status s = a.Next(); !s.ok()) return s;
    }
    std::set<std::string> indexed;
    while (a.has() && a.seq() == seq) {
      indexed.insert(a.agency());
      if (Status s = a.Next(); !s.ok()) return s;
    }
    if (!report.ok) continue;  // only count the rest

    if (seq != expected) {
      if (seq > expected) {
        fail(expected, "missing: entry " + std::to_string(expected) +
                           " is not in the log (deleted); the next stored entry is " +
                           std::to_string(seq));
      } else {
        fail(seq, "altered: unexpected seq " + std::to_string(seq) + " where " +
                      std::to_string(expected) + " was due");
      }
      continue;
    }
    if (orphan) {
      fail(*orphan, "column mismatch: audit_agencies has rows for seq " + std::to_string(*orphan) +
                        ", which has no entry");
      continue;
    }
    auto parsed = ParseAuditEntry(bytes);
    if (!parsed.ok()) {
      fail(seq, "altered: " + parsed.status().detail());
      continue;
    }
    if (parsed->seq != seq) {
      fail(seq, "reordered: the entry stored at seq " + std::to_string(seq) + " is entry " +
                    std::to_string(parsed->seq));
      continue;
    }
    const std::string h = Sha256(prev, bytes);
    if (h != stored_hash) {
      fail(seq,
           "altered: the entry's bytes or stored hash were changed (the chain hash does "
           "not match)");
      continue;
    }
    struct Column {
      const char* name;
      bool same;
    };
    for (const Column& c :
         {Column{"at_ms", r.Int(1) == parsed->at_ms}, Column{"actor", r.Text(2) == parsed->actor},
          Column{"action", r.Text(3) == parsed->action},
          Column{"record_id", r.Text(5) == parsed->record_id},
          Column{"message_id", r.Text(6) == parsed->message_id},
          Column{"purpose", r.Text(7) == parsed->purpose},
          Column{"decision", r.Text(8) == parsed->decision},
          Column{"key_id", r.IsNull(4) == parsed->details_hash.empty() &&
                               r.IsNull(11) == parsed->details_hash.empty()}}) {
      if (!c.same) {
        fail(seq,
             std::string("column mismatch: column ") + c.name + " differs from the entry's bytes");
        break;
      }
    }
    if (report.ok && indexed != AgenciesNamedBy(*parsed)) {
      fail(seq,
           "column mismatch: the audit_agencies rows differ from the agencies the entry "
           "names");
    }
    if (report.ok && options.subject_keys != nullptr && !r.IsNull(4)) {
      auto details = options.subject_keys->Open(r.Int(4), seq, r.Blob(11), parsed->details_hash,
                                                key_cache);
      if (!details.ok()) fail(seq, "details mismatch: " + details.status().detail());
    }
    if (!report.ok) continue;
    if (Status s = tree->AppendEntry(bytes); !s.ok()) return s;
    if (auto mismatch = checking.TakeMismatch()) {
      fail(seq, "merkle mismatch: " + *mismatch + ", at entry " + std::to_string(seq));
      continue;
    }
    if (auto it = roots.find(tree->size()); it != roots.end()) it->second = tree->Root();
    prev = h;
    ++expected;
  }
  if (report.ok && a.has()) {
    fail(a.seq(), "column mismatch: audit_agencies has rows for seq " + std::to_string(a.seq()) +
                      ", which has no entry");
  }
  report.head = Hex(last_hash);
  report.tree_size = static_cast<int64_t>(tree->size());
  report.root_hash = audit::HashHex(tree->Root());

  // Nothing in the node table that the entries did not make.
  const uint64_t n = tree->size();
  if (report.ok) {
    auto nodes = db.QueryInt("SELECT count(*) FROM merkle_nodes");
    if (!nodes.ok()) return nodes.status();
    const int64_t made = static_cast<int64_t>(audit::NodeCountForLeaves(n));
    // The leaves whose nodes end where the table ends; 0 when it ends part-way through one
    // leaf's nodes (then the count below differs).
    auto leaves = StoredLeafCount(db);
    if (!leaves.ok()) leaves = uint64_t{0};
    if (*leaves > n) {
      fail(static_cast<int64_t>(n) + 1,
           "truncated: the Merkle tree holds the leaves of " + std::to_string(*leaves) +
               " entries, but the log ends at entry " + std::to_string(n) + ": entries " +
               std::to_string(n + 1) + ".." + std::to_string(*leaves) + " were removed");
    } else if (*nodes != made) {
      fail(static_cast<int64_t>(n) + 1,
           "merkle mismatch: the node table holds " + std::to_string(*nodes - made) +
               " nodes that no entry made");
    }
  }

  // The signed heads.
  std::vector<Fault> faults;
  const auto* key = options.public_key;
  if (key != nullptr) report.public_key = audit::ToBase64(std::span<const uint8_t>(*key));
  const bool chain_ok = report.ok;
  std::map<uint64_t, std::vector<const StoredTreeHead*>> by_size;
  for (const StoredTreeHead& h : *heads) {
    ++report.heads_checked;
    const std::string which = "the tree head at position " + std::to_string(h.position) +
                              " (tree size " + std::to_string(h.head.tree_size) + ")";
    if (key != nullptr && !audit::VerifyTreeHead(h.head, *key).ok()) {
      faults.push_back({static_cast<int64_t>(h.head.tree_size),
                        {h.position, static_cast<int64_t>(h.head.tree_size),
                         "signature: " + which + " does not verify under the public key " +
                             report.public_key}});
      continue;  // a head that does not verify proves nothing about the log
    }
    by_size[h.head.tree_size].push_back(&h);
  }
  // The last head (by size) that matches the log, below each size: bounds a rewrite.
  std::map<uint64_t, int64_t> matching;  // tree size -> position of a matching head
  for (const auto& [size, group] : by_size) {
    const auto& root = roots[size];
    if (!root) continue;
    for (const StoredTreeHead* h : group) {
      if (h->head.root_hash == *root) matching.emplace(size, h->position);
    }
  }
  for (const auto& [size, group] : by_size) {
    const int64_t tsize = static_cast<int64_t>(size);
    std::set<audit::Hash> distinct;
    for (const StoredTreeHead* h : group) distinct.insert(h->head.root_hash);
    if (distinct.size() > 1) {
      std::string positions;
      for (const StoredTreeHead* h : group) {
        positions += (positions.empty() ? "" : ", ") + std::to_string(h->position);
      }
      std::string verdict;
      if (auto m = matching.find(size); m != matching.end()) {
        verdict = "; the log's entries match position " + std::to_string(m->second);
      } else if (roots[size]) {
        verdict = "; the log's entries match neither";
      }
      for (const StoredTreeHead* h : group) {
        faults.push_back({tsize,
                          {h->position, tsize,
                           "equivocation: the tree heads at positions " + positions +
                               " all sign tree size " + std::to_string(size) +
                               " with different roots" + verdict}});
      }
      continue;
    }
    for (const StoredTreeHead* h : group) {
      const std::string which = "the tree head at position " + std::to_string(h->position) +
                                " (tree size " + std::to_string(size) + ")";
      if (size > static_cast<uint64_t>(report.entries)) {
        if (!chain_ok) continue;  // everything after the first problem is suspect anyway
        faults.push_back({report.entries + 1,
                          {h->position, tsize,
                           "truncated: " + which + " was signed over " + std::to_string(size) +
                               " entries, but the log ends at entry " +
                               std::to_string(report.entries) + ": entries " +
                               std::to_string(report.entries + 1) + ".." + std::to_string(size) +
                               " were removed"}});
        continue;
      }
      const auto& root = roots[size];
      if (!root || *root == h->head.root_hash) continue;  // not recomputed, or matches
      int64_t lower = 0;
      std::string since = "no earlier head matches";
      for (auto m = matching.begin(); m != matching.end() && m->first < size; ++m) {
        lower = static_cast<int64_t>(m->first);
        since = "the head at position " + std::to_string(m->second) + " (tree size " +
                std::to_string(m->first) + ") still matches";
      }
      faults.push_back({lower + 1,
                        {h->position, tsize,
                         "root mismatch: " + which + " signed root " +
                             audit::HashHex(h->head.root_hash) + ", but the log's first " +
                             std::to_string(size) + " entries hash to " +
                             audit::HashHex(*root) + "; " + since +
                             ", so entries were changed among " + std::to_string(lower + 1) +
                             ".." + std::to_string(size)}});
    }
  }
  std::sort(faults.begin(), faults.end(), [](const Fault& x, const Fault& y) {
    return x.head.position < y.head.position;
  });
  if (!faults.empty()) {
    const Fault* first = &faults.front();
    for (const Fault& f : faults) {
      if (f.seq < first->seq) first = &f;
    }
    fail(first->seq, first->head.problem);
  }
  for (Fault& f : faults) report.head_faults.push_back(std::move(f.head));

  if (!heads->empty()) {
    const audit::SignedTreeHead& latest = heads->back().head;
    if (key != nullptr) {
      report.tree_head = audit::TreeHeadToJson(latest, *key);
    } else {
      report.tree_head = {{"tree_size", latest.tree_size},
                          {"root_hash", audit::HashHex(latest.root_hash)},
                          {"timestamp", latest.timestamp_ms},
                          {"signature", audit::ToBase64(std::span<const uint8_t>(latest.signature))},
                          {"public_key", nullptr}};
    }
  }
  return report;
}

}  // namespace safegate::core
