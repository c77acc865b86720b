#include "daemon/ctl/backup.h"

#include <fcntl.h>
#include <pwd.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <vector>

#include "daemon/audit/tree_head.h"
#include "daemon/core/sqlite.h"
#include "daemon/ctl/fd.h"
#include "daemon/transfer/gateway_keys.h"

namespace safegate::ctl {
namespace {

namespace fs = std::filesystem;
using core::Db;

constexpr const char* kStoreFile = "safegate.db";
constexpr const char* kLockFile = "safegate.lock";
constexpr const char* kAtRestKeyFile = "store.key";
constexpr const char* kSigningKeyFile = "signing.key";
// SQLite's companions of a store file; a stale -wal beside a different database would be
// replayed into it, so they always move together with the store they belong to.
constexpr const char* kCompanions[] = {"-wal", "-shm", "-journal"};
// A busy source (the gateway's writer checkpointing) is retried this many times, 100 ms
// apart, before the backup gives up.
constexpr int kBusyRetries = 100;

Status ErrnoStatus(std::string_view what, const fs::path& path, int err) {
  return Status::Internal(std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

// Removes a path (file or directory tree) when it goes out of scope, unless released.
class RemoveOnExit {
 public:
  explicit RemoveOnExit(fs::path path) : path_(std::move(path)) {}
  ~RemoveOnExit() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;
  void Release() { path_.clear(); }

 private:
  fs::path path_;
};

Status FsyncPath(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  Fd closer(fd);
  if (::fsync(fd) != 0) return ErrnoStatus("fsync", path, errno);
  return Status::Ok();
}

// As root, files SQLite creates in someone else's directory would be root's, and the gateway
// (running as that someone) could no longer open its own store.
Status CheckNotRootInOthersDirectory(const fs::path& dir, std::string_view command) {
  if (::geteuid() != 0) return Status::Ok();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return ErrnoStatus("stat", dir, errno);
  if (st.st_uid == 0) return Status::Ok();
  std::string user = "uid " + std::to_string(st.st_uid);
  if (const passwd* pw = ::getpwuid(st.st_uid); pw != nullptr) user = pw->pw_name;
  return Status::Invalid("run `safegatectl " + std::string(command) + "` as the owner of " +
                         dir.string() + " (" + user + "), e.g. `runuser -u " + user +
                         " -- safegatectl ...`: as root, the files SQLite writes there would "
                         "belong to root and the gateway could not open its store");
}

// Creates an empty file with mode 0600 (SQLite then opens it as an empty database), so a
// copy of the store is never readable by others, whatever the umask.
Status CreatePrivateFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("create", path, errno);
  ::close(fd);
  return Status::Ok();
}

Result<std::string> QueryText(Db& db, const char* sql) {
  auto stmt = db.PrepareOnce(sql);
  if (!stmt.ok()) return stmt.status();
  auto row = (*stmt)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::string();
  return (*stmt)->Text(0);
}

// Copies the database at `source` into the (empty, private) file `dest` with the online
// backup API, in one step: one read transaction on the source, so the copy is one commit's
// state. Then makes `dest` a self-contained rollback-journal database and checks it.
Result<int64_t> CopyDatabase(const fs::path& source, const fs::path& dest) {
  auto src = Db::Open(source.string(), Db::Mode::kReadOnly);
  if (!src.ok()) return src.status();
  (void)(*src)->Exec("PRAGMA busy_timeout=10000");
  auto dst = Db::Open(dest.string(), Db::Mode::kReadWriteCreate);
  if (!dst.ok()) return dst.status();

  sqlite3_backup* backup = sqlite3_backup_init((*dst)->raw(), "main", (*src)->raw(), "main");
  if (backup == nullptr) {
    return core::SqliteStatus(sqlite3_errcode((*dst)->raw()), (*dst)->raw(),
                              "start the backup of " + source.string());
  }
  int rc = SQLITE_OK;
  for (int attempt = 0; attempt <= kBusyRetries; ++attempt) {
    rc = sqlite3_backup_step(backup, -1);  // -1: every page, within one read transaction
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    sqlite3_sleep(100);  // a bounded retry of a busy source, not a wait for timing
  }
  const int64_t pages = sqlite3_backup_pagecount(backup);
  const int finish = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    return core::SqliteStatus(rc == SQLITE_OK ? SQLITE_INTERNAL : rc, (*dst)->raw(),
                              "copy " + source.string());
  }
  if (finish != SQLITE_OK) {
    return core::SqliteStatus(finish, (*dst)->raw(), "finish the copy of " + source.string());
  }
  src->reset();

  // The copy carries the store's WAL flag; one file with no -wal to lose is what a backup
  // should be. The gateway switches a restored store back to WAL when it opens it.
  auto mode = QueryText(**dst, "PRAGMA journal_mode=DELETE");
  if (!mode.ok()) return mode.status();
  if (*mode != "delete") {
    return Status::Internal("could not make " + dest.string() +
                            " a single-file database (journal mode " + *mode + ")");
  }
  auto check = QueryText(**dst, "PRAGMA integrity_check");
  if (!check.ok()) return check.status();
  if (*check != "ok") {
    return Status::Internal("the copy " + dest.string() +
                            " fails SQLite's integrity check: " + *check);
  }
  return pages;
}

// The base64 public key of <dir>/signing.key when it exists, so a backup's tree heads are
// checked against the key of the gateway that will use (or made) the store; "" when there is
// no such file. An existing key file that cannot be read is an error (permissions).
Result<std::string> PinnedSigningKey(const fs::path& dir) {
  const fs::path path = dir / kSigningKeyFile;
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::string();
  auto key = audit::SigningKey::Load(path.string());
  if (!key.ok()) return key.status();
  return (*key)->PublicKeyBase64();
}

// Verifies the audit log of the database file `db_file` (in a private scratch directory
// beside it, where it appears as safegate.db, since offline verification takes a data
// directory).
Result<VerifyReport> VerifyDatabaseFile(const fs::path& db_file, const std::string& pinned_key) {
  std::string tmpl = (db_file.parent_path() / ".safegate-verify-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return ErrnoStatus("create", tmpl, errno);
  const fs::path scratch(buf.data());
  RemoveOnExit cleanup(scratch);
  const fs::path linked = scratch / kStoreFile;
  if (::link(db_file.c_str(), linked.c_str()) != 0) {
    std::error_code ec;
    fs::copy_file(db_file, linked, ec);
    if (ec) return Status::Internal("copy " + db_file.string() + ": " + ec.message());
  }
  return VerifyAuditChain(scratch.string(), pinned_key);
}

std::string UtcStamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y%m%dT%H%M%SZ", &tm);
  return out;
}

std::string DescribeFault(const VerifyReport& r) {
  if (r.first_bad_seq != 0) {
    return "first bad entry " + std::to_string(r.first_bad_seq) + ": " + r.problem;
  }
  if (!r.head_faults.empty()) {
    return "signed tree head " + std::to_string(r.head_faults[0].position) + ": " +
           r.head_faults[0].problem;
  }
  return r.problem.empty() ? "not intact" : r.problem;
}

}  // namespace

nlohmann::json BackupReport::ToJson() const {
  return {{"backup", file},          {"bytes", bytes},         {"pages", pages},
          {"audit", audit.ToJson()}, {"keys_included", false}, {"back_up_separately", key_files}};
}

nlohmann::json RestoreReport::ToJson() const {
  nlohmann::json j = {{"data_dir", data_dir},
                      {"restored_from", restored_from},
                      {"audit", audit.ToJson()},
                      {"previous_store", previous_store.empty() ? nlohmann::json(nullptr)
                                                                : nlohmann::json(previous_store)},
                      {"missing_keys", missing_keys}};
  return j;
}

Result<BackupReport> BackupStore(const std::string& data_dir, const std::string& to_file) {
  if (data_dir.empty()) return Status::Invalid("backup: --data-dir is empty");
  if (to_file.empty()) return Status::Invalid("backup: --to is empty");
  std::error_code ec;
  const fs::path dir = fs::absolute(data_dir, ec);
  const fs::path store = dir / kStoreFile;
  if (!fs::is_regular_file(store, ec)) {
    return Status::Invalid("backup: no safegate store at " + store.string() +
                           " (is --data-dir the gateway's data_dir?)");
  }
  if (Status s = CheckNotRootInOthersDirectory(dir, "backup"); !s.ok()) return s;

  const fs::path to = fs::absolute(to_file, ec);
  const fs::path parent = to.parent_path();
  if (to.filename().empty() || fs::is_directory(to, ec)) {
    return Status::Invalid("backup: --to " + to_file + " must name a file, not a directory");
  }
  if (!fs::is_directory(parent, ec)) {
    return Status::Invalid("backup: the directory of --to " + to_file + " (" + parent.string() +
                           ") does not exist");
  }
  const fs::path inside =
      fs::weakly_canonical(parent, ec).lexically_relative(fs::weakly_canonical(dir, ec));
  if (!inside.empty() && *inside.begin() != "..") {
    return Status::Invalid("backup: --to " + to_file +
                           " is inside the data directory, where it would be lost with the "
                           "store; write it elsewhere");
  }

  const fs::path partial =
      parent / ("." + to.filename().string() + ".partial-" + std::to_string(::getpid()));
  fs::remove(partial, ec);  // left by an earlier run of this pid number that was killed
  if (Status s = CreatePrivateFile(partial); !s.ok()) return s;
  RemoveOnExit cleanup(partial);

  auto pages = CopyDatabase(store, partial);
  if (!pages.ok()) return pages.status();
  if (Status s = FsyncPath(partial, false); !s.ok()) return s;

  auto pinned = PinnedSigningKey(dir);
  if (!pinned.ok()) return pinned.status();
  auto audit = VerifyDatabaseFile(partial, *pinned);
  if (!audit.ok()) return audit.status();

  if (::rename(partial.c_str(), to.c_str()) != 0) return ErrnoStatus("rename to", to, errno);
  cleanup.Release();
  if (Status s = FsyncPath(parent, true); !s.ok()) return s;

  BackupReport report;
  report.file = to.string();
  report.bytes = static_cast<int64_t>(fs::file_size(to, ec));
  report.pages = *pages;
  report.audit = std::move(*audit);
  report.key_files = (dir / kAtRestKeyFile).string() + " (or the [store] key_file configured), " +
                     (dir / kSigningKeyFile).string() + ", " +
                     (dir / transfer::kSigningKeyFile).string() + " and " +
                     (dir / transfer::kSealingKeyFile).string();
  return report;
}

Result<RestoreReport> RestoreStore(const std::string& from_file, const std::string& data_dir) {
  if (from_file.empty()) return Status::Invalid("restore: --from is empty");
  if (data_dir.empty()) return Status::Invalid("restore: --data-dir is empty");
  std::error_code ec;
  const fs::path from = fs::absolute(from_file, ec);
  if (!fs::is_regular_file(from, ec)) {
    return Status::Invalid("restore: --from " + from_file + " is not a file");
  }
  const fs::path dir = fs::absolute(data_dir, ec);
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return Status::Internal("restore: create " + dir.string() + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) return Status::Internal("restore: chmod 700 " + dir.string() + ": " + ec.message());
  } else if (!fs::is_directory(dir, ec)) {
    return Status::Invalid("restore: --data-dir " + data_dir + " is not a directory");
  }
  if (Status s = CheckNotRootInOthersDirectory(dir, "restore"); !s.ok()) return s;

  // The same lock every gateway takes on its data directory: held until the restore is done,
  // so no gateway can open the store half-way through.
  const fs::path lock_path = dir / kLockFile;
  Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (lock.get() < 0) return ErrnoStatus("restore: open", lock_path, errno);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Unavailable("restore: a gateway is running on " + dir.string() +
                                 " (it holds " + lock_path.string() +
                                 "); stop it first (systemctl stop safegated), then restore. "
                                 "Nothing was changed");
    }
    return ErrnoStatus("restore: lock", lock_path, errno);
  }

  std::string tmpl = (dir / ".restore-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return ErrnoStatus("restore: create", tmpl, errno);
  const fs::path staging(buf.data());
  RemoveOnExit cleanup(staging);
  const fs::path staged = staging / kStoreFile;
  if (Status s = CreatePrivateFile(staged); !s.ok()) return s;

  auto pages = CopyDatabase(from, staged);
  if (!pages.ok()) {
    return Status(pages.status().code(), "restore: " + from.string() +
                                             " is not a usable safegate backup: " +
                                             pages.status().detail() + ". Nothing was changed");
  }
  if (Status s = FsyncPath(staged, false); !s.ok()) return s;

  auto pinned = PinnedSigningKey(dir);
  if (!pinned.ok()) return pinned.status();
  auto audit = VerifyAuditChain(staging.string(), *pinned);
  if (!audit.ok()) {
    return Status(audit.status().code(), "restore: cannot verify the audit log of " +
                                             from.string() + ": " + audit.status().detail() +
                                             ". Nothing was changed");
  }
  if (!audit->ok) {
    return Status::Invalid("restore: the audit log of " + from.string() + " does not verify (" +
                           DescribeFault(*audit) + "); it was not restored. Nothing was changed");
  }

  RestoreReport report;
  report.data_dir = dir.string();
  report.restored_from = from.string();
  report.audit = std::move(*audit);

  // Keep what is replaced: the store and its companions move together.
  std::vector<std::string> existing;
  for (std::string name :
       {std::string(kStoreFile), std::string(kStoreFile) + kCompanions[0],
        std::string(kStoreFile) + kCompanions[1], std::string(kStoreFile) + kCompanions[2]}) {
    if (fs::exists(dir / name, ec)) existing.push_back(name);
  }
  if (!existing.empty()) {
    fs::path keep = dir / ("pre-restore-" + UtcStamp());
    for (int n = 2; fs::exists(keep, ec); ++n) {
      keep = dir / ("pre-restore-" + UtcStamp() + "-" + std::to_string(n));
    }
    fs::create_directory(keep, ec);
    if (ec) return Status::Internal("restore: create " + keep.string() + ": " + ec.message());
    fs::permissions(keep, fs::perms::owner_all, fs::perm_options::replace, ec);
    for (const auto& name : existing) {
      if (::rename((dir / name).c_str(), (keep / name).c_str()) != 0) {
        return ErrnoStatus("restore: move the current store aside:", dir / name, errno);
      }
    }
    report.previous_store = (keep / kStoreFile).string();
  }
  if (::rename(staged.c_str(), (dir / kStoreFile).c_str()) != 0) {
    return ErrnoStatus("restore: put the backup in place as", dir / kStoreFile, errno);
  }
  if (Status s = FsyncPath(dir, true); !s.ok()) return s;

  // The transfer keys too: without them the gateway would make new ones at its start, which
  // its peers do not know (they refuse its messages until given the new public keys).
  for (std::string_view key : {std::string_view(kAtRestKeyFile), std::string_view(kSigningKeyFile),
                               transfer::kSigningKeyFile, transfer::kSealingKeyFile}) {
    if (!fs::exists(dir / key, ec)) report.missing_keys.push_back((dir / key).string());
  }
  return report;
}

}  // namespace safegate::ctl
