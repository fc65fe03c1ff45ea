#include "ctrl/qmp_libvirt.h"

#include <atomic>

namespace lockstep::ctrl {

namespace {
std::atomic<LibvirtQmpOpener> g_opener{nullptr};
}  // namespace

void set_libvirt_qmp_opener(LibvirtQmpOpener open) { g_opener.store(open); }

bool libvirt_qmp_available() { return g_opener.load() != nullptr; }

Fd libvirt_qmp_open(const Endpoint& ep, std::string& error) {
  LibvirtQmpOpener open = g_opener.load();
  if (open == nullptr) {
    error = "this program has no libvirt (built without libvirt-qemu, meson option libvirt)";
    return {};
  }
  return open(ep, error);
}

}  // namespace lockstep::ctrl
