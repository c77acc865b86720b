// The subject index: which records are about the same child.
//
// Every stored record is linked to one subject, a random id ("sub_" + 32 hex) that carries no
// personal data. docs/subjects.md describes the rules; in short:
//
// - Exact identifiers link. An NHS number, a CSC id or a police id already in the index
//   names its subject, and the record's other identifiers join that subject.
// - A record whose identifiers are all new is scored against the subjects that share its
//   date of birth (or that date with day and month swapped) or its postcode, on normalised
//   names (case, accents, hyphens, spaces and apostrophes folded), date of birth and
//   postcode. A confident match links; an ambiguous one is held for review (table
//   link_reviews) and the record starts a subject of its own: nothing is ever merged on a
//   guess. Subjects holding another NHS number are never candidates for a record with one.
// - Identifiers that already belong to different subjects, or a second NHS number for one
//   subject, are held for review the same way.
//
// Names, dates of birth and postcodes are never stored in the clear: the index keeps keyed
// hashes (BLAKE2b under a link key, itself kept sealed under the store's at-rest key) for the
// lookups, and the normalised values sealed, for scoring near misses.
//
// Link decisions are audited: subject_linked (an identifier joined an existing subject, by an
// exact identifier or by score) and link_held (held for review). The references and subject
// ids involved go in the entry's sealed text (erased with the subject); its detail holds only
// the method, scores and evidence. Never names.
//
// Thread-safety: SubjectIndex is used on the store's writer thread only. The free functions
// are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/core/gateway.h"
#include "daemon/core/sqlite.h"
#include "record/record.h"
#include "record/status.h"

namespace safegate::core {

class AtRestKey;
class StoreContext;

// ---- Normalisation and scoring (pure) ---------------------------------------------------

// A name folded for comparison: Latin accents removed ("Zoë" -> "zoe", "Łucja" -> "lucja"),
// lower case, and hyphens, apostrophes, full stops and runs of spaces made one space;
// anything else that is not a letter is dropped. "  O'Brien-Smith " -> "o brien smith".
std::string NormaliseName(std::string_view name);

// What scoring compares, normalised. Empty strings mean "not known".
struct Traits {
  std::string given;        // the first forename ("mary jane" -> "mary")
  std::string given_all;    // every forename, spaces removed ("maryjane")
  std::string family;       // family name, spaces removed ("smith jones" -> "smithjones")
  std::string birth_date;   // YYYY-MM-DD
  std::string postcode;     // upper case, no space ("BD39AB")
  bool operator==(const Traits&) const = default;
};
Traits TraitsOf(const record::Subject& subject);

// The date with day and month swapped, if that is another valid date ("2012-03-07" ->
// "2012-07-03"); nullopt otherwise.
std::optional<std::string> SwapDayMonth(std::string_view date);

// Jaro-Winkler similarity of two strings, 0..1.
double JaroWinkler(std::string_view a, std::string_view b);

struct MatchScore {
  double score = 0;
  std::vector<std::string> evidence;  // e.g. "family name similar", never the names
};
// How strongly two sets of traits say "the same child". Weights (docs/subjects.md): family
// name same +4, similar +2, different -2; forename same +3, similar +1.5, initial only +0.5,
// different -4; date of birth same +4, day and month swapped +2, different -4; postcode
// same +2, same district +0.5, different -1. Unknown on either side counts 0.
MatchScore Score(const Traits& record, const Traits& candidate);

constexpr double kLinkScore = 11.0;  // at least this, and clear of the runner-up: link
constexpr double kHoldScore = 7.0;   // at least this but not a link: hold for review
constexpr double kLinkMargin = 3.0;  // how far ahead of the runner-up a link must be

// ---- The index --------------------------------------------------------------------------

class SubjectIndex {
 public:
  // Reads the link key from the meta table, or makes one (sealed under `key`) on first use.
  // Runs in autocommit at open, before the writer starts. REQUIRES: no transaction open.
  Status Load(Db& db, const AtRestKey& key);

  // Links a record just stored (by a push or an ingest) to a subject, and audits the
  // decision when there was one to make. REQUIRES: inside the record's job.
  Status Link(StoreContext& store, const Caller& caller, const record::Record& record,
              const std::string& record_id, const std::string& purpose, int64_t now);

  // The subject an identifier belongs to, if any.
  Result<std::optional<std::string>> SubjectOf(Db& db, const std::string& ref);

 private:
  std::string Key(std::string_view domain, std::string_view value) const;

  std::string link_key_;  // 32 bytes once loaded
};

// One held link, as `safegatectl subjects review` lists it. Ids, references, scores and the
// evidence that matched; never names.
struct LinkReview {
  std::string review_id;
  std::string record_id;
  std::string subject_ref;   // the held record's primary reference
  std::string subject_id;    // the subject the record is kept under meanwhile
  std::string reason;        // ambiguous_match | conflicting_identifiers | second_nhs_number
  nlohmann::json candidates; // [{"subject_id", "refs", "score", "evidence"}]
  int64_t created_at_ms = 0;
  nlohmann::json ToJson() const;
};

// Open (unresolved) reviews of a data directory, oldest first. Read-only; safe while the
// gateway runs; needs no key. kNotFound when there is no database.
Result<std::vector<LinkReview>> ListLinkReviews(const std::string& data_dir);

}  // namespace safegate::core
