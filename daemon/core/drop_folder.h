// DropWatcher: ingests the files agencies drop into their configured folders ([[drop]]).
//
// A file that appears in a drop folder by atomic rename (write "x.tmp" or ".x", then rename
// it to "x") is read (mapped, not copied) and handed to Gateway::Ingest as its agency, with
// the folder's format, purpose and recipients. Then:
//   - stored: the file moves to <dir>/done/;
//   - refused (bad rows, a conflict, ...): the file moves to <dir>/failed/ with
//     "<name>.why" beside it, JSON naming every problem;
//   - the store was unavailable (shutting down, disk full): the file stays and is retried.
// The move happens only after the records are durable, and the same export ingested again
// replays (the records' idempotency keys), so a crash or kill -9 at any point neither loses
// nor duplicates a record: at start every file still in the folder is processed again.
// docs/ingest.md describes the folder contract.
//
// One thread watches every folder (inotify; polling every second where inotify is not
// available) and processes one file at a time.
//
// Thread-safety: Start/Stop from one owner thread; the event callback runs on the watcher's
// thread. Ownership: the Gateway is not owned and must outlive the watcher.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "daemon/core/clock.h"
#include "daemon/core/gateway.h"
#include "record/status.h"

namespace safegate::core {

// What happened to one dropped file (for logs and tests). Carries the file name, which may
// be personal: log it only where the agency's own files are.
struct DropEvent {
  std::string agency;    // the folder's agency and format
  std::string format;
  std::string dir;       // the drop folder
  std::string file;      // the name the file arrived under
  std::string outcome;   // "done" | "failed" | "retry"
  std::string moved_to;  // the path it was moved to ("" for retry)
  int64_t records = 0;   // records in the export (done)
  int64_t created = 0;   // of which new (done); the rest were replays
  Status status;         // why it failed or will be retried
};

class DropWatcher {
 public:
  struct Options {
    std::vector<config::Config::Drop> drops;
    std::shared_ptr<const config::Registry> registry;
    Gateway* gateway = nullptr;  // not owned
    const Clock* clock = nullptr;  // for the time in .why files; null: the system clock
    // How often a file left in place (store unavailable) is retried, and how often folders
    // are scanned when inotify is not available.
    std::chrono::milliseconds retry_interval{1000};
    std::function<void(const DropEvent&)> on_event;  // optional
  };

  // Checks every drop (its agency is registered with role police, health or csc; its format
  // is an adapter's name), creates the folders (0750) and their done/ and failed/, then
  // starts the thread, which first processes the files already there. kInvalidInput naming
  // the drop when a check fails; nothing is started then.
  static Result<std::unique_ptr<DropWatcher>> Start(Options options);

  ~DropWatcher();  // Stop()
  DropWatcher(const DropWatcher&) = delete;
  DropWatcher& operator=(const DropWatcher&) = delete;

  // Finishes the file in hand, then stops. Files not yet started stay in their folder.
  void Stop();

 private:
  struct Folder;
  explicit DropWatcher(Options options);
  void Loop();
  void ProcessOne(size_t folder, const std::string& name);
  void Emit(const DropEvent& event);

  Options options_;
  std::vector<Folder> folders_;
  SystemClock system_clock_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the thread
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace safegate::core
