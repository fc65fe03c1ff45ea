// The libvirt bridge behind libvirt_qmp_open() (qmp_libvirt.h): library
// lockstep_ctrl_libvirt, built with libvirt-qemu; enable_libvirt_qmp() plugs it in.
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include "ctrl/json_limits.h"
#include "ctrl/qmp_codec.h"
#include "ctrl/qmp_libvirt.h"

namespace lockstep::ctrl {

namespace {

constexpr int kMaxBridges = 4;        // bridges alive at once, stuck ones included
constexpr int kWriteWaitMs = 1000;    // a line toward a link that does not read
constexpr int kKeepAliveS = 5, kKeepAliveCount = 3;  // libvirtd silent 20 s: closed
std::atomic<int> g_bridges{0};

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// libvirt's last error on this thread, after `what`.
std::string virt_error(const std::string& what) {
  virErrorPtr e = virGetLastError();
  if (e == nullptr || e->message == nullptr) return what;
  return what + ": " + e->message;
}

void quiet(void*, virErrorPtr) {}  // errors are reported through the link, not stderr

// libvirt's default event loop, on a thread of its own for the life of the process.
// Registered before the first virConnectOpen, as libvirt requires for events.
bool event_loop(std::string& error) {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    if (virInitialize() < 0) {
      failure = virt_error("virInitialize");
      return;
    }
    virSetErrorFunc(nullptr, quiet);
    if (virEventRegisterDefaultImpl() < 0) {
      failure = virt_error("virEventRegisterDefaultImpl");
      return;
    }
    std::thread([] {
      for (;;) {
        if (virEventRunDefaultImpl() < 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }).detach();
  });
  error = failure;
  return failure.empty();
}

const char* close_reason(int r) {
  switch (r) {
    case VIR_CONNECT_CLOSE_REASON_ERROR: return "I/O error";
    case VIR_CONNECT_CLOSE_REASON_EOF: return "libvirtd closed it";
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE: return "keepalive timeout";
    case VIR_CONNECT_CLOSE_REASON_CLIENT: return "closed by the client";
    default: return "unknown reason";
  }
}

class Bridge;
using BridgeRef = std::shared_ptr<Bridge>;

class Bridge : public std::enable_shared_from_this<Bridge> {
 public:
  Bridge(const Endpoint& ep, Fd sock) : uri_(ep.uri), domain_(ep.domain), sock_(std::move(sock)) {}

  void run();
  void on_event(const char* name, long long seconds, unsigned micros, const char* details);
  // Says why (an id-less error, which ends the link's session) and closes our end.
  void close_with(const std::string& why);

 private:
  void command(std::string_view line);
  bool write_line(const std::string& line);
  void teardown();
  void* ref() { return new BridgeRef(shared_from_this()); }

  std::string uri_, domain_;
  std::mutex wmu_;  // sock_ and dead_: the bridge thread and libvirt's event thread write
  Fd sock_;
  bool dead_ = false;
  std::atomic<bool> closing_{false}, greeted_{false};
  virConnectPtr conn_ = nullptr;
  virDomainPtr dom_ = nullptr;
  int qmp_cb_ = -1, life_cb_ = -1;
  bool close_cb_ = false;
};

void free_ref(void* opaque) { delete static_cast<BridgeRef*>(opaque); }
Bridge& from(void* opaque) { return **static_cast<BridgeRef*>(opaque); }

void on_qmp_event(virConnectPtr, virDomainPtr, const char* event, long long seconds,
                  unsigned int micros, const char* details, void* opaque) {
  from(opaque).on_event(event, seconds, micros, details);
}

int on_lifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  (void)detail;
  const char* name = virDomainGetName(dom);
  std::string d = std::string("domain '") + (name != nullptr ? name : "?") + "'";
  if (event == VIR_DOMAIN_EVENT_STOPPED) from(opaque).close_with(d + " stopped");
  if (event == VIR_DOMAIN_EVENT_UNDEFINED) from(opaque).close_with(d + " undefined");
  return 0;
}

void on_close(virConnectPtr, int reason, void* opaque) {
  from(opaque).close_with(std::string("libvirt connection closed (") + close_reason(reason) + ")");
}

bool Bridge::write_line(const std::string& line) {
  std::string s = line + "\r\n";
  std::lock_guard lock(wmu_);
  if (dead_) return false;
  size_t off = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWriteWaitMs);
  while (off < s.size()) {
    ssize_t n = send(sock_.get(), s.data() + off, s.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()).count();
      pollfd p{sock_.get(), POLLOUT, 0};
      if (left > 0 && poll(&p, 1, static_cast<int>(left)) >= 0) continue;
    }
    // The link does not read, or is gone: a half line would corrupt the stream; end it.
    dead_ = true;
    shutdown(sock_.get(), SHUT_RDWR);
    return false;
  }
  return true;
}

void Bridge::close_with(const std::string& why) {
  if (closing_.exchange(true)) return;
  write_line(dump(Json{{"error", {{"class", "LibvirtError"}, {"desc", why}}}}));
  std::lock_guard lock(wmu_);
  if (!dead_) shutdown(sock_.get(), SHUT_RDWR);
  dead_ = true;
}

void Bridge::on_event(const char* name, long long seconds, unsigned micros, const char* details) {
  if (!greeted_ || closing_ || name == nullptr) return;
  Json j;
  j["event"] = name;
  if (details != nullptr) {
    Json d;
    std::string error;
    if (parse_json_bounded(details, kQmpMaxDepth, d, error)) j["data"] = std::move(d);
  }
  j["timestamp"] = {{"seconds", seconds < 0 ? 0 : seconds}, {"microseconds", micros}};
  write_line(dump(j));
}

void Bridge::command(std::string_view line) {
  Json cmd;
  std::string error;
  if (!parse_json_bounded(line, kQmpMaxDepth, cmd, error) || !cmd.is_object() ||
      !cmd.contains("execute") || !cmd["execute"].is_string()) {
    write_line(dump(Json{{"error", {{"class", "GenericError"}, {"desc", "not a QMP command"}}}}));
    return;
  }
  Json id;
  if (auto it = cmd.find("id"); it != cmd.end()) id = *it;
  cmd.erase("id");  // libvirt adds its own and refuses a second one
  std::string name = cmd["execute"].get<std::string>();
  Json reply;
  if (name == "qmp_capabilities") {
    reply = Json{{"return", Json::object()}};  // libvirt's monitor left negotiation long ago
  } else {
    char* result = nullptr;
    if (virDomainQemuMonitorCommand(dom_, dump(cmd).c_str(), &result,
                                    VIR_DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT) < 0) {
      std::string why = virt_error(name + " through libvirt");
      if (virConnectIsAlive(conn_) != 1 || virDomainIsActive(dom_) != 1) {
        close_with(why);
        return;
      }
      reply = Json{{"error", {{"class", "LibvirtError"}, {"desc", why}}}};
    } else {
      std::string text = result != nullptr ? result : "";
      std::free(result);
      if (!parse_json_bounded(text, kQmpMaxDepth, reply, error) || !reply.is_object()) {
        reply = Json{{"error", {{"class", "LibvirtError"}, {"desc", "no JSON object from libvirt"}}}};
      }
    }
  }
  reply["id"] = id;
  write_line(dump(reply));
}

void Bridge::run() {
  std::string error;
  if (!event_loop(error)) {
    close_with(error);
    return teardown();
  }
  conn_ = virConnectOpen(uri_.c_str());
  if (conn_ == nullptr) {
    close_with(virt_error("cannot open " + uri_));
    return teardown();
  }
  dom_ = virDomainLookupByName(conn_, domain_.c_str());
  if (dom_ == nullptr) {
    close_with(virt_error("domain '" + domain_ + "'"));
    return teardown();
  }
  if (virDomainIsActive(dom_) != 1) {
    close_with("domain '" + domain_ + "' is not running");
    return teardown();
  }
  virConnectSetKeepAlive(conn_, kKeepAliveS, kKeepAliveCount);
  close_cb_ = virConnectRegisterCloseCallback(conn_, on_close, ref(), free_ref) == 0;
  life_cb_ = virConnectDomainEventRegisterAny(conn_, dom_, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                              VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), ref(), free_ref);
  qmp_cb_ = virConnectDomainQemuMonitorEventRegister(conn_, dom_, nullptr, on_qmp_event, ref(),
                                                     free_ref, 0);
  if (qmp_cb_ < 0) {
    close_with(virt_error("monitor events of domain '" + domain_ + "'"));
    return teardown();
  }
  // The greeting, with QEMU's version as QEMU's own greeting carries it.
  char* result = nullptr;
  if (virDomainQemuMonitorCommand(dom_, R"({"execute": "query-version"})", &result,
                                  VIR_DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT) < 0) {
    close_with(virt_error("query-version through libvirt"));
    return teardown();
  }
  Json reply;
  std::string text = result != nullptr ? result : "";
  std::free(result);
  if (!parse_json_bounded(text, kQmpMaxDepth, reply, error) || !reply.contains("return")) {
    close_with("query-version through libvirt: no answer");
    return teardown();
  }
  greeted_ = write_line(dump(Json{{"QMP", {{"version", reply["return"]}, {"capabilities", Json::array()}}}}));

  std::string buf;
  char chunk[4096];
  while (greeted_ && !closing_) {
    pollfd p{-1, POLLIN, 0};
    {
      std::lock_guard lock(wmu_);
      if (dead_) break;
      p.fd = sock_.get();
    }
    // sock_ stays open until teardown (on this thread); close_with() only shuts it down.
    if (poll(&p, 1, 500) < 0 && errno != EINTR) break;
    if (p.revents == 0) continue;
    ssize_t n = recv(p.fd, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n == 0) break;  // the link closed its end
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      break;
    }
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line.find_first_not_of(" \r") != std::string::npos) command(line);
    }
    if (buf.size() > kQmpMaxLine) break;
  }
  teardown();
}

void Bridge::teardown() {
  closing_ = true;
  {
    std::lock_guard lock(wmu_);
    dead_ = true;
    sock_.reset();  // callbacks still in flight see dead_ and touch no fd
  }
  if (conn_ != nullptr) {
    if (qmp_cb_ >= 0) virConnectDomainQemuMonitorEventDeregister(conn_, qmp_cb_);
    if (life_cb_ >= 0) virConnectDomainEventDeregisterAny(conn_, life_cb_);
    if (close_cb_) virConnectUnregisterCloseCallback(conn_, on_close);
  }
  if (dom_ != nullptr) virDomainFree(dom_);
  if (conn_ != nullptr) virConnectClose(conn_);
  dom_ = nullptr;
  conn_ = nullptr;
  --g_bridges;
}

Fd open_bridge(const Endpoint& ep, std::string& error) {
  if (ep.kind != Endpoint::Kind::libvirt) {
    error = "not a libvirt endpoint: " + ep.to_string();
    return {};
  }
  if (g_bridges.load() >= kMaxBridges) {
    error = "libvirt: " + std::to_string(kMaxBridges) + " earlier connections still wait on libvirt";
    return {};
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
    error = "socketpair failed";
    return {};
  }
  Fd ours(sv[0]);
  auto bridge = std::make_shared<Bridge>(ep, Fd(sv[1]));
  ++g_bridges;
  std::thread([bridge] { bridge->run(); }).detach();
  return ours;
}

}  // namespace

void enable_libvirt_qmp() { set_libvirt_qmp_opener(open_bridge); }

}  // namespace lockstep::ctrl
