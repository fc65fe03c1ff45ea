// The engine's conductor, the parts of its job that span every connection
// (engine_impl.h): divergence, checkpoint done (release the held output, rebase every
// connection), modes and the hybrid policy, failover, and the flush at shutdown.
#include <algorithm>

#include "compare/engine_impl.h"

namespace lockstep {

void EngineImpl::diverge(uint32_t ci, CheckpointReason reason, uint64_t now, uint32_t frame) {
  Conn& c = conns_[ci];
  c.diverged = true;
  ++conns_.cold(ci).divergences;
  if (cp_.request(reason, &c.key, now)) explain(ci, reason, frame, *cp_.pending());
}

void EngineImpl::release_all_held(ReleaseReason why) {
  const bool pvm_lost = cp_.failed_over && *cp_.failed_over == Survivor::secondary;
  for (uint32_t ci = conns_.oldest(); ci != kNil; ci = conns_.newer(ci)) {
    Conn& c = conns_[ci];
    while (c.pvm.head != kNil) {
      uint32_t idx = held_.pop(c.pvm);
      if (pvm_lost) out_.drop_frame(idx, DropReason::primary_lost);
      else out_.release_frame(idx, why);
    }
    while (c.svm.head != kNil) {
      uint32_t idx = held_.pop(c.svm);
      if (pvm_lost) {
        tcp_.translate_svm_output(c, held_[idx].data, held_[idx].len);
        out_.release_frame(idx, ReleaseReason::svm_survivor);
      } else {
        out_.drop_frame(idx, DropReason::svm_backlog_flushed);
      }
    }
    c.unmatched_pvm = c.unmatched_svm = 0;
  }
  while (unowned_.head != kNil) {
    uint32_t idx = held_.pop(unowned_);
    if (pvm_lost) out_.drop_frame(idx, DropReason::primary_lost);
    else out_.release_frame(idx, why);
  }
}

void EngineImpl::checkpoint_done(uint64_t epoch, uint64_t now) {
  out_.advance_now(now);
  if (!cp_.accept_done(epoch)) return;
  release_all_held(ReleaseReason::checkpoint);
  // The SVM is now a copy of the PVM: rebase every connection.
  for (uint32_t ci = conns_.oldest(); ci != kNil; ci = conns_.newer(ci)) {
    Conn& c = conns_[ci];
    c.diverged = false;
    tcp_.rebase(c);
    if (c.ingress.head != kNil) tcp_.flush_ingress(ci, true);
  }
  cp_.complete(epoch);
  hybrid_on_checkpoint(now);
  if (cp_.mode_after_checkpoint) {
    Mode m = *cp_.mode_after_checkpoint;
    cp_.mode_after_checkpoint.reset();
    if (m != cp_.mode) {
      cp_.mode = m;
      ++c_.mode_switches;
      if (m == Mode::buffer) cp_.buffer_since_ns = now;
    }
  }
}

void EngineImpl::hybrid_on_checkpoint(uint64_t now) {
  if (!t_.hybrid || cp_.mode != Mode::colo || cp_.mode_after_checkpoint) return;
  if (cp_.hybrid_note(now, t_.hybrid_window_ns)) {
    cp_.hybrid_active = true;
    set_mode(Mode::buffer, now);
  }
}

void EngineImpl::set_mode(Mode m, uint64_t now) {
  if (cp_.failed_over) return;
  if (m == cp_.mode) {
    cp_.mode_after_checkpoint.reset();
    return;
  }
  settings_.mode = std::string(to_string(m));
  switch (m) {
    case Mode::passthrough:
      release_all_held(ReleaseReason::passthrough);
      for (uint32_t ci = conns_.oldest(); ci != kNil; ci = conns_.newer(ci)) {
        if (conns_[ci].ingress.head != kNil) tcp_.flush_ingress(ci, true);
      }
      cp_.mode = m;
      ++c_.mode_switches;
      break;
    case Mode::buffer:
      // Held PVM output stays until the next checkpoint; SVM output is no longer needed.
      for (uint32_t ci = conns_.oldest(); ci != kNil; ci = conns_.newer(ci)) {
        Conn& c = conns_[ci];
        while (c.svm.head != kNil) {
          out_.drop_frame(held_.pop(c.svm), DropReason::svm_unmatched_passthrough);
        }
        c.diverged = true;
      }
      cp_.mode = m;
      cp_.buffer_since_ns = now;
      ++c_.mode_switches;
      break;
    case Mode::colo:
      // Comparing needs both VMs in step: resume at the next checkpoint.
      cp_.mode_after_checkpoint = Mode::colo;
      cp_.request(CheckpointReason::manual, nullptr, now);
      if (cp_.hybrid_active) cp_.hybrid_active = false;
      break;
  }
}

void EngineImpl::failover(Survivor s, uint64_t now) {
  out_.advance_now(now);
  if (cp_.failed_over) return;
  cp_.failed_over = s;
  ++c_.failovers;
  if (s == Survivor::primary) {
    release_all_held(ReleaseReason::failover);
    for (uint32_t ci = conns_.oldest(); ci != kNil; ci = conns_.newer(ci)) {
      Conn& c = conns_[ci];
      while (c.ingress.head != kNil) {
        out_.drop_frame(held_.pop(c.ingress), DropReason::svm_not_mirrored);
      }
    }
  } else {
    release_all_held(ReleaseReason::failover);  // PVM dropped, SVM released (see above)
    for (uint32_t ci = conns_.oldest(); ci != kNil; ci = conns_.newer(ci)) {
      if (conns_[ci].ingress.head != kNil) tcp_.flush_ingress(ci, true);
    }
  }
  cp_.mode = Mode::passthrough;
  cp_.clear_for_failover();
}

void EngineImpl::flush_all(uint64_t now) {
  out_.advance_now(now);
  const bool pvm_lost = cp_.failed_over && *cp_.failed_over == Survivor::secondary;
  for (uint32_t ci = conns_.oldest(); ci != kNil; ci = conns_.newer(ci)) {
    Conn& c = conns_[ci];
    while (c.pvm.head != kNil) {
      uint32_t idx = held_.pop(c.pvm);
      if (pvm_lost) out_.drop_frame(idx, DropReason::primary_lost);
      else out_.release_frame(idx, ReleaseReason::checkpoint);
    }
    while (c.svm.head != kNil) out_.drop_frame(held_.pop(c.svm), DropReason::svm_backlog_flushed);
    while (c.ingress.head != kNil) {
      out_.drop_frame(held_.pop(c.ingress), DropReason::svm_not_mirrored);
    }
    c.unmatched_pvm = c.unmatched_svm = 0;
  }
  while (unowned_.head != kNil) {
    uint32_t idx = held_.pop(unowned_);
    if (pvm_lost) out_.drop_frame(idx, DropReason::primary_lost);
    else out_.release_frame(idx, ReleaseReason::checkpoint);
  }
  frags_.discard_incomplete();
}


}  // namespace lockstep
