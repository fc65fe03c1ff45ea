#include "compare/counters.h"

#include <numeric>

namespace lockstep {

namespace {
uint64_t sum(const std::array<uint64_t, kDropReasonCount>& a) {
  return std::accumulate(a.begin(), a.end(), uint64_t{0});
}
}  // namespace

uint64_t Counters::released_total() const {
  return std::accumulate(released.begin(), released.end(), uint64_t{0});
}

uint64_t Counters::released_pvm() const {
  return released_total() - released[static_cast<unsigned>(ReleaseReason::svm_survivor)];
}

uint64_t Counters::pvm_dropped_total() const { return sum(pvm_dropped); }
uint64_t Counters::svm_dropped_total() const { return sum(svm_dropped); }
uint64_t Counters::ingress_dropped_total() const { return sum(ingress_dropped); }

std::string Counters::conservation_error() const {
  std::string err;
  auto check = [&err](const char* what, uint64_t in, uint64_t out) {
    if (in != out) {
      err += std::string(what) + ": in " + std::to_string(in) + " != fates " +
             std::to_string(out) + "; ";
    }
  };
  check("pvm", pvm_in, released_pvm() + held_pvm + pvm_dropped_total());
  check("svm", svm_in,
        svm_freed + svm_dropped_total() + held_svm +
            released[static_cast<unsigned>(ReleaseReason::svm_survivor)]);
  check("ingress", ingress_in, svm_forwarded + ingress_dropped_total() + held_ingress);
  return err;
}

Counters& Counters::operator+=(const Counters& o) {
#define LOCKSTEP_X(name, help) name += o.name;
  LOCKSTEP_SCALAR_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  for (unsigned i = 0; i < released.size(); ++i) released[i] += o.released[i];
  for (unsigned i = 0; i < kDropReasonCount; ++i) {
    pvm_dropped[i] += o.pvm_dropped[i];
    svm_dropped[i] += o.svm_dropped[i];
    ingress_dropped[i] += o.ingress_dropped[i];
  }
  for (unsigned i = 0; i < checkpoint_reason.size(); ++i) {
    checkpoint_reason[i] += o.checkpoint_reason[i];
  }
  for (unsigned i = 0; i < kParseStatusCount; ++i) {
    parse_pvm[i] += o.parse_pvm[i];
    parse_svm[i] += o.parse_svm[i];
    parse_ingress[i] += o.parse_ingress[i];
  }
  for (unsigned i = 0; i < kLatencyBuckets; ++i) {
    ack_wait_hist[i] += o.ack_wait_hist[i];
    hold_hist[i] += o.hold_hist[i];
    svm_lag_hist[i] += o.svm_lag_hist[i];
  }
  for (unsigned i = 0; i < kMaxNormRules; ++i) {
    normalize[i].spans += o.normalize[i].spans;
    normalize[i].bytes += o.normalize[i].bytes;
    normalize[i].offsets += o.normalize[i].offsets;
  }
  if (!normalize_names) normalize_names = o.normalize_names;
  return *this;
}

std::vector<std::pair<std::string, uint64_t>> Counters::flatten() const {
  std::vector<std::pair<std::string, uint64_t>> out;
#define LOCKSTEP_X(name, help) out.emplace_back(#name, name);
  LOCKSTEP_SCALAR_COUNTERS(LOCKSTEP_X)
#undef LOCKSTEP_X
  for (unsigned i = 0; i < kReleaseReasonCount; ++i) {
    out.emplace_back("released." + std::string(to_string(static_cast<ReleaseReason>(i))),
                     released[i]);
  }
  auto drops = [&out](const char* prefix, const std::array<uint64_t, kDropReasonCount>& a) {
    for (unsigned i = 0; i < kDropReasonCount; ++i) {
      out.emplace_back(std::string(prefix) + "." +
                           std::string(to_string(static_cast<DropReason>(i))),
                       a[i]);
    }
  };
  drops("pvm_dropped", pvm_dropped);
  drops("svm_dropped", svm_dropped);
  drops("ingress_dropped", ingress_dropped);
  for (unsigned i = 0; i < kCheckpointReasonCount; ++i) {
    out.emplace_back(
        "checkpoint_reason." + std::string(to_string(static_cast<CheckpointReason>(i))),
        checkpoint_reason[i]);
  }
  auto parses = [&out](const char* prefix, const std::array<uint64_t, kParseStatusCount>& a) {
    for (unsigned i = 0; i < kParseStatusCount; ++i) {
      out.emplace_back(std::string(prefix) + "." +
                           std::string(to_string(static_cast<ParseStatus>(i))),
                       a[i]);
    }
  };
  parses("parse_pvm", parse_pvm);
  parses("parse_svm", parse_svm);
  parses("parse_ingress", parse_ingress);
  auto hist = [&out](const char* prefix, const LatencyHist& h) {
    for (unsigned i = 0; i < kLatencyBuckets; ++i) {
      const bool last = i + 1 == kLatencyBuckets;
      out.emplace_back(std::string(prefix) + (last ? ".ge_" : ".lt_") +
                           std::to_string(uint64_t{1} << (last ? i - 1 : i)),
                       h[i]);
    }
  };
  hist("ack_wait_us", ack_wait_hist);
  hist("hold_us", hold_hist);
  hist("svm_lag_us", svm_lag_hist);
  if (normalize_names) {
    for (unsigned i = 0; i < normalize_names->size() && i < kMaxNormRules; ++i) {
      const std::string p = "normalize." + (*normalize_names)[i] + ".";
      out.emplace_back(p + "spans", normalize[i].spans);
      out.emplace_back(p + "bytes", normalize[i].bytes);
      out.emplace_back(p + "offsets", normalize[i].offsets);
    }
  }
  return out;
}

}  // namespace lockstep
