#include "daemon/core/schema.h"

#include <string>

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

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kAll = {
      {1, kV1},
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
      "PRAGMA secure_delete=ON;");
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
  for (const Migration& m : Migrations()) {
    if (m.version <= *version) continue;
    if (Status s = db.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
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
