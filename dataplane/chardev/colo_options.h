// The command line of lockstep-colo and `lockstepd --colo-compare`: colo-compare's
// properties as KEY=VALUE words, plus lockstep's own (docs/qemu-colo-compare.md maps one
// onto the other).
#pragma once

#include <string>
#include <vector>

#include "dataplane/chardev/colo_runner.h"

namespace lockstep::colo {

struct Options {
  chardev::RunnerConfig runner;
  std::vector<std::string> notes;  // accepted-but-ignored properties, for the log
  // lockstep's control side; empty: none (the default: no socket, no listener).
  std::string ctrl_socket;     // ctrl_socket=PATH: lockstepctl's admin socket
  std::string ctrl_ro_socket;  // ctrl_ro_socket=PATH: read-only socket (with ctrl_socket)
  std::string metrics;         // metrics=tcp:HOST:PORT: Prometheus /metrics
};

// Parses argv[1..]. Returns false with `error` (one line) on a bad command line.
bool parse_options(int argc, char** argv, Options& out, std::string& error);

// The usage text; `command` is how the properties are introduced ("lockstep-colo",
// "lockstepd --colo-compare").
std::string usage(const std::string& command = "lockstep-colo");

// The whole program of lockstep-colo and `lockstepd --colo-compare`: parses `words`
// (the properties), answers --help and --version, builds the runner and runs it until
// SIGINT/SIGTERM (READY to systemd once the sockets are up). `prog` prefixes messages,
// `command` introduces the properties in the usage. Returns the exit status: 2 for a
// bad command line, 1 when the runner cannot start.
int run_main(const std::vector<std::string>& words, const std::string& prog,
             const std::string& command, const std::string& version);

}  // namespace lockstep::colo
