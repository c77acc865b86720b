#include "daemon/core/schema.h"

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "daemon/audit/merkle.h"

namespace safegate::core {
namespace {

// Version 1: records, subject references, mailboxes, the audit chain.
// Column meanings are in docs/store.md; the audit entry format is in docs/audit-log.md.
constexpr std::string_view kV1 = R"sql(
CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE records(
  record_id        TEXT PRIMARY KEY,
  source_agency    TEXT NOT NULL,
  source_record_id TEXT NOT NULL,
  source_version   INTEGER NOT NULL,
  content_hash     BLOB NOT NULL,
  kind             TEXT NOT NULL,
  subject_ref      TEXT NOT NULL,
  purpose          TEXT NOT NULL,
  created_at_ms    INTEGER NOT NULL,
  nonce            BLOB NOT NULL,
  ciphertext       BLOB NOT NULL,
  response_json    TEXT NOT NULL,
  UNIQUE(source_agency, source_record_id, source_version)
);

CREATE TABLE subject_refs(
  ref       TEXT NOT NULL,
  record_id TEXT NOT NULL REFERENCES records(record_id),
  PRIMARY KEY(ref, record_id)
) WITHOUT ROWID;
CREATE INDEX subject_refs_record ON subject_refs(record_id);

CREATE TABLE messages(
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id        TEXT NOT NULL UNIQUE,
  type              TEXT NOT NULL CHECK(type IN ('record', 'notice')),
  recipient         TEXT NOT NULL,
  sender            TEXT NOT NULL,
  record_id         TEXT REFERENCES records(record_id),
  purpose           TEXT NOT NULL,
  decision          TEXT NOT NULL DEFAULT '',
  reasons_json      TEXT NOT NULL DEFAULT '[]',
  view_nonce        BLOB,
  view_ciphertext   BLOB,
  delivered_at_ms   INTEGER NOT NULL,
  deadline_at_ms    INTEGER,
  next_notice_at_ms INTEGER,
  notices_sent      INTEGER NOT NULL DEFAULT 0,
  acked_at_ms       INTEGER,
  expired_at_ms     INTEGER,
  notice_json       TEXT,
  CHECK(type = 'notice' OR record_id IS NOT NULL),
  CHECK(type = 'record' OR notice_json IS NOT NULL)
);
CREATE INDEX messages_open ON messages(recipient, seq)
  WHERE acked_at_ms IS NULL AND expired_at_ms IS NULL;
CREATE INDEX messages_due ON messages(next_notice_at_ms)
  WHERE type = 'record' AND acked_at_ms IS NULL AND expired_at_ms IS NULL;
CREATE INDEX messages_record ON messages(record_id, recipient);

CREATE TABLE audit(
  seq        INTEGER PRIMARY KEY,
  at_ms      INTEGER NOT NULL,
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  subject    TEXT NOT NULL,
  record_id  TEXT NOT NULL,
  message_id TEXT NOT NULL,
  purpose    TEXT NOT NULL,
  decision   TEXT NOT NULL,
  entry      BLOB NOT NULL,
  hash       BLOB NOT NULL
);
CREATE INDEX audit_subject ON audit(subject, seq);
CREATE INDEX audit_actor ON audit(actor, seq);
CREATE INDEX audit_action ON audit(action, seq);
CREATE INDEX audit_at ON audit(at_ms, seq);

-- Every agency an entry names (its actor, and the recipient(s) and notified agencies in its
-- detail), so "what concerned agency X" is an index lookup. Derived from the entry bytes and
-- checked against them by verification.
CREATE TABLE audit_agencies(
  agency TEXT NOT NULL,
  seq    INTEGER NOT NULL,
  PRIMARY KEY(agency, seq)
) WITHOUT ROWID;
CREATE INDEX audit_agencies_seq ON audit_agencies(seq);

-- The audit log is append-only. These triggers stop the program itself (or a careless
-- operator) from rewriting it; a deliberate attacker can drop them, which is what the hash
-- chain detects.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_agencies_no_update BEFORE UPDATE ON audit_agencies
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_agencies_no_delete BEFORE DELETE ON audit_agencies
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

// Version 2: the subject index (docs/subjects.md). Names, dates of birth and postcodes appear
// only as keyed hashes (dob_key, postcode_key, fingerprint) and sealed (subject_traits.sealed).
constexpr std::string_view kV2Subjects = R"sql(
CREATE TABLE subjects(
  subject_id    TEXT PRIMARY KEY,
  created_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE subject_index(
  ref          TEXT PRIMARY KEY,
  subject_id   TEXT NOT NULL REFERENCES subjects(subject_id),
  method       TEXT NOT NULL CHECK(method IN ('new', 'exact', 'score', 'held')),
  linked_at_ms INTEGER NOT NULL,
  record_id    TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX subject_index_subject ON subject_index(subject_id);

CREATE TABLE record_subjects(
  record_id  TEXT PRIMARY KEY REFERENCES records(record_id),
  subject_id TEXT NOT NULL REFERENCES subjects(subject_id)
) WITHOUT ROWID;
CREATE INDEX record_subjects_subject ON record_subjects(subject_id);

CREATE TABLE subject_traits(
  trait_id     INTEGER PRIMARY KEY,
  subject_id   TEXT NOT NULL REFERENCES subjects(subject_id),
  fingerprint  BLOB NOT NULL,
  dob_key      BLOB,
  postcode_key BLOB,
  nonce        BLOB NOT NULL,
  sealed       BLOB NOT NULL,
  UNIQUE(subject_id, fingerprint)
);
CREATE INDEX subject_traits_dob ON subject_traits(dob_key);
CREATE INDEX subject_traits_postcode ON subject_traits(postcode_key);

CREATE TABLE link_reviews(
  review_id       TEXT PRIMARY KEY,
  record_id       TEXT NOT NULL REFERENCES records(record_id),
  subject_id      TEXT NOT NULL REFERENCES subjects(subject_id),
  subject_ref     TEXT NOT NULL,
  reason          TEXT NOT NULL,
  candidates_json TEXT NOT NULL,
  created_at_ms   INTEGER NOT NULL,
  resolved_at_ms  INTEGER,
  resolution      TEXT
) WITHOUT ROWID;
CREATE INDEX link_reviews_open ON link_reviews(created_at_ms) WHERE resolved_at_ms IS NULL;
)sql";

// Version 3: the sharing policy (docs/policy.md, "In the gateway"). Consent statements, found
// by the blind index of their subject reference (the reference, who recorded it and the
// evidence are sealed); retention deadlines and deleted bodies of records and copies.
constexpr std::string_view kV3Policy = R"sql(
CREATE TABLE consents(
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  consent_id     TEXT NOT NULL UNIQUE,
  subject_key    BLOB NOT NULL,
  purpose        TEXT NOT NULL,
  status         TEXT NOT NULL CHECK(status IN ('given', 'refused', 'withdrawn')),
  recorded_at_ms INTEGER NOT NULL,
  agency         TEXT NOT NULL,
  stored_at_ms   INTEGER NOT NULL,
  nonce          BLOB NOT NULL,
  sealed         BLOB NOT NULL
);
CREATE INDEX consents_subject ON consents(subject_key, purpose);

ALTER TABLE records ADD COLUMN retain_until_ms INTEGER;
ALTER TABLE records ADD COLUMN body_deleted_at_ms INTEGER;
ALTER TABLE messages ADD COLUMN retain_until_ms INTEGER;
ALTER TABLE messages ADD COLUMN body_deleted_at_ms INTEGER;
CREATE INDEX records_retention ON records(retain_until_ms) WHERE body_deleted_at_ms IS NULL;
CREATE INDEX messages_retention ON messages(retain_until_ms)
  WHERE body_deleted_at_ms IS NULL AND view_ciphertext IS NOT NULL;
CREATE INDEX records_created ON records(created_at_ms);
)sql";

// Version 4: the audit log's entries carry no identifying details (entry bytes v2: the
// subject reference is sealed in per-entry details under a per-subject key, and the entry
// commits to them by hash), the Merkle tree over the entries, and signed tree heads.
// docs/audit-log.md and docs/audit-merkle.md describe them. Version 1's audit table held
// subject references in the clear and in its hashed bytes; those entries cannot be rewritten
// without breaking the chain, so a database with audit entries from before version 4 is
// refused rather than migrated (no release ever shipped them).
constexpr std::string_view kV4Precondition = "SELECT count(*) FROM audit";
constexpr std::string_view kV4Refusal =
    "its audit log was written in entry format v1 (subject references in the clear), which "
    "this safegate does not carry forward; keep that database with the safegate that wrote "
    "it, and start this one on an empty data_dir";
constexpr std::string_view kV4Audit = R"sql(
DROP TABLE audit;
DROP TABLE audit_agencies;

-- One key per subject reference, sealed under the at-rest key. `blind` is the keyed blind
-- index of the reference (BLAKE2b under the blind-index key), the only way to find the key
-- from a reference. Erasure sets blind, nonce and sealed_key to NULL: the key is destroyed
-- and the reference can no longer be linked to the entries sealed under it.
CREATE TABLE subject_keys(
  key_id        INTEGER PRIMARY KEY AUTOINCREMENT,
  blind         BLOB UNIQUE,
  nonce         BLOB,
  sealed_key    BLOB,
  created_at_ms INTEGER NOT NULL,
  erased_at_ms  INTEGER,
  erased_seq    INTEGER,
  CHECK((erased_at_ms IS NULL) = (sealed_key IS NOT NULL)),
  CHECK(erased_at_ms IS NULL OR (blind IS NULL AND nonce IS NULL))
);

CREATE TABLE audit(
  seq        INTEGER PRIMARY KEY,
  at_ms      INTEGER NOT NULL,
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  key_id     INTEGER REFERENCES subject_keys(key_id),
  record_id  TEXT NOT NULL,
  message_id TEXT NOT NULL,
  purpose    TEXT NOT NULL,
  decision   TEXT NOT NULL,
  entry      BLOB NOT NULL,
  hash       BLOB NOT NULL,
  details    BLOB,
  CHECK((key_id IS NULL) = (details IS NULL))
);
CREATE INDEX audit_key ON audit(key_id, seq) WHERE key_id IS NOT NULL;
CREATE INDEX audit_actor ON audit(actor, seq);
CREATE INDEX audit_action ON audit(action, seq);
CREATE INDEX audit_at ON audit(at_ms, seq);

CREATE TABLE audit_agencies(
  agency TEXT NOT NULL,
  seq    INTEGER NOT NULL,
  PRIMARY KEY(agency, seq)
) WITHOUT ROWID;
CREATE INDEX audit_agencies_seq ON audit_agencies(seq);

-- Node (level, idx) is the hash of the complete subtree of leaves [idx*2^level,
-- (idx+1)*2^level); level 0 holds the leaf hashes. Written in the same transaction as the
-- entries they hash.
CREATE TABLE merkle_nodes(
  level INTEGER NOT NULL,
  idx   INTEGER NOT NULL,
  hash  BLOB NOT NULL,
  PRIMARY KEY(level, idx)
) WITHOUT ROWID;

-- Signed tree heads in the order they were signed; `position` is how verification reports
-- them.
CREATE TABLE tree_heads(
  position     INTEGER PRIMARY KEY AUTOINCREMENT,
  tree_size    INTEGER NOT NULL,
  timestamp_ms INTEGER NOT NULL,
  root_hash    BLOB NOT NULL,
  signature    BLOB NOT NULL
);
CREATE INDEX tree_heads_size ON tree_heads(tree_size);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_agencies_no_update BEFORE UPDATE ON audit_agencies
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_agencies_no_delete BEFORE DELETE ON audit_agencies
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER merkle_nodes_no_update BEFORE UPDATE ON merkle_nodes
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER tree_heads_no_update BEFORE UPDATE ON tree_heads
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER tree_heads_no_delete BEFORE DELETE ON tree_heads
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

// Version 5: out-of-area transfers (docs/transfers.md, "Delivery"). Each gateway's copy of a
// transfer, sealed at rest (TransferToStoredJson; the subject reference, note and names are
// inside), with the columns the sweep and the API look up; the outbox of messages already
// sealed to the peer gateway, sent per peer in seq order; and every message received from a
// peer, by (transfer_id, message_id), for exactly-once application and as evidence (the
// signed payload and signature, sealed at rest).
constexpr std::string_view kV5Transfers = R"sql(
CREATE TABLE transfers(
  transfer_id           TEXT PRIMARY KEY,
  side                  TEXT NOT NULL CHECK(side IN ('sending', 'receiving')),
  from_area             TEXT NOT NULL,
  to_area               TEXT NOT NULL,
  state                 TEXT NOT NULL
                        CHECK(state IN ('proposed', 'delivered', 'accepted', 'declined')),
  created_at_ms         INTEGER NOT NULL,
  updated_at_ms         INTEGER NOT NULL,
  next_escalation_at_ms INTEGER,
  nonce                 BLOB NOT NULL,
  sealed                BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX transfers_escalation ON transfers(next_escalation_at_ms)
  WHERE next_escalation_at_ms IS NOT NULL;

CREATE TABLE transfer_outbox(
  seq                INTEGER PRIMARY KEY AUTOINCREMENT,
  peer_area          TEXT NOT NULL,
  transfer_id        TEXT NOT NULL,
  message_id         TEXT NOT NULL,
  sealed             BLOB NOT NULL,
  attempts           INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms INTEGER NOT NULL,
  created_at_ms      INTEGER NOT NULL,
  last_error         TEXT,
  failed_at_ms       INTEGER,
  UNIQUE(transfer_id, message_id)
);
CREATE INDEX transfer_outbox_peer ON transfer_outbox(peer_area, seq) WHERE failed_at_ms IS NULL;

CREATE TABLE transfer_received(
  transfer_id    TEXT NOT NULL,
  message_id     TEXT NOT NULL,
  kind           TEXT NOT NULL,
  from_area      TEXT NOT NULL,
  payload_sha256 BLOB NOT NULL,
  received_at_ms INTEGER NOT NULL,
  nonce          BLOB NOT NULL,
  sealed         BLOB NOT NULL,
  PRIMARY KEY(transfer_id, message_id)
) WITHOUT ROWID;
)sql";

// Version 6: the text of every sharing policy the gateway has decided with, once per version
// (the hex SHA-256 of the text, which delivery audit entries cite instead of repeating the
// policy's reasons and lawful bases; docs/audit-log.md, "Delivery entries"). The text is the
// policy's own (rules, bases, agency ids), never a record's values.
constexpr std::string_view kV6PolicyTexts = R"sql(
CREATE TABLE policy_texts(
  version      TEXT PRIMARY KEY,
  file         TEXT NOT NULL,
  text         TEXT NOT NULL,
  stored_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Version 7: a push's audit entries cost fewer index writes (docs/performance.md).
// - audit_actor: no query reads entries by actor (the agency filter reads audit_agencies,
//   whose rows name the actor too).
// - audit_agencies_seq: verification reads audit_agencies in seq order by merging each
//   agency's rows (AuditLog's VerifyLog), so the table's own key (agency, seq) is its one index.
// - merkle_nodes keyed by the position in which the tree writes its nodes
//   (audit::NodePosition): every append goes to the end of one table instead of to the end of
//   one range per level. merkle_node_position() is the same function, registered for the
//   migration (Migrate).
constexpr std::string_view kV7AuditIndexes = R"sql(
DROP INDEX audit_actor;
DROP INDEX audit_agencies_seq;

CREATE TABLE merkle_nodes_by_position(
  pos  INTEGER PRIMARY KEY,
  hash BLOB NOT NULL
);
INSERT INTO merkle_nodes_by_position(pos, hash)
  SELECT merkle_node_position(level, idx), hash FROM merkle_nodes ORDER BY 1;
DROP TABLE merkle_nodes;
ALTER TABLE merkle_nodes_by_position RENAME TO merkle_nodes;
CREATE TRIGGER merkle_nodes_no_update BEFORE UPDATE ON merkle_nodes
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER merkle_nodes_no_delete BEFORE DELETE ON merkle_nodes
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

// merkle_node_position(level, idx): audit::NodePosition, for kV7AuditIndexes.
void MerkleNodePosition(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const int64_t level = sqlite3_value_int64(argv[0]);
  const int64_t idx = sqlite3_value_int64(argv[1]);
  if (level < 0 || level > 62 || idx < 0 || (static_cast<uint64_t>(idx) + 1) >> (62 - level) != 0) {
    sqlite3_result_error(ctx, "merkle_nodes holds a node (level, idx) out of range", -1);
    return;
  }
  sqlite3_result_int64(
      ctx, static_cast<int64_t>(audit::NodePosition(static_cast<int>(level),
                                                    static_cast<uint64_t>(idx))));
}

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kAll = {
      {1, kV1},
      {2, kV2Subjects},
      {3, kV3Policy},
      {4, kV4Audit, kV4Precondition, kV4Refusal},
      {5, kV5Transfers},
      {6, kV6PolicyTexts},
      {7, kV7AuditIndexes},
  };
  return kAll;
}

int CurrentSchemaVersion() { return Migrations().back().version; }

Status ConfigureWriteConnection(Db& db) {
  // journal_mode returns a row; Exec ignores it. WAL lets readers (metrics, offline verify)
  // run beside the writer; synchronous=FULL makes COMMIT durable before a 201 is sent.
  return db.Exec(
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=FULL;"
      "PRAGMA foreign_keys=ON;"
      "PRAGMA busy_timeout=5000;"
      "PRAGMA secure_delete=ON;"
      // 64 MiB of page cache (the default is 2 MiB): a group commit's dirty pages then stay
      // in memory until COMMIT instead of spilling to the WAL mid-transaction (and being
      // written again), and the index pages a push walks stay cached.
      "PRAGMA cache_size=-65536;"
      // A job run in a SAVEPOINT (writer.h: after a job failed part-way) keeps undo copies
      // (the sub-journal) that SQLite otherwise writes to a temporary file past 64 KiB.
      "PRAGMA temp_store=MEMORY;");
}

Status CheckSchemaVersion(Db& db) {
  auto version = db.QueryInt("PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > CurrentSchemaVersion()) {
    return Status::Internal("store: the database has schema version " + std::to_string(*version) +
                            ", newer than this safegate understands (" +
                            std::to_string(CurrentSchemaVersion()) + "); run a newer safegate");
  }
  if (*version < 1) return Status::Internal("store: the database has no safegate schema");
  return Status::Ok();
}

Status Migrate(Db& db) {
  auto version = db.QueryInt("PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > CurrentSchemaVersion()) return CheckSchemaVersion(db);
  if (sqlite3_create_function_v2(db.raw(), "merkle_node_position", 2,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, nullptr,
                                 MerkleNodePosition, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Status::Internal("store: cannot register merkle_node_position for the migrations");
  }
  for (const Migration& m : Migrations()) {
    if (m.version <= *version) continue;
    if (Status s = db.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    if (!m.precondition.empty()) {
      Status check = Status::Ok();
      bool refused = false;
      {
        auto stmt = db.PrepareOnce(m.precondition);  // finalised at the end of this block
        if (!stmt.ok()) {
          check = stmt.status();
        } else if (auto row = (*stmt)->Step(); !row.ok()) {
          check = row.status();
        } else {
          refused = *row && (*stmt)->Int(0) != 0;
        }
      }
      if (!check.ok() || refused) {
        (void)db.Exec("ROLLBACK");
        if (!check.ok()) return check;
        return Status::Internal("store: the database cannot be brought to schema version " +
                                std::to_string(m.version) + ": " + std::string(m.refusal));
      }
    }
    Status s = db.Exec(m.sql);
    if (s.ok()) s = db.Exec("PRAGMA user_version=" + std::to_string(m.version));
    if (s.ok()) s = db.Exec("COMMIT");
    if (!s.ok()) {
      if (db.InTransaction()) (void)db.Exec("ROLLBACK");
      return Status::Internal("store: migration to schema version " + std::to_string(m.version) +
                              " failed: " + s.detail());
    }
  }
  return Status::Ok();
}

}  // namespace safegate::core
