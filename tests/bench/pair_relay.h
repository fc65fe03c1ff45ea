// The floor of bench_qemu: the least work any colo-compare does on QEMU's chardev
// sockets, with no compare at all. It listens where an instance would (dir/NAME-pri,
// -sec, -out, -ntf), cuts both input streams into frames by their be32 length words and
// writes the i-th PVM frame to outdev, as is, once the i-th SVM frame is in: every socket
// copy and wake-up that a real instance pays, nothing else. It polls its sockets without
// sleeping (as lockstep-colo does within poll_us). Its pairs/s and latency are the most
// that this transport allows on the machine: the bound of any drop-in, lockstep-colo and
// QEMU alike.
#pragma once

#include "tests/qemu/colo_peer.h"

namespace lockstep::bench {

// Forks the relay; its pid goes to inst.pid (qtest::stop() ends it). Headers are 4
// bytes (no vnet_hdr_len word).
bool start_pair_relay(qtest::Instance& inst, std::string& error);

}  // namespace lockstep::bench
