// Fd: owns a file descriptor (a socket, a lock file) and closes it when it goes out of scope.
// Not copyable. Not thread-safe; one owner.
#pragma once

#include <unistd.h>

namespace safegate::ctl {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace safegate::ctl
