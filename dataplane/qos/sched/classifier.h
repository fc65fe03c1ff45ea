// Filters that map a packet to a class, first match wins, else the default class. A
// filter matches on any of: source/destination prefix (IPv4 or IPv6), source/destination
// /either port range, IP protocol, DSCP, address family, the traffic's role in lockstep
// and its guest (both given by the caller). Pure C++; frames are parsed with compare/parse.h.
//
// Ownership: a Classifier belongs to the thread that owns the port's Scheduler; it is
// rebuilt between bursts when the configuration changes. classify() allocates nothing.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "compare/parse.h"
#include "dataplane/qos/sched/sched_types.h"

namespace lockstep::sched {

// What a filter can look at, extracted once per packet.
struct FlowFields {
  bool is_ip = false;
  bool is_v4 = false;
  IpAddr src, dst;
  uint8_t proto = 0;
  bool has_ports = false;  // TCP, UDP or SCTP with its ports (not a later fragment)
  uint16_t sport = 0, dport = 0;
  uint8_t dscp = 0;
  TrafficRole role = TrafficRole::other;
  uint16_t guest = kNoGuest;  // the guest whose NIC the frame leaves (lockstepd's index)
};

// An address prefix; IPv4 prefixes are kept on the IPv4-mapped form (::ffff:a.b.c.d/96+n)
// and match only IPv4 packets; IPv6 prefixes match only IPv6 packets.
struct IpPrefix {
  uint64_t hi = 0, lo = 0;        // network, big-endian words of the 16-byte address
  uint64_t mask_hi = 0, mask_lo = 0;
  bool v4 = false;
  uint8_t len = 0;                // as written (0..32 for IPv4, 0..128 for IPv6)

  static IpPrefix make(const IpAddr& a, uint8_t len, bool v4);
  bool contains(const IpAddr& a, bool a_is_v4) const;
  IpAddr network() const;
};

struct PortRange {
  uint16_t lo = 0, hi = 65535;
  bool contains(uint16_t p) const { return p >= lo && p <= hi; }
};

struct Match {
  enum : uint32_t {
    kSrc = 1u << 0, kDst = 1u << 1, kSport = 1u << 2, kDport = 1u << 3, kPort = 1u << 4,
    kProto = 1u << 5, kDscp = 1u << 6, kRole = 1u << 7, kFamily = 1u << 8,
    kGuest = 1u << 9,
  };
  uint32_t fields = 0;  // which of the members below are checked; 0 matches everything
  IpPrefix src, dst;
  PortRange sport, dport, port;  // port: either the source or the destination port
  uint8_t proto = 0;
  uint64_t dscp_set = 0;         // bit d set: DSCP d matches
  TrafficRole role = TrafficRole::other;
  bool family_v6 = false;
  uint16_t guest = kNoGuest;                    // `guest NAME`, resolved to its index
  std::array<char, kMaxGuestName + 1> guest_name{};  // as written (shown, read back)

  bool matches(const FlowFields& f) const;
};

struct Filter {
  uint32_t pref = 0;  // order: lower first; unique within a port
  Match match;
  ClassId cls = kNoClass;
};

class Classifier {
 public:
  static constexpr uint32_t kMaxFilters = 256;

  // ---- control path
  std::string add(const Filter& f);  // kept sorted by pref; error if full or pref in use
  bool remove(uint32_t pref);
  void clear() { n_ = 0; }
  void set_default(ClassId c) { default_ = c; }
  ClassId default_class() const { return default_; }
  std::span<const Filter> filters() const { return {filters_.data(), n_}; }

  // ---- dataplane
  ClassId classify(const FlowFields& f) const {
    for (uint32_t i = 0; i < n_; ++i)
      if (filters_[i].match.matches(f)) return filters_[i].cls;
    return default_;
  }
  // Parses the frame (compare/parse.h) and classifies it; frames that do not parse as
  // IP still match filters on role alone.
  ClassId classify_frame(const uint8_t* frame, uint32_t len, TrafficRole role,
                         uint16_t guest = kNoGuest) const {
    return classify(fields_of(frame, len, role, guest));
  }
  static FlowFields fields_of(const uint8_t* frame, uint32_t len, TrafficRole role,
                              uint16_t guest = kNoGuest);

 private:
  std::array<Filter, kMaxFilters> filters_{};
  uint32_t n_ = 0;
  ClassId default_ = kNoClass;
};

}  // namespace lockstep::sched
