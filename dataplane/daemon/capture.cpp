#include "dataplane/daemon/capture.h"

#include <fcntl.h>
#include <rte_cycles.h>
#include <sched.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

namespace lockstep::dp {
namespace {

// pcapng (draft-ietf-opsawg-pcapng), written in host byte order (the Section Header
// Block's byte-order magic tells readers which).
constexpr uint32_t kShb = 0x0A0D0D0A, kIdb = 0x00000001, kEpb = 0x00000006;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr uint16_t kLinkEthernet = 1;
constexpr uint16_t kOptEnd = 0, kShbUserAppl = 4, kIfName = 2, kIfDescription = 3,
                   kIfTsresol = 9, kEpbFlags = 2;
constexpr uint32_t kEpbInbound = 1, kEpbOutbound = 2;  // epb_flags bits 0-1
constexpr size_t kEpbFixed = 28 + 4 + 12;  // header fields, total length, epb_flags + end

size_t pad4(size_t n) { return (n + 3) & ~size_t{3}; }

class Block {
 public:
  explicit Block(uint32_t type) { u32(type), u32(0); }
  Block& u16(uint16_t v) { return raw(&v, 2); }
  Block& u32(uint32_t v) { return raw(&v, 4); }
  Block& u64(uint64_t v) { return raw(&v, 8); }
  Block& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
    return *this;
  }
  Block& option(uint16_t code, const void* p, uint16_t n) {
    u16(code), u16(n), raw(p, n);
    buf_.resize(pad4(buf_.size()));
    return *this;
  }
  Block& option(uint16_t code, const std::string& s) {
    return option(code, s.data(), static_cast<uint16_t>(s.size()));
  }
  // Ends the options and the block; writes it. False on a write error.
  bool write(std::FILE* f, uint64_t& bytes) {
    u16(kOptEnd), u16(0);
    const auto total = static_cast<uint32_t>(buf_.size() + 4);
    u32(total);
    std::memcpy(buf_.data() + 4, &total, 4);
    bytes += buf_.size();
    return std::fwrite(buf_.data(), 1, buf_.size(), f) == buf_.size();
  }

 private:
  std::vector<uint8_t> buf_;
};

bool write_epb(std::FILE* f, uint32_t if_id, uint64_t ts_ns, const CaptureRecord& r,
               const uint8_t* data) {
  uint8_t h[28];
  const uint32_t fields[] = {kEpb,
                             static_cast<uint32_t>(kEpbFixed + pad4(r.cap_len)),
                             if_id,
                             static_cast<uint32_t>(ts_ns >> 32),
                             static_cast<uint32_t>(ts_ns),
                             r.cap_len,
                             r.orig_len};
  std::memcpy(h, fields, sizeof h);
  uint8_t tail[16] = {};
  const uint16_t opt[2] = {kEpbFlags, 4};
  const uint32_t flags = r.dir == kCaptureTx ? kEpbOutbound : kEpbInbound;
  std::memcpy(tail, opt, 4);
  std::memcpy(tail + 4, &flags, 4);  // then opt_endofopt (zeros)
  std::memcpy(tail + 12, &fields[1], 4);
  const size_t padding = pad4(r.cap_len) - r.cap_len;
  const uint8_t zeros[4] = {};
  return std::fwrite(h, 1, sizeof h, f) == sizeof h &&
         std::fwrite(data, 1, r.cap_len, f) == r.cap_len &&
         std::fwrite(zeros, 1, padding, f) == padding &&
         std::fwrite(tail, 1, sizeof tail, f) == sizeof tail;
}

bool write_idb(std::FILE* f, uint32_t snaplen, const std::string& name, const std::string& desc,
               uint64_t& bytes) {
  const uint8_t tsresol = 9;  // 10^-9 s
  Block b(kIdb);
  b.u16(kLinkEthernet).u16(0).u32(snaplen);
  b.option(kIfName, name).option(kIfDescription, desc).option(kIfTsresol, &tsresol, 1);
  return b.write(f, bytes);
}

uint64_t unix_ns_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// "PORT-YYYYMMDD-HHMMSS.pcapng" in UTC: the name of a capture started without one.
std::string default_name(const std::string& port) {
  const time_t t = time(nullptr);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &utc);
  return port + "-" + buf + ".pcapng";
}

// The capture directory (made 0750 if missing, group `gid`) as an fd, never through a
// symlink; -1 with `error` set.
int open_capture_dir(const std::string& dir, long gid, std::string& error) {
  if (dir.empty() || dir[0] != '/') {
    error = "capture: ctrl.capture_dir must be an absolute path";
    return -1;
  }
  const size_t slash = dir.find_last_of('/', dir.size() > 1 ? dir.size() - 2 : 0);
  if (slash != std::string::npos && slash > 0 && access(dir.c_str(), F_OK) != 0)
    mkdir(dir.substr(0, slash).c_str(), 0755);  // /var/lib/lockstep on a first capture
  if (mkdir(dir.c_str(), 0750) == 0 && gid >= 0) {
    if (chown(dir.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0) {
      error = "capture: chown " + dir + ": " + std::strerror(errno);
      return -1;
    }
  }
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) error = "capture: directory " + dir + ": " + std::strerror(errno);
  return fd;
}

// Creates `name` in the directory: new, not through a symlink, 0640, group `gid`.
std::FILE* create_capture_file(int dirfd, const std::string& name, long gid, std::string& error) {
  const int fd = openat(dirfd, name.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) {
    error = errno == EEXIST ? "capture: " + name + " exists (capture files are never overwritten)"
                            : "capture: cannot create " + name + ": " + std::strerror(errno);
    return nullptr;
  }
  bool ok = fchmod(fd, 0640) == 0;  // whatever the umask
  if (ok && gid >= 0) ok = fchown(fd, static_cast<uid_t>(-1), static_cast<gid_t>(gid)) == 0;
  std::FILE* f = ok ? fdopen(fd, "wb") : nullptr;
  if (f == nullptr) {
    error = "capture: cannot set up " + name + ": " + std::strerror(errno);
    unlinkat(dirfd, name.c_str(), 0);
    close(fd);
  }
  return f;
}

}  // namespace

bool Capture::valid_name(const std::string& name, std::string& error) {
  if (name.empty() || name.size() > 200) {
    error = "capture: a file name of 1 to 200 characters";
    return false;
  }
  for (char ch : name) {
    if (ch == '/' || static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      error = "capture: '" + name +
              "' is not a file name (no '/' or control characters: files go into ctrl.capture_dir)";
      return false;
    }
  }
  if (name[0] == '.') {
    error = "capture: '" + name + "' may not start with '.'";
    return false;
  }
  return true;
}

Capture::~Capture() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  for (unsigned r = 0; r < kPortRoleCount; ++r)
    if (act_[r].on) finish(r);
  // The rings stay allocated until here: a worker may still hold a pointer it loaded
  // just before a stop. lockstepd destroys the Capture after the workers are joined.
}

uint64_t Capture::tsc_to_unix_ns(uint64_t tsc) const {
  const int64_t d = static_cast<int64_t>(tsc - base_tsc_);
  const uint64_t a = static_cast<uint64_t>(d < 0 ? -d : d);
  const uint64_t ns = a / tsc_hz_ * 1000000000ull + a % tsc_hz_ * 1000000000ull / tsc_hz_;
  return d < 0 ? base_unix_ns_ - ns : base_unix_ns_ + ns;
}

bool Capture::start(const ctrl::CaptureRequest& req, int guest, ctrl::Json& result,
                    std::string& error) {
  PortRole role;
  if (!port_role_from_string(req.port, role)) {
    error = "capture: unknown port '" + req.port + "' (ext, pvm, svm, host or link)";
    return false;
  }
  const auto r = static_cast<unsigned>(role);
  std::unique_ptr<CaptureGuestFilter> filter;
  if (guest >= 0) {
    const auto g = static_cast<unsigned>(guest);
    if (r >= kCompareRoles) {
      error = "capture: " + req.port + " carries no guest's NIC (-g captures ext, pvm or svm)";
      return false;
    }
    if (g >= dp_.guests().size() || dp_.guest_removed(g)) {
      error = "capture: no guest " + std::to_string(g);
      return false;
    }
    filter = std::make_unique<CaptureGuestFilter>();
    filter->guest = g;
    filter->ext = role == PortRole::ext;
    const auto& units = dp_.plan().units;
    for (const UnitPlan& u : units) {
      if (u.guest != g || u.port[r] < 0) continue;
      const auto p = static_cast<unsigned>(u.port[r]);
      if (filter->mode[p] != CaptureGuestFilter::kNone) continue;
      bool others = false;
      for (const UnitPlan& o : units)
        others = others || (o.port[r] == u.port[r] && o.guest != g && !dp_.guest_removed(o.guest));
      if (!others) {
        filter->mode[p] = CaptureGuestFilter::kAll;
        continue;
      }
      // A shared port: the worker's classification of it, told whose each NIC is.
      auto cls = std::make_shared<UnitClassifier>();
      CaptureGuestFilter::Shared sh;
      for (size_t i = 0; i < units.size(); ++i) {
        const UnitPlan& o = units[i];
        if (o.port[r] != u.port[r] || dp_.guest_removed(o.guest)) continue;
        cls->add(o, static_cast<unsigned>(sh.unit_guest.size()));
        sh.unit_guest.push_back(static_cast<uint16_t>(o.guest));
        if (o.guest == g) sh.vlans.push_back(o.vlan);
      }
      sh.cls = std::move(cls);
      filter->mode[p] = CaptureGuestFilter::kClassify;
      filter->shared_at[p] = static_cast<uint8_t>(filter->shared.size());
      filter->shared.push_back(std::move(sh));
    }
  }
  if (dp_.plan().port[r] < 0) {
    error = "capture: this lockstepd has no " + req.port + " port";
    return false;
  }
  if (req.snaplen < 64) {
    error = "capture: snaplen below 64 bytes";
    return false;
  }
  if (!req.rx && !req.tx) {
    error = "capture: no direction (rx, tx or both)";
    return false;
  }
  if (opt_.ring_bytes < 4096 || (opt_.ring_bytes & (opt_.ring_bytes - 1)) != 0) {
    error = "capture: ring size not a power of two of at least 4096";
    return false;
  }
  const std::string name = req.path.empty() ? default_name(req.port) : req.path;
  if (!valid_name(name, error)) return false;
  std::lock_guard lock(mu_);
  if (act_[r].on) {
    error = "capture: already capturing " + req.port + " into " + act_[r].path;
    return false;
  }
  bool any_on = false;
  for (const auto& a : act_) any_on = any_on || a.on;
  if (!any_on) {  // the TSC to wall-clock mapping, refreshed while nothing is captured
    tsc_hz_ = rte_get_tsc_hz();
    if (tsc_hz_ == 0) tsc_hz_ = 1;
    base_tsc_ = rte_rdtsc();
    base_unix_ns_ = unix_ns_now();
  }
  if (rings_[r] == nullptr) rings_[r] = std::make_unique<CaptureRing>(opt_.ring_bytes);
  Active a;
  a.path = opt_.dir + (opt_.dir.ends_with('/') ? "" : "/") + name;
  const int dirfd = open_capture_dir(opt_.dir, opt_.gid, error);
  if (dirfd < 0) return false;
  a.f = create_capture_file(dirfd, name, opt_.gid, error);
  if (a.f == nullptr) {
    close(dirfd);
    return false;
  }
  bool ok = true;
  {
    Block shb(kShb);
    shb.u32(kByteOrderMagic).u16(1).u16(0).u64(UINT64_MAX);  // section length unknown
    shb.option(kShbUserAppl, std::string("lockstepd"));
    ok = shb.write(a.f, a.bytes);
  }
  const int port_id = dp_.plan().port[r];
  const std::string dev = dp_.config().ports[r];
  int next_if = 0;
  if (ok && req.rx) {
    a.if_rx = next_if++;
    ok = write_idb(a.f, req.snaplen, req.port + "-rx",
                   "lockstepd port " + req.port + " (" + dev + ", port " +
                       std::to_string(port_id) + "): frames received",
                   a.bytes);
  }
  if (ok && req.tx) {
    a.if_tx = next_if++;
    ok = write_idb(a.f, req.snaplen, req.port + "-tx",
                   "lockstepd port " + req.port + " (" + dev + ", port " +
                       std::to_string(port_id) + "): frames transmitted",
                   a.bytes);
  }
  if (ok) ok = std::fflush(a.f) == 0;
  if (!ok) {
    error = "capture: cannot write " + a.path + ": " + std::strerror(errno);
    std::fclose(a.f);
    unlinkat(dirfd, name.c_str(), 0);
    close(dirfd);
    return false;
  }
  if (a.bytes > req.max_bytes) {
    std::fclose(a.f);
    unlinkat(dirfd, name.c_str(), 0);
    close(dirfd);
    error = "capture: max_bytes " + std::to_string(req.max_bytes) +
            " is smaller than the file's headers (" + std::to_string(a.bytes) + " bytes)";
    return false;
  }
  close(dirfd);
  a.on = true;
  a.max_bytes = req.max_bytes;
  CaptureRing& ring = *rings_[r];
  a.dropped_at_start = ring.dropped_full();
  const CaptureGuestFilter* f = filter.get();
  if (filter) filters_.push_back(std::move(filter));
  a.gen = ring.start(static_cast<uint8_t>((req.rx ? kCaptureRx : 0) | (req.tx ? kCaptureTx : 0)),
                     req.snaplen, f);
  act_[r] = a;
  g_capture_tap.ring[r].store(&ring, std::memory_order_release);
  if (opt_.writer_thread && !thread_.joinable()) thread_ = std::thread([this] { run(); });
  const char* dir = req.rx && req.tx ? "both" : req.rx ? "rx" : "tx";
  result = {{"port", req.port},     {"path", a.path},        {"direction", dir},
            {"max_bytes", a.max_bytes}, {"snaplen", req.snaplen}};
  if (f != nullptr) result["guest"] = dp_.guests()[f->guest].name;
  return true;
}

bool Capture::stop(const std::string& port, ctrl::Json& result, std::string& error) {
  std::lock_guard lock(mu_);
  result = ctrl::Json::array();
  for (unsigned r = 0; r < kPortRoleCount; ++r) {
    if (!port.empty() && port != to_string(static_cast<PortRole>(r))) continue;
    if (!act_[r].on) continue;
    result.push_back(finish(r));
  }
  if (result.empty()) {
    error = port.empty() ? "capture: none under way" : "capture: not capturing " + port;
    return false;
  }
  if (result.size() == 1) result = ctrl::Json(result[0]);
  return true;
}

ctrl::Json Capture::finish(unsigned r) {
  auto& a = act_[r];
  g_capture_tap.ring[r].store(nullptr, std::memory_order_release);
  // What the workers committed up to now; a burst being copied at this instant is
  // waited for (bounded: a copy and one tx burst with its retries).
  for (int i = 0; i < 100000 && !drain(r); ++i) sched_yield();
  if (a.f) std::fclose(a.f);
  ctrl::Json j = {{"port", to_string(static_cast<PortRole>(r))},
                  {"path", a.path},
                  {"frames", a.frames},
                  {"frames_rx", a.frames_rx},
                  {"frames_tx", a.frames_tx},
                  {"bytes", a.bytes},
                  {"copies_dropped", rings_[r]->dropped_full() - a.dropped_at_start},
                  {"stopped_at_max_bytes", a.full}};
  if (a.write_error) j["write_error"] = true;
  a = Active{};
  return j;
}

// Writes what the role's ring holds; mu_ held.
bool Capture::drain(unsigned r) {
  if (rings_[r] == nullptr) return true;
  auto& a = act_[r];
  bool wrote = false;
  bool whole = rings_[r]->consume(a.gen, [&](const CaptureRecord& rec, const uint8_t* data) {
    if (a.f == nullptr || a.full || a.write_error) return;
    const int if_id = rec.dir == kCaptureTx ? a.if_tx : a.if_rx;
    if (if_id < 0) return;
    const uint64_t size = kEpbFixed + pad4(rec.cap_len);
    if (a.bytes + size > a.max_bytes) {
      a.full = true;  // bounded: the file ends here
      g_capture_tap.ring[r].store(nullptr, std::memory_order_release);
      return;
    }
    if (!write_epb(a.f, static_cast<uint32_t>(if_id), tsc_to_unix_ns(rec.tsc), rec, data)) {
      a.write_error = true;
      g_capture_tap.ring[r].store(nullptr, std::memory_order_release);
      return;
    }
    wrote = true;
    a.bytes += size;
    ++a.frames;
    ++(rec.dir == kCaptureTx ? a.frames_tx : a.frames_rx);
  });
  if (wrote) std::fflush(a.f);
  return whole;
}

void Capture::run() {
  while (!stop_.load()) {
    {
      std::lock_guard lock(mu_);
      for (unsigned r = 0; r < kPortRoleCount; ++r)
        if (act_[r].on) drain(r);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace lockstep::dp
