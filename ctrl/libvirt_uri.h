// The libvirt endpoint of the qmp checkpointer link: "libvirt:URI?domain=NAME", e.g.
//   libvirt:qemu:///system?domain=pvm
//   libvirt:qemu+ssh://root@host-a/system?keyfile=/etc/lockstep/id&domain=pvm
// URI is libvirt's connection URI (a qemu driver: qemu:// or qemu+TRANSPORT://, with a
// path); `domain=` is taken out of its query (once, non-empty, percent-decoding allowed)
// and the other parameters stay in the URI handed to libvirt. Pure: no libvirt here.
#pragma once

#include <string>
#include <string_view>

namespace lockstep::ctrl {

inline constexpr std::string_view kLibvirtPrefix = "libvirt:";

struct LibvirtTarget {
  std::string uri;     // libvirt's connection URI, without domain=
  std::string domain;  // the domain's name, decoded
};

// False with `error` saying what is wrong and the expected form.
bool parse_libvirt_endpoint(std::string_view text, LibvirtTarget& out, std::string& error);
// The endpoint's text again (parse_libvirt_endpoint(libvirt_endpoint_text(t)) == t).
std::string libvirt_endpoint_text(const LibvirtTarget& t);

}  // namespace lockstep::ctrl
