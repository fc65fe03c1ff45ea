// lockstep-colo: lockstep's compare engine as a drop-in for QEMU's colo-compare object,
// speaking its chardev framing and notify_dev protocol (docs/qemu-colo-compare.md).
#include <signal.h>

#include <cstdio>

#include "dataplane/chardev/colo_runner.h"
#include "dataplane/chardev/colo_options.h"

#ifndef LOCKSTEP_VERSION
#define LOCKSTEP_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  using namespace lockstep;
  colo::Options opt;
  std::string error;
  if (!colo::parse_options(argc, argv, opt, error)) {
    std::fprintf(stderr, "lockstep-colo: %s\n", error.c_str());
    return 2;
  }
  if (opt.help) {
    std::fputs(colo::usage().c_str(), stdout);
    return 0;
  }
  if (opt.version) {
    std::printf("lockstep-colo %s\n", LOCKSTEP_VERSION);
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  for (const auto& n : opt.notes) std::fprintf(stderr, "lockstep-colo: %s\n", n.c_str());
  auto runner = chardev::ColoRunner::create(opt.runner, error);
  if (!runner) {
    std::fprintf(stderr, "lockstep-colo: %s\n", error.c_str());
    return 1;
  }
  std::fprintf(stderr, "lockstep-colo: %s ready: primary_in=%s secondary_in=%s outdev=%s%s%s\n",
               opt.runner.id.c_str(), runner->bound("primary_in").c_str(),
               runner->bound("secondary_in").c_str(), runner->bound("outdev").c_str(),
               opt.runner.has_notify ? " notify_dev=" : "",
               opt.runner.has_notify ? runner->bound("notify_dev").c_str() : "");
  return runner->run();
}
