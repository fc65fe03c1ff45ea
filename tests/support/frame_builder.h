// Test frames from a description: Ethernet (with 802.1Q / QinQ tags), IPv4 (with
// options) or IPv6 (optionally with a hop-by-hop header), TCP (with options), UDP, ICMP,
// ICMPv6, and raw non-IP payloads. Checksums are computed (IPv4 header, L4 with the
// pseudo-header). Also: IPv4/IPv6 fragmentation, an independent L4 checksum check
// for frames the engine rewrote, and `Conversation`, which keeps the sequence numbers
// of one TCP connection as seen by the client, the PVM and the SVM.
//
// This code is deliberately independent of compare/parse.cpp: it decodes with its own
// few lines so that a parser bug cannot hide a rewrite bug.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "compare/parse.h"

namespace lockstep::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

// Addresses without going through compare/ (IPv4 as ::ffff:a.b.c.d, as IpAddr stores it).
IpAddr ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
IpAddr ip4_host(uint32_t host_order);
// 2001:db8::<low> with the last 32 bits set to `low`.
IpAddr ip6_doc(uint32_t low);
bool is_mapped_v4(const IpAddr& a);

struct TcpOptions {
  std::optional<uint16_t> mss;
  std::optional<uint8_t> wscale;
  bool sack_permitted = false;
  std::optional<std::pair<uint32_t, uint32_t>> timestamp;  // TSval, TSecr
  std::vector<std::pair<uint32_t, uint32_t>> sack;         // left, right edges
};

struct FrameSpec {
  Mac src_mac{0x02, 0, 0, 0, 0, 0x01};
  Mac dst_mac{0x02, 0, 0, 0, 0, 0x02};
  std::vector<uint16_t> vlans;  // TCIs, outer first; 2 tags -> outer TPID 0x88a8
  // Non-IP frame: when set, the frame is L2 + `payload` with this ethertype.
  std::optional<uint16_t> raw_ethertype;

  IpAddr src, dst;  // IPv4 when both are IPv4-mapped, else IPv6
  uint8_t proto = kProtoTcp;
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = kTcpAck;
  uint16_t window = 65535;
  TcpOptions tcp;
  uint16_t ip_id = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  bool dont_fragment = false;
  std::vector<uint8_t> ip_options;  // IPv4 options, padded to 4 bytes with EOL
  bool ip6_hop_by_hop = false;      // IPv6: an 8-byte hop-by-hop header (PadN)
  uint8_t icmp_type = 8, icmp_code = 0;  // ICMPv6 callers set 128 (echo request)
  uint16_t icmp_id = 0, icmp_seq = 0;
  std::vector<uint8_t> payload;
  bool pad_to_min = false;  // pad the Ethernet frame to 60 bytes (padding after IP)
};

// Builds the frame; throws std::invalid_argument for a description that cannot be
// encoded (TCP options over 40 bytes, IPv4 options over 40 bytes, mixed families).
Bytes build_frame(const FrameSpec& spec);

// Splits an IP frame into fragments carrying at most `max_fragment_data` bytes of the
// IP payload each (rounded down to a multiple of 8). IPv4: MF/offset and header
// checksum; IPv6: a fragment header (identification = the IPv4-style id given, or 0x1000
// + ip_id when the frame has none) after the base header and any hop-by-hop header.
// Returns the frame unchanged (one element) when it already fits.
std::vector<Bytes> fragment_frame(const Bytes& frame, size_t max_fragment_data,
                                  uint32_t ipv6_ident = 0x12345678);

// Layout of a frame as this file's own decoder sees it (IP, not fragmented).
struct Decoded {
  bool ok = false;
  bool ipv6 = false;
  size_t l3_off = 0, l4_off = 0, l3_end = 0;
  uint8_t proto = 0;
  // TCP
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::optional<std::pair<uint32_t, uint32_t>> timestamp;
  std::vector<std::pair<uint32_t, uint32_t>> sack;
  size_t payload_off = 0, payload_len = 0;
};
Decoded decode(const uint8_t* frame, size_t len);
inline Decoded decode(const Bytes& f) { return decode(f.data(), f.size()); }

// True when the IPv4 header checksum (if IPv4) and the TCP/UDP/ICMP/ICMPv6 checksum of
// an unfragmented IP frame are valid.
bool verify_l4_checksum(const uint8_t* frame, size_t len);
inline bool verify_l4_checksum(const Bytes& f) { return verify_l4_checksum(f.data(), f.size()); }

// Payload of `n` bytes, deterministic in (`seed`, stream offset): byte i is a function of
// seed and (offset + i), so two segmentations of the same stream give the same bytes.
Bytes stream_bytes(uint64_t seed, uint64_t offset, size_t n);

// One TCP connection between a client and a server VM, with the VM's two copies (PVM,
// SVM) using different ISNs. Stream offsets count payload bytes from 0 (the byte after
// the SYN). The client sees only the PVM: its ack numbers are in the PVM's space.
// Ingress frames are what the client sends (the SVM-bound copy the engine may rewrite).
enum class Vm : uint8_t { pvm, svm };

class Conversation {
 public:
  struct Params {
    IpAddr client = ip4(192, 0, 2, 10);
    IpAddr server = ip4(198, 51, 100, 20);
    uint16_t client_port = 40000, server_port = 80;
    uint32_t client_isn = 1000, pvm_isn = 500000, svm_isn = 900000;
    std::vector<uint16_t> vlans;
    // Timestamps on every segment when set: each side's TSval clock starts here and
    // advances by one per segment built.
    bool timestamps = false;
    uint32_t client_ts = 100, pvm_ts = 7000, svm_ts = 3000000;
  };

  explicit Conversation(const Params& p);
  const Params& params() const { return p_; }

  uint32_t vm_isn(Vm vm) const { return vm == Vm::pvm ? p_.pvm_isn : p_.svm_isn; }
  // Sequence number of stream offset `off` of the server's byte stream on `vm`.
  uint32_t vm_seq(Vm vm, uint64_t off) const {
    return vm_isn(vm) + 1 + static_cast<uint32_t>(off);
  }
  uint32_t client_seq(uint64_t off) const { return p_.client_isn + 1 + static_cast<uint32_t>(off); }

  // --- Specs (callers may tweak them before build_frame) ---
  // Client -> server; ack = PVM stream offset `ack_off` (ignored when no ACK flag).
  FrameSpec client_spec(uint8_t flags, uint64_t client_off, uint64_t ack_off,
                        std::span<const uint8_t> payload = {});
  // VM -> client at stream offset `off` with `payload`; ack = client offset `ack_off`.
  FrameSpec vm_spec(Vm vm, uint8_t flags, uint64_t off, uint64_t ack_off,
                    std::span<const uint8_t> payload = {});

  // --- Handshakes ---
  // Passive open (the client connects): client SYN, VM SYN/ACK, client ACK.
  Bytes client_syn();
  Bytes vm_synack(Vm vm);
  Bytes client_handshake_ack();
  // Active open (the VM connects): VM SYN, client SYN/ACK, VM ACK.
  Bytes vm_syn(Vm vm);
  Bytes client_synack();
  Bytes vm_handshake_ack(Vm vm);

  // --- Data and events (the server's stream offset is explicit, so callers can
  // segment, retransmit and overlap as they like) ---
  Bytes vm_data(Vm vm, uint64_t off, std::span<const uint8_t> payload);
  // Bytes [off, off+n) of the stream built with stream_bytes(seed).
  Bytes vm_stream(Vm vm, uint64_t off, size_t n, uint64_t seed = 1);
  Bytes vm_pure_ack(Vm vm, uint64_t off);
  Bytes vm_fin(Vm vm, uint64_t off);  // FIN|ACK at `off` (the stream's end)
  Bytes vm_rst(Vm vm, uint64_t off);
  // Client data at its own offset; acks the PVM stream up to `ack_off`.
  Bytes client_data(uint64_t client_off, std::span<const uint8_t> payload, uint64_t ack_off);
  // Pure ACK from the client acking PVM stream offset `ack_off`, optionally with SACK
  // blocks given as PVM stream offsets [left, right).
  Bytes client_ack(uint64_t client_off, uint64_t ack_off,
                   const std::vector<std::pair<uint64_t, uint64_t>>& sack_offs = {});
  Bytes client_fin(uint64_t client_off, uint64_t ack_off);

  // After a checkpoint the SVM is a copy of the PVM: its sequence numbers and its
  // timestamp clock become the PVM's.
  void rebase_svm() {
    p_.svm_isn = p_.pvm_isn;
    svm_ts_ = pvm_ts_;
  }

  // The TSval the named side put in its most recent segment (timestamps mode).
  uint32_t last_tsval(Vm vm) const { return vm == Vm::pvm ? pvm_ts_ - 1 : svm_ts_ - 1; }
  uint32_t last_client_tsval() const { return client_ts_ - 1; }

 private:
  void add_ts_client(FrameSpec& s);
  void add_ts_vm(Vm vm, FrameSpec& s);

  Params p_;
  uint32_t client_ts_, pvm_ts_, svm_ts_;
  uint16_t ip_id_ = 1;
};

}  // namespace lockstep::test
