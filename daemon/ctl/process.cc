#include "daemon/ctl/process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

namespace safegate::ctl {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPollInterval{25};

std::string ErrnoText(int err) { return std::strerror(err); }

// Describes a wait status for a person.
std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended";
}

// Runs in the child between fork and exec: only async-signal-safe calls. Writes errno to
// `report_fd` and exits if anything fails, so the parent can say what went wrong.
[[noreturn]] void ReportAndExit(int report_fd) {
  int err = errno;
  ssize_t ignored = write(report_fd, &err, sizeof err);
  (void)ignored;
  _exit(127);
}

[[noreturn]] void ExecChild(const SpawnOptions& options, char* const* argv, int report_fd) {
  auto fail = [report_fd]() { ReportAndExit(report_fd); };
  if (options.detach && setsid() < 0) fail();
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd < 0 || dup2(null_fd, 0) < 0) fail();
  if (!options.log_file.empty()) {
    int log_fd = open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) fail();
  }
  // Everything else the parent had open (a test runner's pipes, sockets) must not be held by
  // a daemon that outlives it; report_fd is close-on-exec.
  for (int fd = 3; fd < 1024; ++fd) {
    if (fd != report_fd) close(fd);
  }
  // Restore default signal dispositions the parent may have changed.
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execv(argv[0], argv);
  ReportAndExit(report_fd);
}

}  // namespace

Result<pid_t> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return Status::Internal("Spawn: no program given");
  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) return Status::Internal("pipe: " + ErrnoText(errno));
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(report[0]);
    close(report[1]);
    return Status::Internal("fork: " + ErrnoText(err));
  }
  if (pid == 0) {
    close(report[0]);
    ExecChild(options, argv.data(), report[1]);
  }
  close(report[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int status = 0;
    waitpid(pid, &status, 0);
    std::string what = "cannot start " + options.argv[0] + ": " + ErrnoText(child_errno);
    if (!options.log_file.empty()) what += " (log file " + options.log_file + ")";
    return Status::Internal(what);
  }
  return pid;
}

Result<int> RunToCompletion(const SpawnOptions& options) {
  Result<pid_t> pid = Spawn(options);
  if (!pid.ok()) return pid.status();
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0) {
    if (errno != EINTR) return Status::Internal("waitpid: " + ErrnoText(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

// The state letter of a /proc .../stat file ("pid (comm) S ..."; comm may hold spaces and
// parentheses, so the state follows the last ')'): '\0' when it cannot be read (gone), '?'
// when it cannot be parsed.
static char StateIn(const std::string& stat_path) {
  std::ifstream stat(stat_path);
  std::string line;
  if (!stat || !std::getline(stat, line)) return '\0';
  auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return '?';
  return line[close_paren + 2];
}

static bool Ended(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

// True while any thread of `pid` is listed in /proc/PID/task and has not ended.
static bool AnyThreadRunning(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(dir.c_str());
  if (tasks == nullptr) return false;
  bool running = false;
  while (dirent* e = readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    const char state = StateIn(dir + "/" + e->d_name + "/stat");
    if (state != '\0' && !Ended(state)) {
      running = true;
      break;
    }
  }
  closedir(tasks);
  return running;
}

bool ProcessAlive(pid_t pid, std::string* how_ended) {
  if (pid <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid, &status, WNOHANG);
  if (r == pid) {
    if (how_ended) *how_ended = DescribeWaitStatus(status);
    return false;
  }
  // Not our child (or still running): ask /proc. A zombie has ended even though kill(pid, 0)
  // still succeeds for it; but after kill -9 its other threads may still be on their way out
  // (one in fdatasync, say), holding the process's files and locks until they are gone.
  const char state = StateIn("/proc/" + std::to_string(pid) + "/stat");
  if (state == '\0') {
    if (how_ended) *how_ended = "not running";
    return false;
  }
  if (Ended(state) && !AnyThreadRunning(pid)) {
    if (how_ended) *how_ended = "ended";
    return false;
  }
  return true;
}

bool WaitForExit(pid_t pid, std::chrono::milliseconds bound) {
  auto deadline = Clock::now() + bound;
  while (ProcessAlive(pid)) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
  return true;
}

std::vector<std::string> ProcessArgs(pid_t pid) {
  std::vector<std::string> args;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  if (!in) return args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  return args;
}

std::vector<pid_t> FindDaemonsByConfig(const std::string& config_path) {
  std::vector<pid_t> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    std::vector<std::string> args = ProcessArgs(static_cast<pid_t>(pid));
    if (args.empty() || args[0].find("safegated") == std::string::npos) continue;
    for (size_t i = 1; i + 1 < args.size(); ++i) {
      if (args[i] == "--config" && args[i + 1] == config_path) {
        if (ProcessAlive(static_cast<pid_t>(pid))) found.push_back(static_cast<pid_t>(pid));
        break;
      }
    }
  }
  closedir(proc);
  return found;
}

Result<int> LoopbackHttpGet(uint16_t port, const std::string& path,
                            std::chrono::milliseconds timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal("socket: " + ErrnoText(errno));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return Status::Unavailable("connect to 127.0.0.1:" + std::to_string(port) + ": " +
                               ErrnoText(err));
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      int err = errno;
      close(fd);
      return Status::Unavailable("send to 127.0.0.1:" + std::to_string(port) + ": " +
                                 ErrnoText(err));
    }
    sent += static_cast<size_t>(n);
  }
  // Only the status line is needed: "HTTP/1.1 200 OK".
  std::string head;
  char buf[512];
  while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12) {
    return Status::Unavailable("no HTTP answer from 127.0.0.1:" + std::to_string(port) + path);
  }
  int code = std::atoi(head.substr(9, 3).c_str());
  if (code < 100 || code > 599) {
    return Status::Unavailable("bad HTTP status line from 127.0.0.1:" + std::to_string(port));
  }
  return code;
}

std::string TailOfFile(const std::string& path, int max_lines) {
  std::ifstream in(path);
  if (!in) return "";
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (static_cast<int>(lines.size()) > max_lines) lines.pop_front();
  }
  std::ostringstream out;
  for (const auto& l : lines) out << "  | " << l << "\n";
  return out.str();
}

}  // namespace safegate::ctl
