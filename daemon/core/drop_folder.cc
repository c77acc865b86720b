// Drop folders: files renamed into a folder are ingested all or nothing, then moved to done/
// or failed/ (with a .why), only once the records are durable. drop_folder.h has the contract.
#include "daemon/core/drop_folder.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "adapters/registry.h"
#include "daemon/core/time_format.h"

namespace safegate::core {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kDone = "done";
constexpr const char* kFailed = "failed";

// Names the watcher leaves alone: files still being written ("x.tmp", ".x") and its own
// folders.
bool Eligible(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  if (name.size() >= 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) return false;
  return name != kDone && name != kFailed;
}

Status Errno(std::string_view what, const std::string& path, int err) {
  return Status::Internal("drop folder: " + std::string(what) + " " + path + ": " +
                          std::strerror(err));
}

Status FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("fsync", dir, err);
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) return Errno("create", path, errno);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Errno("stat", path, errno);
  if (!S_ISDIR(st.st_mode)) return Status::Internal("drop folder: " + path + " is not a directory");
  return Status::Ok();
}

// A name in `dir` that is not taken: `name`, else "name.2", "name.3", ...
std::string FreeName(const std::string& dir, const std::string& name) {
  std::string candidate = name;
  for (int n = 2;; ++n) {
    struct stat st {};
    if (::lstat((dir + "/" + candidate).c_str(), &st) != 0 && errno == ENOENT) return candidate;
    candidate = name + "." + std::to_string(n);
  }
}

// Writes `text` to dir/name durably: a temporary file, fsync, rename, fsync of the folder.
Status WriteDurably(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string tmp = dir + "/." + name + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) return Errno("create", tmp, errno);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      return Errno("write", tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return Errno("fsync", tmp, err);
  }
  ::close(fd);
  const std::string path = dir + "/" + name;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("rename", tmp, errno);
  return FsyncDir(dir);
}

// The export, mapped read-only: the pages come from the page cache on demand, so a large
// export costs no copy and no heap.
class MappedFile {
 public:
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  Status Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ELOOP ? Status::Invalid("a symbolic link, not a file")
                                      : Errno("open", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return Errno("stat", path, err);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return Status::Invalid("not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        return Errno("map", path, err);
      }
      data_ = p;
    }
    ::close(fd);
    return Status::Ok();
  }
  std::string_view view() const {
    return data_ == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(data_), size_);
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

bool Transient(const Status& s) {
  return s.code() == ErrorCode::kUnavailable || s.code() == ErrorCode::kInternal;
}

}  // namespace

struct DropWatcher::Folder {
  config::Config::Drop drop;
  Caller caller;
  std::string done_dir, failed_dir;
  int watch = -1;
};

DropWatcher::DropWatcher(Options options) : options_(std::move(options)) {}

Result<std::unique_ptr<DropWatcher>> DropWatcher::Start(Options options) {
  if (options.gateway == nullptr) return Status::Internal("DropWatcher: no gateway given");
  std::unique_ptr<DropWatcher> w(new DropWatcher(std::move(options)));
  if (w->options_.clock == nullptr) w->options_.clock = &w->system_clock_;
  for (size_t i = 0; i < w->options_.drops.size(); ++i) {
    const config::Config::Drop& d = w->options_.drops[i];
    const std::string where = "drop[" + std::to_string(i) + "]";
    const config::Agency* agency =
        w->options_.registry ? w->options_.registry->Find(d.agency) : nullptr;
    if (agency == nullptr) {
      return Status::Invalid(where + ": agency " + d.agency + " is not in the registry",
                             {{where + ".agency", "is not a registered agency"}});
    }
    if (agency->role != config::Role::kPolice && agency->role != config::Role::kHealth &&
        agency->role != config::Role::kCsc) {
      return Status::Invalid(where + ": agency " + d.agency + " may not ingest records",
                             {{where + ".agency", "only police, health and csc agencies ingest"}});
    }
    if (adapters::FindAdapter(d.format) == nullptr) {
      return Status::Invalid(where + ": there is no ingest format " + d.format,
                             {{where + ".format", "is not an ingest format"}});
    }
    Folder f;
    f.drop = d;
    f.caller = Caller{agency->id, agency->role, agency->area};
    f.done_dir = d.dir + "/" + kDone;
    f.failed_dir = d.dir + "/" + kFailed;
    for (const std::string& dir : {d.dir, f.done_dir, f.failed_dir}) {
      if (Status s = MakeDir(dir); !s.ok()) return s;
    }
    w->folders_.push_back(std::move(f));
  }
  w->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->wake_fd_ < 0) return Errno("eventfd", "", errno);
  // Without inotify (limits reached, a file system that lacks it) the folders are polled.
  w->inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  for (Folder& f : w->folders_) {
    if (w->inotify_fd_ < 0) break;
    f.watch = ::inotify_add_watch(w->inotify_fd_, f.drop.dir.c_str(),
                                  IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
    if (f.watch < 0) {
      ::close(w->inotify_fd_);
      w->inotify_fd_ = -1;
    }
  }
  w->thread_ = std::thread([raw = w.get()] { raw->Loop(); });
  return w;
}

DropWatcher::~DropWatcher() {
  Stop();
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void DropWatcher::Stop() {
  stopping_.store(true);
  if (wake_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
}

void DropWatcher::Emit(const DropEvent& event) {
  if (options_.on_event) options_.on_event(event);
}

void DropWatcher::Loop() {
  // (folder, name) pairs to process, in arrival order, each once.
  std::deque<std::pair<size_t, std::string>> queue;
  std::set<std::pair<size_t, std::string>> queued;
  auto enqueue = [&](size_t folder, const std::string& name) {
    if (!Eligible(name)) return;
    if (queued.insert({folder, name}).second) queue.emplace_back(folder, name);
  };
  // Every eligible regular file in every folder, oldest name first within a folder.
  auto scan = [&] {
    for (size_t i = 0; i < folders_.size(); ++i) {
      std::vector<std::string> names;
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(folders_[i].drop.dir, ec)) {
        std::error_code type_ec;
        if (entry.is_directory(type_ec)) continue;
        names.push_back(entry.path().filename().string());
      }
      std::sort(names.begin(), names.end());
      for (const std::string& n : names) enqueue(i, n);
    }
  };

  scan();  // resume: whatever is still in the folders, including files a crash left behind
  bool retry_pending = false;
  while (!stopping_.load()) {
    while (!queue.empty() && !stopping_.load()) {
      auto [folder, name] = queue.front();
      queue.pop_front();
      queued.erase({folder, name});
      struct stat st {};
      const std::string path = folders_[folder].drop.dir + "/" + name;
      if (::lstat(path.c_str(), &st) != 0) continue;  // gone already
      if (S_ISDIR(st.st_mode)) continue;
      ProcessOne(folder, name);
      // A file left in place is retried at the next timeout, not in a hot loop.
      if (::lstat(path.c_str(), &st) == 0) retry_pending = true;
    }
    if (stopping_.load()) break;

    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    const nfds_t n = inotify_fd_ >= 0 ? 2 : 1;
    const bool polling = inotify_fd_ < 0;
    const int timeout = (polling || retry_pending)
                            ? static_cast<int>(options_.retry_interval.count())
                            : -1;
    const int rc = ::poll(fds, n, timeout);
    if (rc < 0 && errno != EINTR) break;
    if (rc == 0) {  // timed out: retry what was left, or poll the folders
      retry_pending = false;
      scan();
      continue;
    }
    if (n == 2 && (fds[1].revents & POLLIN) != 0) {
      alignas(inotify_event) char buf[16 * 1024];
      for (;;) {
        const ssize_t len = ::read(inotify_fd_, buf, sizeof buf);
        if (len <= 0) break;
        for (char* p = buf; p < buf + len;) {
          const auto* ev = reinterpret_cast<const inotify_event*>(p);
          p += sizeof(inotify_event) + ev->len;
          if ((ev->mask & IN_Q_OVERFLOW) != 0) {
            scan();  // events were lost: look at everything
            continue;
          }
          if (ev->len == 0 || (ev->mask & IN_ISDIR) != 0) continue;
          for (size_t i = 0; i < folders_.size(); ++i) {
            if (folders_[i].watch == ev->wd) enqueue(i, ev->name);
          }
        }
      }
    }
  }
}

void DropWatcher::ProcessOne(size_t index, const std::string& name) {
  const Folder& f = folders_[index];
  const std::string path = f.drop.dir + "/" + name;
  DropEvent event;
  event.agency = f.drop.agency;
  event.format = f.drop.format;
  event.dir = f.drop.dir;
  event.file = name;

  Result<IngestOutcome> result = Status::Internal("not ingested");
  {
    MappedFile file;
    Status opened = file.Open(path);
    if (!opened.ok() && opened.code() != ErrorCode::kInvalidInput) {
      event.outcome = "retry";
      event.status = opened;
      Emit(event);
      return;
    }
    if (!opened.ok()) {
      result = opened;
    } else {
      IngestRequest req;
      req.format = f.drop.format;
      req.content = file.view();  // parsed before Ingest returns, so the mapping may go after
      req.purpose = f.drop.purpose;
      req.recipients = f.drop.recipients;
      auto promise = std::make_shared<std::promise<Result<IngestOutcome>>>();
      auto future = promise->get_future();
      options_.gateway->Ingest(f.caller, std::move(req), [promise](Result<IngestOutcome> r) {
        promise->set_value(std::move(r));
      });
      result = future.get();  // the callback runs once the records are durable (or refused)
    }
  }

  if (!result.ok() && Transient(result.status())) {
    // The store could not take it now; nothing was stored. The file stays for a retry.
    event.outcome = "retry";
    event.status = result.status();
    Emit(event);
    return;
  }

  if (result.ok()) {
    const std::string target = FreeName(f.done_dir, name);
    const std::string to = f.done_dir + "/" + target;
    if (::rename(path.c_str(), to.c_str()) != 0) {
      event.outcome = "retry";  // stored; moving it again later replays, nothing more
      event.status = Errno("move", path, errno);
      Emit(event);
      return;
    }
    (void)FsyncDir(f.drop.dir);
    (void)FsyncDir(f.done_dir);
    event.outcome = "done";
    event.moved_to = to;
    event.records = static_cast<int64_t>(result->record_ids.size());
    event.created = result->created;
    Emit(event);
    return;
  }

  // Refused: the reasons beside the file, then the file itself, so a .why never lacks its
  // file for long (and a crash in between only means the file is refused again).
  const Status& why = result.status();
  const std::string target = FreeName(f.failed_dir, name);
  json problems = json::array();
  for (const Problem& p : why.problems()) problems.push_back({{"where", p.where}, {"what", p.what}});
  const json report = {{"file", name},
                       {"agency", f.drop.agency},
                       {"format", f.drop.format},
                       {"purpose", f.drop.purpose},
                       {"at", FormatTimeMs(options_.clock->NowMs())},
                       {"error", ErrorCodeName(why.code())},
                       {"detail", why.detail()},
                       {"problems", std::move(problems)}};
  event.status = why;
  if (Status s = WriteDurably(f.failed_dir, target + ".why", report.dump(2) + "\n"); !s.ok()) {
    event.outcome = "retry";
    event.status = s;
    Emit(event);
    return;
  }
  const std::string to = f.failed_dir + "/" + target;
  if (::rename(path.c_str(), to.c_str()) != 0) {
    event.outcome = "retry";
    event.status = Errno("move", path, errno);
    Emit(event);
    return;
  }
  (void)FsyncDir(f.drop.dir);
  (void)FsyncDir(f.failed_dir);
  event.outcome = "failed";
  event.moved_to = to;
  Emit(event);
}

}  // namespace safegate::core
