// cpg_send GROUP HEX...: joins a CPG group, multicasts each HEX string as one message
// (CPG_TYPE_AGREED), waits until all of them are delivered back (at most 5 s), leaves.
// The cluster test's source of junk on the group (wrong lengths, unknown codes).
#include <corosync/cpg.h>
#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {
size_t g_delivered = 0;
void on_deliver(cpg_handle_t, const struct cpg_name*, uint32_t, uint32_t pid, void*, size_t) {
  if (pid == static_cast<uint32_t>(getpid())) ++g_delivered;
}
void on_confchg(cpg_handle_t, const struct cpg_name*, const struct cpg_address*, size_t,
                const struct cpg_address*, size_t, const struct cpg_address*, size_t) {}

bool unhex(const std::string& s, std::vector<uint8_t>& out) {
  if (s.size() % 2 != 0) return false;
  for (size_t i = 0; i < s.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  return true;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: cpg_send GROUP HEX...\n");
    return 2;
  }
  std::string group = argv[1];
  if (group.empty() || group.size() >= CPG_MAX_NAME_LENGTH) return 2;
  cpg_callbacks_t cb{on_deliver, on_confchg};
  cpg_handle_t h;
  if (cpg_initialize(&h, &cb) != CS_OK) {
    std::fprintf(stderr, "cpg_send: cpg_initialize failed\n");
    return 1;
  }
  struct cpg_name name{};
  name.length = static_cast<uint32_t>(group.size());
  std::memcpy(name.value, group.data(), group.size());
  cs_error_t err;
  while ((err = cpg_join(h, &name)) == CS_ERR_TRY_AGAIN) usleep(10000);
  if (err != CS_OK) {
    std::fprintf(stderr, "cpg_send: cpg_join: %d\n", err);
    return 1;
  }
  for (int i = 2; i < argc; ++i) {
    std::vector<uint8_t> bytes;
    if (!unhex(argv[i], bytes)) {
      std::fprintf(stderr, "cpg_send: bad hex '%s'\n", argv[i]);
      return 2;
    }
    struct iovec iov{bytes.data(), bytes.size()};
    while ((err = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN) usleep(10000);
    if (err != CS_OK) {
      std::fprintf(stderr, "cpg_send: cpg_mcast_joined: %d\n", err);
      return 1;
    }
  }
  int fd = -1;
  cpg_fd_get(h, &fd);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  size_t want = static_cast<size_t>(argc - 2);
  while (g_delivered < want && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) cpg_dispatch(h, CS_DISPATCH_ALL);
  }
  cpg_leave(h, &name);
  cpg_finalize(h);
  if (g_delivered < want) {
    std::fprintf(stderr, "cpg_send: %zu of %zu delivered\n", g_delivered, want);
    return 1;
  }
  return 0;
}
