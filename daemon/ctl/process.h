// Local process and loopback-HTTP utilities for safegatectl's sandbox and for the integration
// tests that drive real daemons: start a program (optionally detached into its own session
// with its output in a log file), tell whether a pid is still running (a zombie counts as
// ended, since a detached daemon's parent may never reap it), wait for it to end with a bound,
// and ask a plain-HTTP admin listener on loopback for a status code.
//
// Nothing here sleeps for timing: waits poll a condition until it holds or a bound passes.
// Thread-safety: all functions are free functions without shared state; safe from any thread.
// Errors: returned as Status / Result (kUnavailable for "not there yet", kInternal for
// failures of the system calls, with errno's text).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "record/status.h"

namespace safegate::ctl {

struct SpawnOptions {
  // argv[0] is the path of the program to run (no PATH search).
  std::vector<std::string> argv;
  // Where stdout and stderr go (appended). Empty: inherit the caller's.
  std::string log_file;
  // Start a new session (setsid) so the child outlives its parent and its terminal.
  bool detach = false;
};

// Starts the program and returns its pid once exec has succeeded. An exec failure (no such
// file, not executable) is reported here with the path and errno's text, not by a child that
// silently exits.
Result<pid_t> Spawn(const SpawnOptions& options);

// Runs the program to completion with stdout/stderr going to `log_file` (or inherited when
// empty). Returns its exit status (128 + signal when killed by a signal).
Result<int> RunToCompletion(const SpawnOptions& options);

// True while `pid` runs. If `pid` is our own child that has ended, it is reaped and
// `how_ended` (when given) says how ("exited with status 2", "killed by signal 9").
bool ProcessAlive(pid_t pid, std::string* how_ended = nullptr);

// Polls until `pid` has ended or `bound` passes. Returns whether it ended.
bool WaitForExit(pid_t pid, std::chrono::milliseconds bound);

// The command line of a running process (from /proc), empty if it is not running.
std::vector<std::string> ProcessArgs(pid_t pid);

// Every running process whose command line contains "--config" followed by `config_path`
// and whose program name contains "safegated".
std::vector<pid_t> FindDaemonsByConfig(const std::string& config_path);

// GET `path` from http://127.0.0.1:`port` with "Connection: close". Returns the HTTP status
// code, or kUnavailable when nothing answered within `timeout`.
Result<int> LoopbackHttpGet(uint16_t port, const std::string& path,
                            std::chrono::milliseconds timeout);

// The last `max_lines` lines of a text file (for error messages pointing at a log).
std::string TailOfFile(const std::string& path, int max_lines);

}  // namespace safegate::ctl
