// Cluster membership and the failover decision taken from corosync (docs/design.md §7
// "cluster", docs/cluster.md).
//
// ClusterCore is the state machine alone: who promotes, split-brain resolution, quorum
// gating, link watching ("yellow") and the resend of our own messages. It knows nothing
// of corosync: the adapter (cluster_cpg.*) feeds it the group's configuration changes,
// the delivered messages (totally ordered, CPG_TYPE_AGREED), the quorum flag, the
// watched link's state and the time, and carries out what it returns. Pure: time is an
// argument; single-threaded (the adapter holds a mutex around it).
//
// Wire format on the group: 8 bytes, be32 code then be32 sequence (the sender's counter,
// so that the sender recognises its own copy). Anything else is junk: counted, ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compare/types.h"
#include "ctrl/json_limits.h"

namespace lockstep::ctrl {

enum class ClusterMsg : uint32_t {
  hello = 1,     // this member is up (sent on joining the group)
  failover = 2,  // "I take over": the first FAILOVER delivered wins
  failed = 3,    // "I am failed": lost the race, or my watched link stayed down
  yellow = 4,    // my watched link is down
  unyellow = 5,  // my watched link is back
  shutdown = 6,  // I am leaving on purpose (stop), not failing
};
inline constexpr size_t kClusterMsgSize = 8;
std::string_view to_string(ClusterMsg m);
bool cluster_msg_valid(uint32_t code);
void encode_cluster_msg(ClusterMsg m, uint32_t seq, uint8_t out[kClusterMsgSize]);

// Which VM of the pair this host runs (and so which side survives if this host does).
enum class ClusterRole : uint8_t { primary, secondary };
std::string_view to_string(ClusterRole r);
bool cluster_role_from_string(std::string_view s, ClusterRole& out);

enum class ClusterState : uint8_t {
  joining,   // not in the group (corosync not reached yet, or lost)
  waiting,   // in the group, no peer
  paired,    // in the group with the peer
  blocked,   // the peer failed: acted on after settle_ns, and only with quorum
  survivor,  // failover decided: this side's VM survives
  failed,    // this side is failed (the peer's FAILOVER came first, or yellow): never promotes
};
std::string_view to_string(ClusterState s);

struct ClusterMember {
  uint32_t nodeid = 0;
  uint32_t pid = 0;
  bool operator==(const ClusterMember&) const = default;
};

struct ClusterCoreConfig {
  ClusterRole role = ClusterRole::primary;
  uint64_t resend_ns = 100'000'000;      // resend our message until we see our own copy
  uint64_t yellow_ns = 10'000'000'000;   // watched link down this long, peer's up: we fail
  // A peer failure is acted on this long after it is seen, with the quorum of that
  // moment: corosync reports membership (CPG) and quorum on separate connections, in no
  // promised order, so a minority side may see the peer leave before it sees its quorum go.
  uint64_t settle_ns = 500'000'000;
};

class ClusterCore {
 public:
  // What the caller must do after a call: log/emit the notes; apply a failover decision.
  struct Output {
    std::vector<std::string> notes;  // one event each (kind `cluster`)
    std::optional<Survivor> decide;  // fail over now, this survivor
    std::string cause;
  };
  // A message to multicast now (CPG_TYPE_AGREED).
  struct Send {
    ClusterMsg msg;
    uint32_t seq;
  };

  explicit ClusterCore(ClusterCoreConfig cfg) : cfg_(cfg) {}

  // We joined the group as `self` (cpg_local_get, our pid). Queues HELLO.
  void joined(ClusterMember self, uint64_t now_ns, Output& out);
  // corosync is gone (dispatch failed): membership and quorum are unknown until rejoined.
  void disconnected(uint64_t now_ns, Output& out);
  // A configuration change of the group: the full member list, who left, who joined.
  void config_change(std::span<const ClusterMember> members, std::span<const ClusterMember> left,
                     std::span<const ClusterMember> joined, uint64_t now_ns, Output& out);
  // The quorum flag and the nodes of the quorate membership (votequorum's view).
  void quorum(bool quorate, std::span<const uint32_t> view, uint64_t now_ns, Output& out);
  // A message delivered by the group (in total order), ours included.
  void deliver(ClusterMember from, std::span<const uint8_t> bytes, uint64_t now_ns, Output& out);
  // The watched link went down (true) or came back (false).
  void link(bool down, uint64_t now_ns, Output& out);
  // Asks to take over (an operator, pacemaker's promote). False and `error` when this side
  // may not: already decided, failed, no quorum, not in the group.
  bool request_failover(const std::string& cause, uint64_t now_ns, Output& out, std::string& error);
  // Leaving on purpose: queue SHUTDOWN.
  void shutdown(uint64_t now_ns);
  // Timers: the yellow deadline. Call at least every resend_ns.
  void tick(uint64_t now_ns, Output& out);
  // Messages due now (first sends and resends); marks them sent at now_ns.
  void due(uint64_t now_ns, std::vector<Send>& out);

  ClusterState state() const { return state_; }
  ClusterRole role() const { return cfg_.role; }
  bool quorate() const { return quorate_; }
  bool peer_present() const { return !peers_.empty(); }
  const std::vector<ClusterMember>& members() const { return members_; }
  size_t outbox_size() const { return outbox_.size(); }
  Json to_json(uint64_t now_ns) const;

  struct Counters {
    uint64_t sent = 0, resent = 0, delivered = 0, own_copies = 0, junk_length = 0,
             junk_code = 0, duplicates = 0, late_failover = 0, config_changes = 0,
             peer_failures = 0;
  };
  const Counters& counters() const { return c_; }

 private:
  struct Pending {
    ClusterMsg msg;
    uint32_t seq;
    uint64_t last_sent_ns;
    bool sent_once;
  };
  bool in_group() const { return state_ != ClusterState::joining; }
  bool final() const { return state_ == ClusterState::survivor || state_ == ClusterState::failed; }
  bool is_self(ClusterMember m) const { return joined_ && m == self_; }
  void queue(ClusterMsg m);
  void decide(const std::string& cause, uint64_t now_ns, Output& out);
  void fail_self(const std::string& why, uint64_t now_ns, Output& out);
  void peer_failed(const std::string& why, bool absent, uint32_t nodeid, uint64_t now_ns,
                   Output& out);
  void settle(uint64_t now_ns, Output& out);  // waiting/paired from membership

  ClusterCoreConfig cfg_;
  ClusterState state_ = ClusterState::joining;
  ClusterMember self_;
  bool joined_ = false;
  bool quorate_ = false;
  std::vector<ClusterMember> members_, peers_;
  struct SeqSeen {
    ClusterMember from;
    uint32_t seq;
  };
  std::vector<SeqSeen> seen_;  // the highest sequence delivered per other member
  std::vector<Pending> outbox_;
  uint32_t next_seq_ = 1;
  bool failover_delivered_ = false;  // a FAILOVER was delivered (the race is over)
  bool pending_failure_ = false;     // blocked: decide once settled and quorate
  bool pending_absent_ = false;      // ... and only while the failed peer stays away
  uint32_t pending_nodeid_ = 0;
  uint64_t pending_since_ = 0;
  bool pending_noted_ = false;       // "no quorum" said once
  std::string pending_cause_;
  std::vector<uint32_t> view_;
  bool peer_shutdown_ = false;       // the peer said SHUTDOWN before leaving
  bool peer_hello_ = false;
  bool yellow_ = false, peer_yellow_ = false;
  uint64_t yellow_since_ = 0;        // our watched link down since
  uint64_t yellow_alone_since_ = 0;  // ... and, since then, a peer present and not yellow
  std::string decision_;             // what was decided and why
  uint64_t decided_ns_ = 0;
  Counters c_;
};

// What the ctrl commands see of a cluster adapter (`status`, `cluster failover`).
class ClusterControl {
 public:
  virtual ~ClusterControl() = default;
  virtual Json status(uint64_t now_ns) = 0;
  // Asks the group to let this side take over (first FAILOVER delivered wins). True when
  // sent; the decision itself is an event (`failover`, or `cluster` saying who won).
  virtual bool request_failover(const std::string& cause, std::string& error) = 0;
};

}  // namespace lockstep::ctrl
