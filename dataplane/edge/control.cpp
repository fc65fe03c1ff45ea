#include "dataplane/edge/control.h"

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <array>

namespace lockstep::dp {

void SimulatedCheckpointer::request(const CheckpointRequest&, uint64_t global_epoch,
                                    uint64_t now_ns) {
  if (!pending_) pending_ = std::make_pair(now_ns + latency_ns_, global_epoch);
}

bool SimulatedCheckpointer::poll_done(uint64_t now_ns, uint64_t& epoch) {
  if (!pending_ || now_ns < pending_->first) return false;
  epoch = pending_->second;
  pending_.reset();
  return true;
}

bool create_worker_rings(unsigned worker, unsigned size, WorkerRings& out, std::string& error) {
  std::string a = "ls_ctl_to_w" + std::to_string(worker);
  std::string b = "ls_ctl_from_w" + std::to_string(worker);
  unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ;
  out.to_worker = rte_ring_create_elem(a.c_str(), sizeof(CtrlMsg), size, SOCKET_ID_ANY, flags);
  out.from_worker = rte_ring_create_elem(b.c_str(), sizeof(ReqMsg), size, SOCKET_ID_ANY, flags);
  if (!out.to_worker || !out.from_worker) {
    error = "cannot create control rings for worker " + std::to_string(worker) + ": " +
            rte_strerror(rte_errno);
    free_worker_rings(out);
    return false;
  }
  return true;
}

void free_worker_rings(WorkerRings& r) {
  rte_ring_free(r.to_worker);
  rte_ring_free(r.from_worker);
  r = {};
}

ControlPlane::ControlPlane(std::vector<WorkerRings> rings, std::vector<std::string> names,
                           std::vector<std::unique_ptr<CheckpointSink>> sinks)
    : rings_(std::move(rings)) {
  guests_.resize(sinks.size());
  for (size_t g = 0; g < sinks.size(); ++g) {
    guests_[g].name = g < names.size() ? names[g] : "guest" + std::to_string(g);
    guests_[g].sink = std::move(sinks[g]);
  }
}

bool ControlPlane::broadcast(const CtrlMsg& m) {
  bool ok = true;
  for (auto& r : rings_) {
    if (rte_ring_sp_enqueue_elem(r.to_worker, const_cast<CtrlMsg*>(&m), sizeof m) != 0) {
      ++broadcast_failures_;
      ok = false;
    }
  }
  return ok;
}

void ControlPlane::add_guest(std::string name, std::unique_ptr<CheckpointSink> sink) {
  GuestControl g;
  g.name = std::move(name);
  g.sink = std::move(sink);
  guests_.push_back(std::move(g));
}

void ControlPlane::remove_guest(unsigned g) {
  if (g < guests_.size()) guests_[g].removed = true;
}

bool ControlPlane::room_for_broadcast() const {
  for (const auto& r : rings_)
    if (rte_ring_free_count(r.to_worker) == 0) return false;
  return true;
}

void ControlPlane::request(unsigned guest, const CheckpointRequest& req, uint64_t now_ns) {
  if (guest >= guests_.size() || guests_[guest].removed) return;
  GuestControl& g = guests_[guest];
  if (observer_ != nullptr) observer_->on_request(guest, req, g.outstanding, now_ns);
  if (g.outstanding) {
    ++g.coalesced;
    return;
  }
  g.outstanding = true;
  g.requested_ns = now_ns;
  ++g.requests_sent;
  g.sink->request(req, g.epoch, now_ns);
}

uint64_t ControlPlane::requests_sent() const {
  uint64_t n = 0;
  for (const auto& g : guests_) n += g.requests_sent;
  return n;
}

uint64_t ControlPlane::requests_coalesced() const {
  uint64_t n = 0;
  for (const auto& g : guests_) n += g.coalesced;
  return n;
}

uint64_t ControlPlane::checkpoints_done() const {
  uint64_t n = 0;
  for (const auto& g : guests_) n += g.done;
  return n;
}

bool ControlPlane::poll(uint64_t now_ns) {
  bool did = false;
  std::array<ReqMsg, 16> msgs;
  for (auto& r : rings_) {
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst_elem(r.from_worker, msgs.data(), sizeof(ReqMsg),
                                               msgs.size(), nullptr)) > 0) {
      did = true;
      for (unsigned i = 0; i < n; ++i) request(msgs[i].guest, msgs[i].req, now_ns);
    }
  }
  // Asked even with nothing outstanding: a checkpointer may checkpoint by itself
  // (periodic, or QEMU's own), and every engine of the guest then releases and rebases.
  for (unsigned gi = 0; gi < guests_.size(); ++gi) {
    GuestControl& g = guests_[gi];
    uint64_t epoch = 0;
    if (g.removed || !g.sink->poll_done(now_ns, epoch)) continue;
    did = true;
    if (observer_ != nullptr) {
      observer_->on_done(gi, epoch,
                         g.outstanding && now_ns > g.requested_ns ? now_ns - g.requested_ns : 0,
                         now_ns);
    }
    g.outstanding = false;
    ++g.done;
    ++g.epoch;
    CtrlMsg m;
    m.kind = CtrlMsg::checkpoint_done;
    m.guest = gi;
    m.epoch = epoch;
    broadcast(m);
  }
  return did;
}

}  // namespace lockstep::dp
