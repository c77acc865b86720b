#include "daemon/core/writer.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace safegate::core {
namespace {

bool IsRefusal(const Status& s) {
  return !s.ok() && s.code() != ErrorCode::kInternal && s.code() != ErrorCode::kUnavailable;
}

// Jobs report failure by Status. An exception escaping one (a library throwing on data it
// should not have been given) is still a bug, but it must cost only that job: its savepoint
// is rolled back like any failure, and the other jobs of the batch are unaffected.
template <typename F>
auto Guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::Internal(std::string("store: unexpected exception: ") + e.what());
  } catch (...) {
    return Status::Internal("store: unexpected exception");
  }
}

}  // namespace

// ---- Checkpointer ------------------------------------------------------------------------

Result<std::unique_ptr<Checkpointer>> Checkpointer::Start(const std::string& db_path) {
  auto db = Db::Open(db_path, Db::Mode::kReadWriteCreate);
  if (!db.ok()) return db.status();
  // FULL: the database file is synced before frames count as copied (see the header). This
  // connection never writes a transaction, so it never checkpoints on its own either.
  if (Status s = (*db)->Exec("PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"); !s.ok()) {
    return s;
  }
  std::unique_ptr<Checkpointer> c(new Checkpointer(std::move(*db)));
  c->thread_ = std::thread([p = c.get()] { p->Loop(); });
  return c;
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Checkpointer::Nudge(int wal_frames) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Fewer frames than were copied: the log was started afresh since.
    if (wal_frames < copied_) copied_ = 0;
    if (wal_frames - copied_ < kBackgroundFrames || wake_) return;
    wake_ = true;
  }
  cv_.notify_one();
}

void Checkpointer::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || wake_; });
    if (stopping_) return;
    wake_ = false;
    lock.unlock();
    int log_frames = 0, copied = 0;
    // PASSIVE never waits: a busy result (another checkpoint is running, e.g. the writer's
    // own) just means the next nudge tries again. A failure leaves the frames in the log,
    // where they stay durable, and the writer's own checkpoint as the fallback.
    const int rc = sqlite3_wal_checkpoint_v2(db_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                             &log_frames, &copied);
    lock.lock();
    if (rc == SQLITE_OK) {
      copied_ = copied;
      checkpoints_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

// ---- Writer -----------------------------------------------------------------------------

Writer::Writer(Db* db, AuditLog* audit, uint32_t max_batch, Checkpointer* checkpointer)
    : db_(db),
      audit_(audit),
      max_batch_(std::max<uint32_t>(1, max_batch)),
      checkpointer_(checkpointer) {
  audit_entries_.store(audit_->head().seq);
  // Replaces SQLite's automatic checkpoint (itself a WAL hook) with ours.
  if (checkpointer_ != nullptr) sqlite3_wal_hook(db_->raw(), &Writer::AfterWalCommit, this);
}

int Writer::AfterWalCommit(void* self, ::sqlite3* db, const char* name, int wal_frames) {
  auto* writer = static_cast<Writer*>(self);
  // The frames this commit added (the log starts again from 0 after a full checkpoint). One
  // commit that alone fills the log (an ingest of a large export) is left to the background
  // copy: it is durable in the log already, and copying it here would hold its answer back
  // for the whole copy and its fsync. The next commit finishes whatever is left.
  const int added = wal_frames >= writer->last_wal_frames_ ? wal_frames - writer->last_wal_frames_
                                                           : wal_frames;
  writer->last_wal_frames_ = wal_frames;
  if (wal_frames >= kInlineCheckpointFrames && added < kInlineCheckpointFrames) {
    // What SQLite's automatic checkpoint would do, at a larger size. Nearly every frame has
    // been copied in the background by now, so this copies the rest, after which the next
    // transaction starts the log afresh. Busy (the background one is running): the next
    // commit tries again.
    (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else {
    writer->checkpointer_->Nudge(wal_frames);
  }
  return SQLITE_OK;  // the commit has happened whatever a checkpoint does
}

Writer::~Writer() {
  Shutdown();
  // The hook points at this writer: give the connection SQLite's own checkpoints back.
  if (checkpointer_ != nullptr) sqlite3_wal_autocheckpoint(db_->raw(), 1000);
}

void Writer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Writer::Submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      cv_.notify_one();
      return;
    }
  }
  job.done(Status::Unavailable("the gateway is shutting down"));
}

void Writer::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (std::this_thread::get_id() == thread_.get_id()) return;  // see the header
  std::lock_guard<std::mutex> lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

void Writer::Loop() {
  for (;;) {
    std::vector<Job> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      // Entries waiting for a signed head: sleep no longer than until the head is due.
      // (HeadDueIn reads the audit log, which only this thread touches.)
      if (auto due = audit_->HeadDueIn()) {
        if (!cv_.wait_for(lock, *due, ready)) {
          lock.unlock();
          RunBatch(batch);  // no jobs: commits the due head
          continue;
        }
      } else {
        cv_.wait(lock, ready);
      }
      if (queue_.empty()) {  // stopping, and everything queued has been committed
        lock.unlock();
        RunBatch(batch, /*final_head=*/true);
        return;
      }
      const size_t n = std::min<size_t>(max_batch_, queue_.size());
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunBatch(batch);
  }
}

Status Writer::Transaction(const char* sql) {
  auto stmt = db_->Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  return (*stmt)->Run();
}

void Writer::RollBackBatch() {
  db_->ResetAll();
  if (db_->InTransaction()) (void)db_->Exec("ROLLBACK");
  if (on_rollback_) on_rollback_();
}

void Writer::FailBatch(std::vector<Job>& batch, const Status& why) {
  RollBackBatch();
  // The chain head in memory may describe entries that were rolled back; the disk is the
  // truth. If even that fails, appends will fail too and every later job reports kInternal.
  (void)audit_->Load();
  for (Job& job : batch) job.done(why);
}

Writer::JobsRun Writer::RunJobs(std::vector<Job>& batch, std::vector<Status>& results,
                                bool& changed, bool savepoints) {
  if (Status s = Transaction("BEGIN IMMEDIATE"); !s.ok()) {
    FailBatch(batch, s);
    return JobsRun::kFailed;
  }
  const AuditLog::Checkpoint at_start = audit_->Save();
  // Without savepoints, a job that fails having written nothing needs nothing undone; one
  // that fails part-way through its writes costs the whole transaction, which starts again
  // with them.
  auto start_again = [&] {
    RollBackBatch();
    audit_->Restore(at_start);
    return JobsRun::kStartAgain;
  };
  changed = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    Job& job = batch[i];
    audit_->ForgetSubjectKeys();  // a job's subject key is remembered within the job only
    const AuditLog::Checkpoint saved = audit_->Save();
    if (savepoints) {
      if (Status s = Transaction("SAVEPOINT job"); !s.ok()) {
        FailBatch(batch, Status::Internal(s.detail()));
        return JobsRun::kFailed;
      }
    }
    // Undoes what the job wrote since SQLite's change count was `writes`. Returns how the
    // batch goes on: nothing when the job alone was undone, else the end of this run. SQLite
    // itself ends the transaction on some errors (a full disk, I/O): then the jobs before
    // are gone too, and the batch starts again.
    auto undo = [&](int64_t writes) -> std::optional<JobsRun> {
      if (!savepoints) {
        if (sqlite3_total_changes64(db_->raw()) != writes || !db_->InTransaction()) {
          return start_again();
        }
      } else if (Status s = Transaction("ROLLBACK TO job"); !s.ok()) {
        FailBatch(batch, Status::Internal(s.detail()));
        return JobsRun::kFailed;
      } else if (on_rollback_) {
        on_rollback_();
      }
      audit_->Restore(saved);
      return std::nullopt;
    };
    int64_t writes = sqlite3_total_changes64(db_->raw());
    Status result = Guarded(job.run);
    db_->ResetAll();
    if (!result.ok()) {
      if (auto ended = undo(writes)) return *ended;
      if (IsRefusal(result) && job.on_refused) {
        writes = sqlite3_total_changes64(db_->raw());
        Status audited = Guarded([&] { return job.on_refused(result); });
        db_->ResetAll();
        if (!audited.ok()) {
          if (auto ended = undo(writes)) return *ended;
          result = Status::Internal("the refusal could not be audited, so it was not answered: " +
                                    audited.detail());
        }
      }
    }
    if (savepoints) {
      if (Status s = Transaction("RELEASE job"); !s.ok()) {
        FailBatch(batch, Status::Internal(s.detail()));
        return JobsRun::kFailed;
      }
    }
    changed = changed || audit_->head().seq != saved.chain.seq || result.ok();
    results[i] = std::move(result);
  }
  audit_->ForgetSubjectKeys();
  return JobsRun::kDone;
}

void Writer::RunBatch(std::vector<Job>& batch, bool final_head) {
  if (batch.empty() && !audit_->HeadDueIn()) return;  // no work, and no head waiting
  std::vector<Status> results(batch.size());
  bool changed = false;
  JobsRun run = RunJobs(batch, results, changed, /*savepoints=*/false);
  if (run == JobsRun::kStartAgain) {
    restarts_.fetch_add(1, std::memory_order_relaxed);
    run = RunJobs(batch, results, changed, /*savepoints=*/true);
  }
  if (run != JobsRun::kDone) return;  // FailBatch has answered every job

  // A signed tree head, when one is due, commits with the entries it covers. Failing to sign
  // costs only the head: its savepoint is rolled back and the entries commit without it.
  {
    const AuditLog::Checkpoint saved = audit_->Save();
    if (Status s = Transaction("SAVEPOINT head"); !s.ok()) {
      FailBatch(batch, Status::Internal(s.detail()));
      return;
    }
    Result<bool> signed_head = Guarded([&]() -> Result<bool> { return audit_->SignHeadIfDue(final_head); });
    db_->ResetAll();
    if (!signed_head.ok()) {
      audit_->Restore(saved);
      if (Status s = Transaction("ROLLBACK TO head"); !s.ok()) {
        FailBatch(batch, Status::Internal(s.detail()));
        return;
      }
    }
    if (Status s = Transaction("RELEASE head"); !s.ok()) {
      FailBatch(batch, Status::Internal(s.detail()));
      return;
    }
  }

  const auto t0 = std::chrono::steady_clock::now();
  Status commit = Transaction("COMMIT");
  const auto t1 = std::chrono::steady_clock::now();
  if (!commit.ok()) {
    FailBatch(batch,
              Status::Internal("the transaction could not be committed: " + commit.detail()));
    return;
  }
  commits_.fetch_add(1, std::memory_order_relaxed);
  committed_jobs_.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
  last_commit_ms_.store(std::chrono::duration<double, std::milli>(t1 - t0).count(),
                        std::memory_order_relaxed);
  audit_entries_.store(audit_->head().seq, std::memory_order_relaxed);
  if (changed) generation_.fetch_add(1, std::memory_order_release);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (results[i].ok() && batch[i].after_commit) {
      (void)Guarded([&] {
        batch[i].after_commit();
        return Status::Ok();
      });
    }
    batch[i].done(std::move(results[i]));
  }
}

}  // namespace safegate::core
