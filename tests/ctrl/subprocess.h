// Runs a tool as a child process for the ctrl tests (killed and reaped on destruction).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace lockstep::ctrl::testing {

class Subprocess {
 public:
  Subprocess() = default;
  // stdout/stderr go to `out_path` (appended) when given, else /dev/null.
  bool start(const std::vector<std::string>& argv, const std::string& out_path = {}) {
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      int fd = open(out_path.empty() ? "/dev/null" : out_path.c_str(),
                    O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    return true;
  }
  ~Subprocess() { kill_now(); }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  void kill_now(int sig = SIGKILL) {
    if (pid_ > 0) {
      ::kill(pid_, sig);
      waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
  }
  // Exit status once it ended by itself (-1 while running).
  int exited() {
    if (pid_ <= 0) return WIFEXITED(status_) ? WEXITSTATUS(status_) : -2;
    if (waitpid(pid_, &status_, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status_) ? WEXITSTATUS(status_) : -2;
    }
    return -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
};

}  // namespace lockstep::ctrl::testing
