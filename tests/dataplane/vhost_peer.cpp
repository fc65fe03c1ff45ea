// Stand-in for the client and the two VMs in the vhost-user test: a second DPDK process
// with three net_virtio_user ports attached to lockstepd's net_vhost sockets. It opens a
// TCP connection (client SYN, PVM and SVM SYN/ACKs with different ISNs), sends identical
// data from both VMs and checks that exactly the PVM's frames come back on the client
// port; then detaches the SVM port, attaches it again and checks the traffic goes on.
//   vhost_peer DIR    (DIR holds ext.sock, pvm.sock, svm.sock)   exit 0 pass, 1 fail
#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support/frame_builder.h"

namespace {

using lockstep::test::Bytes;
using lockstep::test::Conversation;
using lockstep::test::Vm;

rte_mempool* g_pool = nullptr;
std::string g_dir;

enum Port { kExt, kPvm, kSvm };
const char* kNames[] = {"net_virtio_user0", "net_virtio_user1", "net_virtio_user2"};
const char* kSocks[] = {"ext.sock", "pvm.sock", "svm.sock"};
uint16_t g_port[3];

bool start(int i) {
  uint16_t id;
  if (rte_eth_dev_get_port_by_name(kNames[i], &id) != 0) return false;
  g_port[i] = id;
  rte_eth_conf conf{};
  if (rte_eth_dev_configure(id, 1, 1, &conf) != 0) return false;
  if (rte_eth_rx_queue_setup(id, 0, 256, SOCKET_ID_ANY, nullptr, g_pool) != 0) return false;
  if (rte_eth_tx_queue_setup(id, 0, 256, SOCKET_ID_ANY, nullptr) != 0) return false;
  return rte_eth_dev_start(id) == 0;
}

bool attach(int i) {
  std::string args = "path=" + g_dir + "/" + kSocks[i] + ",queues=1,queue_size=256";
  if (rte_eal_hotplug_add("vdev", kNames[i], args.c_str()) != 0) return false;
  return start(i);
}

bool detach(int i) {
  rte_eth_dev_stop(g_port[i]);
  rte_eth_dev_close(g_port[i]);
  return rte_eal_hotplug_remove("vdev", kNames[i]) == 0;
}

bool send(int i, const Bytes& b) {
  rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
  if (!m) return false;
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(b.size())), b.data(), b.size());
  for (int tries = 0; tries < 1000; ++tries) {
    if (rte_eth_tx_burst(g_port[i], 0, &m, 1) == 1) return true;
    usleep(1000);
  }
  rte_pktmbuf_free(m);
  return false;
}

// Frames received on port i within `ms` (stops early once `want` frames are in).
std::vector<Bytes> receive(int i, size_t want, int ms) {
  std::vector<Bytes> out;
  for (int t = 0; t < ms && out.size() < want; ++t) {
    rte_mbuf* bufs[32];
    uint16_t n = rte_eth_rx_burst(g_port[i], 0, bufs, 32);
    for (uint16_t k = 0; k < n; ++k) {
      Bytes b(bufs[k]->pkt_len);
      const void* p = rte_pktmbuf_read(bufs[k], 0, bufs[k]->pkt_len, b.data());
      if (p != b.data()) std::memcpy(b.data(), p, b.size());
      out.push_back(std::move(b));
      rte_pktmbuf_free(bufs[k]);
    }
    if (n == 0) usleep(1000);
  }
  return out;
}

bool is_tcp_to_client(const Bytes& b) {
  auto d = lockstep::test::decode(b);
  return d.ok && d.proto == lockstep::kProtoTcp;
}

int fail(const char* what) {
  std::fprintf(stderr, "vhost_peer: FAIL: %s\n", what);
  return 1;
}

bool wait_link(int i, int ms) {
  for (int t = 0; t < ms; t += 10) {
    rte_eth_link l{};
    if (rte_eth_link_get_nowait(g_port[i], &l) == 0 && l.link_status) return true;
    usleep(10000);
  }
  return false;
}

// Sends `n` segments from both VMs starting at stream offset `off`; returns how many
// came back on the client port, and checks they are the PVM's.
int exchange(Conversation& c, uint64_t off, int n, int& released) {
  std::vector<Bytes> want;
  for (int k = 0; k < n; ++k) {
    Bytes p = c.vm_stream(Vm::pvm, off + static_cast<uint64_t>(k) * 500, 500);
    Bytes s = c.vm_stream(Vm::svm, off + static_cast<uint64_t>(k) * 500, 500);
    if (!send(kPvm, p) || !send(kSvm, s)) return fail("tx to lockstepd");
    want.push_back(p);
  }
  std::vector<Bytes> got;
  for (const auto& b : receive(kExt, want.size(), 3000))
    if (is_tcp_to_client(b)) got.push_back(b);
  released = static_cast<int>(got.size());
  if (got.size() != want.size()) return fail("released frame count");
  for (size_t k = 0; k < got.size(); ++k)
    if (got[k] != want[k]) return fail("released frame is not the PVM's");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: vhost_peer DIR\n");
    return 2;
  }
  g_dir = argv[1];
  std::string prefix = "--file-prefix=vhpeer" + std::to_string(getpid());
  std::vector<std::string> args = {"vhost_peer", "-l", "0", "--no-huge", "-m", "256", "--no-pci",
                                   prefix, "--log-level=lib.eal:error", "--no-telemetry"};
  for (int i = 0; i < 3; ++i)
    args.push_back("--vdev=" + std::string(kNames[i]) + ",path=" + g_dir + "/" + kSocks[i] +
                   ",queues=1,queue_size=256");
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  if (rte_eal_init(static_cast<int>(av.size()), av.data()) < 0) return fail("EAL");
  g_pool = rte_pktmbuf_pool_create("peer", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (!g_pool) return fail("pool");
  for (int i = 0; i < 3; ++i)
    if (!start(i)) return fail("port start");
  for (int i = 0; i < 3; ++i)
    if (!wait_link(i, 5000)) return fail("link up");

  Conversation::Params p;
  p.pvm_isn = 111111;
  p.svm_isn = 999999;
  Conversation c(p);
  if (!send(kExt, c.client_syn())) return fail("send SYN");
  if (receive(kPvm, 1, 3000).empty() || receive(kSvm, 1, 3000).empty())
    return fail("SYN not mirrored to both VMs");
  Bytes synack = c.vm_synack(Vm::pvm);
  send(kPvm, synack);
  send(kSvm, c.vm_synack(Vm::svm));
  auto rel = receive(kExt, 1, 3000);
  if (rel.size() != 1 || rel[0] != synack) return fail("PVM SYN/ACK not released");
  send(kExt, c.client_handshake_ack());
  receive(kPvm, 1, 1000);
  receive(kSvm, 1, 1000);

  int released = 0;
  if (exchange(c, 0, 20, released) != 0) return 1;
  std::printf("vhost_peer: 20 segments compared and released\n");

  // The SVM goes away and comes back (a VM restarting its virtio device).
  if (!detach(kSvm)) return fail("detach");
  usleep(300000);
  if (!attach(kSvm) || !wait_link(kSvm, 5000)) return fail("re-attach");
  usleep(300000);
  if (exchange(c, 20 * 500, 20, released) != 0) return 1;
  std::printf("vhost_peer: SVM detached and re-attached; 20 more segments released\n");
  for (int i = 0; i < 3; ++i) rte_eth_dev_stop(g_port[i]);
  rte_eal_cleanup();
  return 0;
}
