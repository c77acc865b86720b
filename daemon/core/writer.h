// The store's single writer thread and its group commit.
//
// Every operation on the store is a Job. The writer takes up to `max_batch` queued jobs and
// runs them in ONE transaction (BEGIN IMMEDIATE ... COMMIT), so the whole batch costs one
// fsync, and one job's failure undoes only that job. Callbacks run only after COMMIT has
// returned: a job's success is reported only once it is durable. If COMMIT fails, every job
// of the batch gets kInternal and the in-memory audit chain head is reloaded from disk.
//
// Undoing one job: a job that fails before it writes anything (a refusal found by its checks,
// the usual case) needs nothing undone. So the writer first runs a batch without savepoints,
// and only if a job fails after it has written something (SQLite's count of changed rows
// moved) does it roll the whole transaction back and run the batch again with each job in a
// SAVEPOINT of its own, which undoes exactly that job. A savepoint costs a copy of every page
// the job changes (the sub-journal), which a push would otherwise pay every time. Jobs must
// therefore be safe to run again from the start: each run starts from its own inputs, and
// state a job keeps in memory about what is stored is dropped on a rollback (OnRollback).
//
// Signed tree heads: before each COMMIT the writer asks the audit log to sign a head if one is
// due (AuditLog::SignHeadIfDue), in a savepoint of its own inside the batch's transaction, so
// a head is durable together with the entries it covers. A failure to sign costs only the
// head (the entries commit; a later batch signs them). While entries wait for a head and no
// work arrives, the writer wakes when the head falls due and commits it on its own. Shutdown
// signs a last head over everything committed.
//
// Checkpoints: with a Checkpointer, the write-ahead log is copied back into the database file
// on the checkpointer's own thread and connection, so a COMMIT never waits for that copy (and
// its fsync of the database file). The writer only wakes it after a commit; it checkpoints
// itself, as SQLite would, only when the log has grown past kInlineCheckpointFrames (the
// checkpointer has fallen behind, or the log must be reset: see Checkpointer), and not when
// one commit alone grew it that far (a large ingest: its copy is left to the checkpointer).
//
// Ownership: the Writer does not own the connection, the audit log or the checkpointer it is
// given; all must outlive it, and nothing else may use the connection or the audit log while
// the writer thread runs.
// Thread-safety: Submit, Shutdown and the counters may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/core/audit_log.h"
#include "daemon/core/sqlite.h"
#include "record/status.h"

namespace safegate::core {

struct Job {
  // The work, run on the writer thread inside the batch's transaction. A non-OK Status undoes
  // what it wrote (and restores the audit chain head). It may run more than once (see above).
  std::function<Status()> run;
  // Optional. When `run` refused the request (any code but kInternal and kUnavailable), this
  // writes the request_rejected audit entry after `run`'s writes were undone, so the refusal
  // leaves exactly its audit entry behind. If it fails, the job's result becomes kInternal.
  std::function<Status(const Status& refusal)> on_refused;
  // Called once with the job's final Status: on the writer thread after COMMIT returned, or
  // on the submitting thread (kUnavailable) if the writer is shutting down.
  std::function<void(Status)> done;
  // Optional. Run on the writer thread right after a COMMIT that made the job's success
  // durable (outside any transaction), before `done`. Best effort: it cannot fail the job.
  std::function<void()> after_commit;
};

// Checkpoints the write-ahead log of one database in the background.
//
// It has its own connection with synchronous=FULL: a checkpoint syncs the database file
// before it marks WAL frames as copied, so the log is never reused over frames whose pages
// are not yet durable in the database file, and an acknowledged transaction survives a power
// loss whichever file holds it. Checkpoints are PASSIVE: they copy what no reader still needs
// and never block the writer or readers.
//
// A passive checkpoint that runs beside a busy writer never catches up with the end of the
// log, and SQLite starts the log afresh only when every frame has been copied. So the writer
// finishes the job itself (Writer, kInlineCheckpointFrames): by then almost every frame has
// been copied here and its own checkpoint copies only the rest.
//
// Thread-safety: Nudge and the counters may be called from any thread.
class Checkpointer {
 public:
  // Wakes the thread when at least this many frames have not been copied yet. A page that
  // several commits rewrote (the growing end of a table or index) is copied once per
  // checkpoint, so fewer, larger checkpoints write less: at 4000 frames rather than SQLite's
  // 1000, a push costs about an eighth less written in all (docs/performance.md).
  static constexpr int kBackgroundFrames = 4000;

  // Opens `db_path` (an existing WAL database) and starts the thread.
  static Result<std::unique_ptr<Checkpointer>> Start(const std::string& db_path);
  ~Checkpointer();  // stops the thread (a checkpoint under way finishes first)
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // After a commit: the log now holds `wal_frames` frames.
  void Nudge(int wal_frames);

  int64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }

 private:
  explicit Checkpointer(std::unique_ptr<Db> db) : db_(std::move(db)) {}
  void Loop();

  std::unique_ptr<Db> db_;  // this thread's own connection
  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;
  bool stopping_ = false;
  int copied_ = 0;  // frames the last checkpoint copied (the log's start, after a reset)
  std::atomic<int64_t> checkpoints_{0};
  std::thread thread_;
};

class Writer {
 public:
  // With a checkpointer, the log grows to this many frames before the writer checkpoints it
  // itself (32 MiB of 4 KiB pages).
  static constexpr int kInlineCheckpointFrames = 8192;

  // `checkpointer` may be null: SQLite's own automatic checkpoints then run in COMMIT.
  Writer(Db* db, AuditLog* audit, uint32_t max_batch, Checkpointer* checkpointer = nullptr);
  ~Writer();  // Shutdown()
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // `f` runs on the writer thread whenever writes are rolled back (a job's savepoint or the
  // whole transaction), so that state kept in memory about stored rows can be dropped. Set it
  // before Start.
  void OnRollback(std::function<void()> f) { on_rollback_ = std::move(f); }

  void Start();
  // Queues `job`. After Shutdown has begun, calls job.done(kUnavailable) at once instead.
  void Submit(Job job);
  // Stops taking jobs, runs and commits everything queued, joins the thread. Idempotent.
  // Called on the writer thread itself (from a callback) it only stops intake; the join
  // happens on the next call from another thread (at the latest, the destructor's).
  void Shutdown();

  int64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  int64_t committed_jobs() const { return committed_jobs_.load(std::memory_order_relaxed); }
  // Batches run again with savepoints because a job failed after writing.
  int64_t restarts() const { return restarts_.load(std::memory_order_relaxed); }
  double last_commit_ms() const { return last_commit_ms_.load(std::memory_order_relaxed); }
  // Entries in the audit log as of the last commit.
  int64_t audit_entries() const { return audit_entries_.load(std::memory_order_relaxed); }
  // Changes after every commit that changed something; lets readers cache derived numbers.
  int64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  void Loop();
  // Runs `batch` (possibly empty: just a due tree head) in one transaction. `final_head`
  // signs a head over everything, due or not (at shutdown).
  void RunBatch(std::vector<Job>& batch, bool final_head = false);
  // Runs one of the transaction statements (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO, COMMIT),
  // each prepared once: a batch runs several per job. `sql` must be a string literal.
  Status Transaction(const char* sql);
  enum class JobsRun { kDone, kStartAgain, kFailed };
  // Begins the batch's transaction and runs its jobs, each in a savepoint if `savepoints`.
  // kStartAgain: a job failed after writing and there were no savepoints; the transaction has
  // been rolled back. kFailed: FailBatch has answered every job. kDone: `results` and
  // `changed` are set and the transaction is open.
  JobsRun RunJobs(std::vector<Job>& batch, std::vector<Status>& results, bool& changed,
                  bool savepoints);
  // Rolls back the whole transaction, if one is open, and calls on_rollback_.
  void RollBackBatch();
  // Rolls back the whole transaction and reloads in-memory state; every job gets `why`.
  void FailBatch(std::vector<Job>& batch, const Status& why);

  // sqlite3_wal_hook: runs on the writer thread after each commit.
  static int AfterWalCommit(void* self, ::sqlite3* db, const char* name, int wal_frames);

  Db* db_;
  AuditLog* audit_;
  const uint32_t max_batch_;
  Checkpointer* const checkpointer_;
  int last_wal_frames_ = 0;  // the log's size after the previous commit (AfterWalCommit)
  std::function<void()> on_rollback_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::mutex join_mu_;  // serialises joining when several threads call Shutdown

  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> committed_jobs_{0};
  std::atomic<int64_t> restarts_{0};
  std::atomic<double> last_commit_ms_{0};
  std::atomic<int64_t> audit_entries_{0};
  std::atomic<int64_t> generation_{0};
};

}  // namespace safegate::core
