// Canonical flow key: both directions of a connection, and the PVM's and the SVM's
// copies of it, map to one key. The two endpoints are ordered (lower address/port
// first), so the key and its hash are symmetric by construction.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "compare/parse.h"

namespace lockstep {

struct FlowKey {
  IpAddr addr_lo, addr_hi;
  uint16_t port_lo = 0, port_hi = 0;
  uint16_t vlan = 0;  // outer VLAN id (12 bits), 0 when untagged
  uint8_t proto = 0;
  uint8_t pad_ = 0;   // keeps the struct free of indeterminate padding bytes

  // Byte-wise: the layout has no padding, so this is memberwise equality in one compare.
  friend bool operator==(const FlowKey& a, const FlowKey& b) {
    return std::memcmp(&a, &b, sizeof(FlowKey)) == 0;
  }
};
static_assert(sizeof(FlowKey) == 40);
static_assert(std::has_unique_object_representations_v<FlowKey>);

// Key of an IP frame, with whether the frame travels from the `lo` endpoint to the
// `hi` one. Fragments that are not first carry no ports: their key has ports zero and
// they are looked up through the fragment table instead.
FlowKey flow_key_of(const ParsedFrame& f, bool* from_lo = nullptr);

// Symmetric by construction (the key is canonical); a 64-bit mix good for power-of-two
// tables. Same value on every host and run (no random seed), so replay is repeatable.
uint64_t flow_hash(const FlowKey& k);

// "tcp 10.0.0.1:80 <-> 10.0.0.2:41000" (VLAN shown when set). For events and logs.
std::string to_string(const FlowKey& k);
std::string to_string(const IpAddr& a);

}  // namespace lockstep
