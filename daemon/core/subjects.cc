// The subject index: exact identifiers link, near misses are scored, doubts are held for a
// person to decide. docs/subjects.md is the description; subjects.h the interface.
#include "daemon/core/subjects.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "daemon/core/crypto.h"
#include "daemon/core/schema.h"
#include "daemon/core/store_context.h"

namespace safegate::core {
namespace {

using nlohmann::json;

constexpr std::string_view kLinkKeyAd = "meta:link_key";
constexpr size_t kLinkKeyBytes = crypto_generichash_KEYBYTES;  // 32
constexpr int64_t kMaxCandidateRows = 1000;  // bound on one record's scoring work
constexpr size_t kMaxRefsShown = 10;

// ---- Name folding -----------------------------------------------------------------------

// U+00C0..U+00FF and U+0100..U+017F folded to ASCII letters. '*' marks a letter that folds
// to two (see TwoLetterFold); '-' a character that is not a letter (dropped).
constexpr std::string_view kLatin1Fold =
    "aaaaaa*ceeeeiiiidnooooo-ouuuuy**aaaaaa*ceeeeiiiidnooooo-ouuuuy*y";
constexpr std::string_view kLatinExtAFold =
    "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii**jjkkklllllll"
    "lllnnnnnnnnnoooooo**rrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs";
static_assert(kLatin1Fold.size() == 0x40 && kLatinExtAFold.size() == 0x80);

std::string_view TwoLetterFold(uint32_t cp) {
  switch (cp) {
    case 0xC6:
    case 0xE6:
      return "ae";
    case 0xDE:
    case 0xFE:
      return "th";
    case 0xDF:
      return "ss";
    case 0x132:
    case 0x133:
      return "ij";
    case 0x152:
    case 0x153:
      return "oe";
    default:
      return "";
  }
}

// Decodes one UTF-8 code point at s[i], advancing i; invalid bytes decode as U+FFFD.
uint32_t NextCodePoint(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) -> int {
    if (i + k >= s.size()) return -1;
    const auto b = static_cast<unsigned char>(s[i + k]);
    return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
  };
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  if ((b0 & 0xE0) == 0xC0) {
    const int c1 = cont(1);
    if (c1 >= 0) {
      i += 2;
      return ((b0 & 0x1Fu) << 6) | static_cast<uint32_t>(c1);
    }
  } else if ((b0 & 0xF0) == 0xE0) {
    const int c1 = cont(1), c2 = c1 >= 0 ? cont(2) : -1;
    if (c2 >= 0) {
      i += 3;
      return ((b0 & 0x0Fu) << 12) | (static_cast<uint32_t>(c1) << 6) | static_cast<uint32_t>(c2);
    }
  } else if ((b0 & 0xF8) == 0xF0) {
    const int c1 = cont(1), c2 = c1 >= 0 ? cont(2) : -1, c3 = c2 >= 0 ? cont(3) : -1;
    if (c3 >= 0) {
      i += 4;
      return ((b0 & 0x07u) << 18) | (static_cast<uint32_t>(c1) << 12) |
             (static_cast<uint32_t>(c2) << 6) | static_cast<uint32_t>(c3);
    }
  }
  ++i;
  return 0xFFFD;
}

bool IsSeparator(uint32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '-' || cp == '\'' || cp == '.' || cp == ',' ||
         cp == 0x2019 /* ’ */ || cp == 0x2018 || cp == 0x2010 || cp == 0x2011 ||
         cp == 0x2013 /* – */ || cp == 0xA0 /* no-break space */;
}

std::string WithoutSpaces(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != ' ') out += c;
  }
  return out;
}

std::string FirstToken(std::string_view s) {
  const size_t space = s.find(' ');
  return std::string(space == std::string_view::npos ? s : s.substr(0, space));
}

// ---- Storage helpers --------------------------------------------------------------------

std::string Joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) {
    out += p;
    out += '\x1f';
  }
  return out;
}

json TraitsJson(const Traits& t) {
  return {{"d", t.birth_date}, {"f", t.family},   {"g", t.given},
          {"ga", t.given_all}, {"p", t.postcode}};
}

Traits TraitsFromJson(const json& j) {
  Traits t;
  t.given = j.value("g", "");
  t.given_all = j.value("ga", "");
  t.family = j.value("f", "");
  t.birth_date = j.value("d", "");
  t.postcode = j.value("p", "");
  return t;
}

Status Run(Db& db, const char* sql, const std::vector<std::string>& text) {
  auto s = db.Prepare(sql);
  if (!s.ok()) return s.status();
  for (size_t i = 0; i < text.size(); ++i) (*s)->Bind(static_cast<int>(i + 1), text[i]);
  return (*s)->Run();
}

// Up to kMaxRefsShown references of a subject, the NHS number first.
Result<std::vector<std::string>> RefsOfSubject(Db& db, const std::string& subject_id) {
  auto q = db.Prepare(
      "SELECT ref FROM subject_index WHERE subject_id = ?1 "
      "ORDER BY (substr(ref, 1, 4) = 'nhs:') DESC, linked_at_ms, ref LIMIT 10");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  s.Bind(1, subject_id);
  std::vector<std::string> out;
  for (;;) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(s.Text(0));
  }
  s.Reset();
  return out;
}

Result<bool> SubjectHasNhs(Db& db, const std::string& subject_id) {
  auto q = db.Prepare(
      "SELECT 1 FROM subject_index WHERE subject_id = ?1 AND substr(ref, 1, 4) = 'nhs:' LIMIT 1");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, subject_id);
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  const bool has = *row;
  (*q)->Reset();
  return has;
}

Result<std::string> NewSubject(Db& db, int64_t now) {
  std::string id = TimeOrderedId("sub_", now);  // keeps the subject_id indexes appending
  auto ins = db.Prepare("INSERT INTO subjects(subject_id, created_at_ms) VALUES (?1, ?2)");
  if (!ins.ok()) return ins.status();
  (*ins)->Bind(1, id).Bind(2, now);
  if (Status s = (*ins)->Run(); !s.ok()) return s;
  return id;
}

Status AddRefs(Db& db, const std::string& subject_id, const std::vector<std::string>& refs,
               std::string_view method, const std::string& record_id, int64_t now) {
  for (const std::string& ref : refs) {
    auto ins = db.Prepare(
        "INSERT INTO subject_index(ref, subject_id, method, linked_at_ms, record_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!ins.ok()) return ins.status();
    (*ins)->Bind(1, ref).Bind(2, subject_id).Bind(3, method).Bind(4, now).Bind(5, record_id);
    if (Status s = (*ins)->Run(); !s.ok()) return s;
  }
  return Status::Ok();
}

Status AttachRecord(Db& db, const std::string& subject_id, const std::string& record_id) {
  return Run(db, "INSERT INTO record_subjects(record_id, subject_id) VALUES (?1, ?2)",
             {record_id, subject_id});
}

}  // namespace

// ---- Pure functions ---------------------------------------------------------------------

std::string NormaliseName(std::string_view name) {
  std::string out;
  bool pending_space = false;
  size_t i = 0;
  while (i < name.size()) {
    const uint32_t cp = NextCodePoint(name, i);
    std::string_view folded;
    char one = 0;
    if (cp >= 'A' && cp <= 'Z') {
      one = static_cast<char>(cp - 'A' + 'a');
    } else if (cp >= 'a' && cp <= 'z') {
      one = static_cast<char>(cp);
    } else if (cp >= 0xC0 && cp <= 0xFF) {
      one = kLatin1Fold[cp - 0xC0];
    } else if (cp >= 0x100 && cp <= 0x17F) {
      one = kLatinExtAFold[cp - 0x100];
    } else if (IsSeparator(cp)) {
      pending_space = !out.empty();
      continue;
    } else {
      continue;  // combining accents (U+0300..U+036F), digits, symbols: not part of a name
    }
    if (one == '*') {
      folded = TwoLetterFold(cp);
    } else if (one == '-') {
      continue;
    }
    if (pending_space) {
      out += ' ';
      pending_space = false;
    }
    if (!folded.empty()) {
      out += folded;
    } else {
      out += one;
    }
  }
  return out;
}

Traits TraitsOf(const record::Subject& subject) {
  Traits t;
  if (subject.given_name) {
    const std::string given = NormaliseName(*subject.given_name);
    t.given = FirstToken(given);
    t.given_all = WithoutSpaces(given);
  }
  if (subject.family_name) t.family = WithoutSpaces(NormaliseName(*subject.family_name));
  if (subject.birth_date) t.birth_date = *subject.birth_date;
  if (subject.postcode) {
    if (auto pc = record::NormalisePostcode(*subject.postcode)) t.postcode = WithoutSpaces(*pc);
  }
  return t;
}

std::optional<std::string> SwapDayMonth(std::string_view date) {
  if (!record::IsValidDate(date)) return std::nullopt;
  std::string swapped = std::string(date.substr(0, 5)) + std::string(date.substr(8, 2)) + "-" +
                        std::string(date.substr(5, 2));
  if (swapped == date || !record::IsValidDate(swapped)) return std::nullopt;
  return swapped;
}

double JaroWinkler(std::string_view a, std::string_view b) {
  if (a.empty() && b.empty()) return 1.0;
  if (a.empty() || b.empty()) return 0.0;
  const size_t window = std::max<size_t>(a.size(), b.size()) / 2;
  const size_t range = window > 0 ? window - 1 : 0;
  std::vector<bool> a_match(a.size(), false), b_match(b.size(), false);
  size_t matches = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const size_t lo = i > range ? i - range : 0;
    const size_t hi = std::min(b.size(), i + range + 1);
    for (size_t j = lo; j < hi; ++j) {
      if (b_match[j] || a[i] != b[j]) continue;
      a_match[i] = b_match[j] = true;
      ++matches;
      break;
    }
  }
  if (matches == 0) return 0.0;
  size_t transpositions = 0;
  for (size_t i = 0, j = 0; i < a.size(); ++i) {
    if (!a_match[i]) continue;
    while (!b_match[j]) ++j;
    if (a[i] != b[j]) ++transpositions;
    ++j;
  }
  const double m = static_cast<double>(matches);
  const double jaro = (m / static_cast<double>(a.size()) + m / static_cast<double>(b.size()) +
                       (m - static_cast<double>(transpositions) / 2.0) / m) /
                      3.0;
  size_t prefix = 0;
  while (prefix < 4 && prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
  return jaro + static_cast<double>(prefix) * 0.1 * (1.0 - jaro);
}

MatchScore Score(const Traits& r, const Traits& c) {
  constexpr double kSimilar = 0.88;
  MatchScore out;
  auto add = [&out](double w, const char* why) {
    out.score += w;
    out.evidence.emplace_back(why);
  };
  if (!r.family.empty() && !c.family.empty()) {
    if (r.family == c.family) {
      add(4, "family name same");
    } else if (JaroWinkler(r.family, c.family) >= kSimilar) {
      add(2, "family name similar");
    } else {
      add(-2, "family name different");
    }
  }
  if (!r.given.empty() && !c.given.empty()) {
    if (r.given == c.given || r.given_all == c.given_all) {
      add(3, "forename same");
    } else if (JaroWinkler(r.given, c.given) >= kSimilar ||
               JaroWinkler(r.given_all, c.given_all) >= kSimilar) {
      add(1.5, "forename similar");
    } else if ((r.given.size() == 1 || c.given.size() == 1) && r.given[0] == c.given[0]) {
      add(0.5, "forename initial same");
    } else {
      add(-4, "forename different");
    }
  }
  if (!r.birth_date.empty() && !c.birth_date.empty()) {
    if (r.birth_date == c.birth_date) {
      add(4, "date of birth same");
    } else if (SwapDayMonth(r.birth_date) == c.birth_date) {
      add(2, "date of birth day and month swapped");
    } else {
      add(-4, "date of birth different");
    }
  }
  if (!r.postcode.empty() && !c.postcode.empty()) {
    // The outward code (district) is the postcode less its last three characters.
    auto outward = [](const std::string& pc) { return pc.substr(0, pc.size() - 3); };
    if (r.postcode == c.postcode) {
      add(2, "postcode same");
    } else if (r.postcode.size() > 3 && c.postcode.size() > 3 &&
               outward(r.postcode) == outward(c.postcode)) {
      add(0.5, "postcode district same");
    } else {
      add(-1, "postcode different");
    }
  }
  return out;
}

// ---- SubjectIndex -----------------------------------------------------------------------

Status SubjectIndex::Load(Db& db, const AtRestKey& key) {
  auto q = db.Prepare("SELECT value FROM meta WHERE key = 'link_key'");
  if (!q.ok()) return q.status();
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    const std::string stored = (*q)->Blob(0);
    (*q)->Reset();
    if (stored.size() < kNonceBytes) return Status::Internal("store: the link key is malformed");
    auto plain = key.Unseal(stored.substr(0, kNonceBytes), stored.substr(kNonceBytes), kLinkKeyAd);
    if (!plain.ok() || plain->size() != kLinkKeyBytes) {
      return Status::Internal("store: the subject link key does not open with the store key");
    }
    link_key_ = std::move(*plain);
    return Status::Ok();
  }
  (*q)->Reset();
  std::string fresh(kLinkKeyBytes, '\0');
  randombytes_buf(fresh.data(), fresh.size());
  auto sealed = key.Seal(fresh, kLinkKeyAd);
  sodium_memzero(fresh.data(), fresh.size());
  if (!sealed.ok()) return sealed.status();
  auto ins = db.Prepare("INSERT INTO meta(key, value) VALUES ('link_key', ?1)");
  if (!ins.ok()) return ins.status();
  (*ins)->BindBlob(1, sealed->nonce + sealed->ciphertext);
  if (Status s = (*ins)->Run(); !s.ok()) return s;
  // Read it back through the same path, so the key in use is the one on disk.
  return Load(db, key);
}

std::string SubjectIndex::Key(std::string_view domain, std::string_view value) const {
  std::string input(domain);
  input += '\0';
  input += value;
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size(), reinterpret_cast<const unsigned char*>(link_key_.data()),
                     link_key_.size());
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

Result<std::optional<std::string>> SubjectIndex::SubjectOf(Db& db, const std::string& ref) {
  auto q = db.Prepare("SELECT subject_id FROM subject_index WHERE ref = ?1");
  if (!q.ok()) return q.status();
  (*q)->Bind(1, ref);
  auto row = (*q)->Step();
  if (!row.ok()) return row.status();
  std::optional<std::string> out;
  if (*row) out = (*q)->Text(0);
  (*q)->Reset();
  return out;
}

Status SubjectIndex::Link(StoreContext& store, const Caller& caller, const record::Record& record,
                          const std::string& record_id, const std::string& purpose,
                          int64_t now) {
  if (link_key_.size() != kLinkKeyBytes) {
    return Status::Internal("store: the subject index was not loaded");
  }
  Db& db = store.StoreDb();
  const std::string primary = record::PrimaryRef(record.subject);
  const std::string nhs_ref =
      record.subject.nhs_number ? "nhs:" + *record.subject.nhs_number : std::string();

  // Which of the record's identifiers the index already knows, and under which subjects.
  std::vector<std::string> unknown;
  std::vector<std::pair<std::string, std::string>> known;  // ref, subject
  std::set<std::string> known_subjects;
  for (const record::SubjectRef& r : record::RefsOf(record.subject)) {
    const std::string ref = r.ToString();
    auto subject = SubjectOf(db, ref);
    if (!subject.ok()) return subject.status();
    if (*subject) {
      known.emplace_back(ref, **subject);
      known_subjects.insert(**subject);
    } else {
      unknown.push_back(ref);
    }
  }
  const Traits traits = TraitsOf(record.subject);

  auto entry = [&](std::string action) {
    AuditEntry e;
    e.at_ms = now;
    e.actor = caller.agency;
    e.action = std::move(action);
    e.subject = primary;
    e.record_id = record_id;
    e.purpose = purpose;
    return e;
  };

  // The names, date of birth and postcode a subject has been seen with: keyed hashes for the
  // candidate lookups, the values sealed for scoring.
  // `fresh`: the subject was made by this record, so it has no traits yet.
  auto add_traits = [&](const std::string& subject_id, bool fresh = false) -> Status {
    if (traits.family.empty() && traits.given.empty()) return Status::Ok();  // cannot score
    const std::string fingerprint =
        Key("traits", Joined({traits.given, traits.given_all, traits.family, traits.birth_date,
                              traits.postcode}));
    // Seen before with these very traits (the usual case for a child's second and later
    // records): the insert below would be ignored, so the sealing is not done for nothing.
    if (!fresh) {
      auto seen = db.Prepare(
          "SELECT 1 FROM subject_traits WHERE subject_id = ?1 AND fingerprint = ?2");
      if (!seen.ok()) return seen.status();
      (*seen)->Bind(1, subject_id).BindBlob(2, fingerprint);
      auto row = (*seen)->Step();
      if (!row.ok()) return row.status();
      (*seen)->Reset();
      if (*row) return Status::Ok();
    }
    const std::string ad = "subject_traits:" + subject_id + ":" + Hex(fingerprint);
    auto sealed = store.StoreKey().Seal(record::CanonicalJson(TraitsJson(traits)), ad);
    if (!sealed.ok()) return sealed.status();
    auto ins = db.Prepare(
        "INSERT OR IGNORE INTO subject_traits(subject_id, fingerprint, dob_key, postcode_key, "
        "nonce, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!ins.ok()) return ins.status();
    Stmt& s = **ins;
    s.Bind(1, subject_id).BindBlob(2, fingerprint);
    if (traits.birth_date.empty()) {
      s.BindNull(3);
    } else {
      s.BindBlob(3, Key("dob", traits.birth_date));
    }
    if (traits.postcode.empty()) {
      s.BindNull(4);
    } else {
      s.BindBlob(4, Key("postcode", traits.postcode));
    }
    s.BindBlob(5, sealed->nonce).BindBlob(6, sealed->ciphertext);
    return s.Run();
  };

  // Held for review: the record keeps a subject of its own (with its new identifiers) until a
  // person decides; its known identifiers stay where they are.
  auto hold = [&](std::string_view reason, json candidates) -> Status {
    auto held = NewSubject(db, now);
    if (!held.ok()) return held.status();
    if (Status s = AddRefs(db, *held, unknown, "held", record_id, now); !s.ok()) return s;
    if (Status s = AttachRecord(db, *held, record_id); !s.ok()) return s;
    if (Status s = add_traits(*held, /*fresh=*/true); !s.ok()) return s;
    const std::string review_id = TimeOrderedId("lrv_", now);
    auto ins = db.Prepare(
        "INSERT INTO link_reviews(review_id, record_id, subject_id, subject_ref, reason, "
        "candidates_json, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!ins.ok()) return ins.status();
    (*ins)->Bind(1, review_id).Bind(2, record_id).Bind(3, *held).Bind(4, primary);
    (*ins)->Bind(5, reason).Bind(6, record::CanonicalJson(candidates)).Bind(7, now);
    if (Status s = (*ins)->Run(); !s.ok()) return s;
    // References and subject ids go in the entry's sealed text (erased with the subject);
    // the detail keeps what holds no identifier: the scores and the evidence.
    AuditEntry e = entry("link_held");
    e.reasons = {std::string(reason)};
    json scores = json::array(), sealed = json::array();
    for (const json& c : candidates) {
      json s = json::object();
      if (c.contains("score")) s["score"] = c["score"];
      if (c.contains("evidence")) s["evidence"] = c["evidence"];
      scores.push_back(std::move(s));
      sealed.push_back({{"subject_id", c["subject_id"]}, {"refs", c["refs"]}});
    }
    e.detail = {{"review_id", review_id}, {"reason", reason}, {"candidates", std::move(scores)}};
    e.text = record::CanonicalJson({{"subject_id", *held}, {"candidates", std::move(sealed)}});
    return store.StoreAppend(e);
  };

  auto candidate_json = [&](const std::string& subject_id, const MatchScore* score) -> Result<json> {
    auto refs = RefsOfSubject(db, subject_id);
    if (!refs.ok()) return refs.status();
    json c = {{"subject_id", subject_id}, {"refs", *refs}};
    if (score != nullptr) {
      c["score"] = score->score;
      c["evidence"] = score->evidence;
    }
    return c;
  };

  if (known_subjects.size() > 1) {
    json candidates = json::array();
    for (const std::string& s : known_subjects) {
      auto c = candidate_json(s, nullptr);
      if (!c.ok()) return c.status();
      candidates.push_back(std::move(*c));
    }
    return hold("conflicting_identifiers", std::move(candidates));
  }

  if (known_subjects.size() == 1) {
    const std::string& subject_id = *known_subjects.begin();
    // One child has one NHS number: a second one for the same subject is for a person to
    // look at, not to add.
    if (!nhs_ref.empty() &&
        std::find(unknown.begin(), unknown.end(), nhs_ref) != unknown.end()) {
      auto has = SubjectHasNhs(db, subject_id);
      if (!has.ok()) return has.status();
      if (*has) {
        auto c = candidate_json(subject_id, nullptr);
        if (!c.ok()) return c.status();
        return hold("second_nhs_number", json::array({std::move(*c)}));
      }
    }
    if (Status s = AddRefs(db, subject_id, unknown, "exact", record_id, now); !s.ok()) return s;
    if (Status s = AttachRecord(db, subject_id, record_id); !s.ok()) return s;
    if (Status s = add_traits(subject_id); !s.ok()) return s;
    if (unknown.empty()) return Status::Ok();  // nothing new was decided
    AuditEntry e = entry("subject_linked");
    e.detail = {{"method", "exact"}, {"refs_added", static_cast<int64_t>(unknown.size())}};
    e.text = record::CanonicalJson(
        {{"subject_id", subject_id}, {"via", known.front().first}, {"refs_added", unknown}});
    return store.StoreAppend(e);
  }

  // Every identifier is new: score against subjects seen with this date of birth (or with
  // its day and month swapped) or at this postcode.
  struct Candidate {
    std::string subject_id;
    MatchScore best;
  };
  std::map<std::string, Candidate> candidates;
  const bool can_score =
      (!traits.family.empty() || !traits.given.empty()) &&
      (!traits.birth_date.empty() || !traits.postcode.empty());
  if (can_score) {
    const std::string dob_key = traits.birth_date.empty() ? "" : Key("dob", traits.birth_date);
    const auto swapped = SwapDayMonth(traits.birth_date);
    const std::string swapped_key = swapped ? Key("dob", *swapped) : dob_key;
    const std::string pc_key = traits.postcode.empty() ? "" : Key("postcode", traits.postcode);
    // Two bounded index lookups rather than one UNION: a UNION would gather every row on both
    // sides before the LIMIT applied, so a common date of birth or postcode would make each
    // push scan the whole table.
    struct Row {
      std::string subject_id, fingerprint, nonce, sealed;
    };
    std::vector<Row> rows;
    std::set<std::pair<std::string, std::string>> seen;  // (subject_id, fingerprint)
    auto gather = [&](const char* sql, const std::vector<std::string>& keys) -> Status {
      auto q = db.Prepare(sql);
      if (!q.ok()) return q.status();
      Stmt& s = **q;
      int i = 1;
      for (const std::string& k : keys) s.BindBlob(i++, k);
      s.Bind(i, kMaxCandidateRows);
      for (;;) {
        auto row = s.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        Row r{s.Text(0), s.Blob(1), s.Blob(2), s.Blob(3)};
        if (seen.emplace(r.subject_id, r.fingerprint).second) rows.push_back(std::move(r));
      }
      s.Reset();
      return Status::Ok();
    };
    if (!dob_key.empty()) {
      Status st = gather(
          "SELECT subject_id, fingerprint, nonce, sealed FROM subject_traits "
          "WHERE dob_key IN (?1, ?2) LIMIT ?3",
          {dob_key, swapped_key});
      if (!st.ok()) return st;
    }
    if (!pc_key.empty()) {
      Status st = gather(
          "SELECT subject_id, fingerprint, nonce, sealed FROM subject_traits "
          "WHERE postcode_key = ?1 LIMIT ?2",
          {pc_key});
      if (!st.ok()) return st;
    }
    std::map<std::string, bool> excluded;  // subject -> holds another NHS number
    for (const Row& r : rows) {
      if (!nhs_ref.empty()) {
        auto it = excluded.find(r.subject_id);
        if (it == excluded.end()) {
          auto has = SubjectHasNhs(db, r.subject_id);
          if (!has.ok()) return has.status();
          it = excluded.emplace(r.subject_id, *has).first;
        }
        if (it->second) continue;
      }
      const std::string ad = "subject_traits:" + r.subject_id + ":" + Hex(r.fingerprint);
      auto plain = store.StoreKey().Unseal(r.nonce, r.sealed, ad);
      if (!plain.ok()) {
        return Status::Internal("store: sealed subject traits do not open: " +
                                plain.status().detail());
      }
      json j = json::parse(*plain, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object()) return Status::Internal("store: sealed subject traits are not JSON");
      MatchScore score = Score(traits, TraitsFromJson(j));
      auto [it, inserted] = candidates.try_emplace(r.subject_id, Candidate{r.subject_id, score});
      if (!inserted && score.score > it->second.best.score) it->second.best = std::move(score);
    }
  }
  std::vector<const Candidate*> ranked;
  for (const auto& [id, c] : candidates) ranked.push_back(&c);
  std::sort(ranked.begin(), ranked.end(), [](const Candidate* a, const Candidate* b) {
    return a->best.score != b->best.score ? a->best.score > b->best.score
                                          : a->subject_id < b->subject_id;
  });

  if (!ranked.empty() && ranked[0]->best.score >= kHoldScore) {
    const Candidate& best = *ranked[0];
    const double runner_up = ranked.size() > 1 ? ranked[1]->best.score : -1e9;
    if (best.best.score >= kLinkScore && best.best.score - runner_up >= kLinkMargin) {
      auto matched = RefsOfSubject(db, best.subject_id);
      if (!matched.ok()) return matched.status();
      if (Status s = AddRefs(db, best.subject_id, unknown, "score", record_id, now); !s.ok())
        return s;
      if (Status s = AttachRecord(db, best.subject_id, record_id); !s.ok()) return s;
      if (Status s = add_traits(best.subject_id); !s.ok()) return s;
      AuditEntry e = entry("subject_linked");
      e.detail = {{"method", "score"},
                  {"score", best.best.score},
                  {"evidence", best.best.evidence},
                  {"refs_added", static_cast<int64_t>(unknown.size())}};
      e.text = record::CanonicalJson(
          {{"subject_id", best.subject_id},
           {"via", matched->empty() ? json("") : json(matched->front())},
           {"refs_added", unknown}});
      return store.StoreAppend(e);
    }
    json held = json::array();
    for (const Candidate* c : ranked) {
      if (c->best.score < kHoldScore || held.size() >= 5) break;
      auto cj = candidate_json(c->subject_id, &c->best);
      if (!cj.ok()) return cj.status();
      held.push_back(std::move(*cj));
    }
    return hold("ambiguous_match", std::move(held));
  }

  // Nobody like this child is known yet: a new subject, which is not a decision to audit
  // (the record_accepted entry already names the reference).
  auto fresh = NewSubject(db, now);
  if (!fresh.ok()) return fresh.status();
  if (Status s = AddRefs(db, *fresh, unknown, "new", record_id, now); !s.ok()) return s;
  if (Status s = AttachRecord(db, *fresh, record_id); !s.ok()) return s;
  return add_traits(*fresh, /*fresh=*/true);
}

// ---- Reviews ----------------------------------------------------------------------------

json LinkReview::ToJson() const {
  return {{"review_id", review_id},   {"record_id", record_id}, {"subject", subject_ref},
          {"subject_id", subject_id}, {"reason", reason},       {"candidates", candidates},
          {"created_at_ms", created_at_ms}};
}

Result<std::vector<LinkReview>> ListLinkReviews(const std::string& data_dir) {
  const std::string db_path = (std::filesystem::path(data_dir) / "safegate.db").string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db_path, ec)) {
    return Status::NotFound("no safegate database at " + db_path);
  }
  auto db = Db::Open(db_path, Db::Mode::kReadOnly);
  if (!db.ok()) return db.status();
  (void)(*db)->Exec("PRAGMA busy_timeout=5000");
  if (Status s = CheckSchemaVersion(**db); !s.ok()) return s;
  auto exists = (*db)->QueryInt(
      "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'link_reviews'");
  if (!exists.ok()) return exists.status();
  std::vector<LinkReview> out;
  if (*exists == 0) return out;
  auto q = (*db)->PrepareOnce(
      "SELECT review_id, record_id, subject_ref, subject_id, reason, candidates_json, "
      "created_at_ms FROM link_reviews WHERE resolved_at_ms IS NULL "
      "ORDER BY created_at_ms, review_id");
  if (!q.ok()) return q.status();
  Stmt& s = **q;
  for (;;) {
    auto row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    LinkReview r;
    r.review_id = s.Text(0);
    r.record_id = s.Text(1);
    r.subject_ref = s.Text(2);
    r.subject_id = s.Text(3);
    r.reason = s.Text(4);
    r.candidates = json::parse(s.Text(5), nullptr, /*allow_exceptions=*/false);
    if (r.candidates.is_discarded()) r.candidates = json::array();
    r.created_at_ms = s.Int(6);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace safegate::core
