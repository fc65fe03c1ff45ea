// lockstep-replay: the compare engine on capture files, in virtual time.
// Exit status: 0 success, 2 bad usage or input, 3 conservation law or engine contract
// broken. See tools/replay/README.md for the outputs.
#include <array>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "compare/engine.h"
#include "tools/replay/merge.h"
#include "tools/replay/options.h"
#include "tools/replay/pcap_io.h"
#include "tools/replay/replay.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitInput = 2;
constexpr int kExitBroken = 3;

int fail(const std::string& msg, int code) {
  std::fprintf(stderr, "lockstep-replay: %s\n", msg.c_str());
  return code;
}

int run(int argc, char** argv) {
  using namespace lockstep;
  using namespace lockstep::replay;
  Options opt;
  std::string error;
  if (int rc = parse_args(argc, argv, opt); rc >= 0) return rc;
  if (opt.list_settings) {
    std::fputs(settings_listing().c_str(), stdout);
    return kExitOk;
  }

  Settings settings;
  if (!build_settings(opt, settings, error)) return fail(error, kExitInput);
  std::unique_ptr<Engine> engine = Engine::create(settings, error);
  if (!engine) return fail("engine settings rejected: " + error, kExitInput);

  Capture ingress, pvm, svm;
  if (!read_capture(opt.primary, pvm, error)) return fail(error, kExitInput);
  if (!read_capture(opt.secondary, svm, error)) return fail(error, kExitInput);
  if (!opt.ingress.empty() && !read_capture(opt.ingress, ingress, error))
    return fail(error, kExitInput);
  for (const Capture* c : {&ingress, &pvm, &svm}) {
    if (c->frames.size() > std::numeric_limits<uint32_t>::max())
      return fail(c->path + ": more than 2^32-1 frames", kExitInput);
  }

  PcapWriter released, svm_ingress;
  OutputFile events;
  if (!released.open(opt.released, error)) return fail(error, kExitInput);
  if (!opt.svm_ingress.empty() && !svm_ingress.open(opt.svm_ingress, error))
    return fail(error, kExitInput);
  if (!opt.events.empty() && !events.open(opt.events, error)) return fail(error, kExitInput);

  std::array<std::vector<uint64_t>, 3> ts;
  std::array<Capture*, 3> caps{&ingress, &pvm, &svm};
  for (size_t s = 0; s < 3; ++s) {
    ts[s].reserve(caps[s]->frames.size());
    for (const Frame& f : caps[s]->frames) ts[s].push_back(f.ts_ns);
  }
  const std::vector<MergedFrame> order = merge_by_time(ts);
  ts = {};

  Sinks sinks;
  sinks.released = &released;
  sinks.svm_ingress = svm_ingress.is_open() ? &svm_ingress : nullptr;
  sinks.events = events.is_open() ? &events : nullptr;
  Replayer replayer(*engine, caps, opt.checkpoint_latency_ns, sinks);
  const ReplayResult r = replayer.run(order);

  if (!released.commit(error)) return fail(error, kExitInput);
  if (sinks.svm_ingress != nullptr && !svm_ingress.commit(error)) return fail(error, kExitInput);
  if (sinks.events != nullptr && !events.commit(error)) return fail(error, kExitInput);

  if (!r.drained) {
    std::fprintf(stderr,
                 "lockstep-replay: note: %llu frames still held at the end with no deadline "
                 "left to fire\n",
                 static_cast<unsigned long long>(r.held_frames_at_end));
  }
  if (!r.contract.empty()) return fail("engine contract broken: " + r.contract, kExitBroken);
  if (!r.conservation.empty())
    return fail("conservation law failed: " + r.conservation, kExitBroken);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::bad_alloc&) {
    return fail("out of memory (every frame of the inputs is loaded into memory)", kExitInput);
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what(), kExitBroken);
  }
}
