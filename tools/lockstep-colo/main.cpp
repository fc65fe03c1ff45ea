// lockstep-colo: lockstep's compare engine as a drop-in for QEMU's colo-compare object,
// speaking its chardev framing and notify_dev protocol (docs/qemu-colo-compare.md).
// `lockstepd --colo-compare` runs the same program.
#include <string>
#include <vector>

#include "common/cli.h"
#include "dataplane/chardev/colo_options.h"

int main(int argc, char** argv) {
  const std::vector<std::string> words(argv + 1, argv + argc);
  return lockstep::colo::run_main(words, "lockstep-colo", "lockstep-colo", lockstep::cli::version());
}
