// QMP through libvirt: the qmp checkpointer link's transport to a libvirt domain
// (endpoint libvirt:URI?domain=NAME, libvirt_uri.h; docs/qemu-kvm-colo.md "libvirt").
//
// libvirt owns the domain's QMP monitor; other clients reach it through the libvirt-qemu
// pass-through: virDomainQemuMonitorCommand for commands, and
// virConnectDomainQemuMonitorEventRegister for the monitor's events. The bridge speaks
// that on one side and QMP's own byte stream on the other: libvirt_qmp_open() returns
// one end of a local socket pair on which the bridge plays QEMU, so the link, QmpSession
// and qmp_execute() hold one conversation whatever carries it:
//
//   bridge -> link  {"QMP": {"version": <query-version>, "capabilities": []}}   once open
//   link -> bridge  {"execute": NAME, "arguments": ..., "id": N}
//                   qmp_capabilities is answered by the bridge (libvirt left negotiation);
//                   any other command goes to virDomainQemuMonitorCommand without our id
//                   (libvirt adds its own), and QEMU's reply comes back with ours
//   bridge -> link  {"event": NAME, "data": ..., "timestamp": ...}   from libvirt's events
//   bridge -> link  {"error": {"class": "LibvirtError", "desc": ...}}  (no id) then EOF:
//                   libvirt could not be opened, the domain is missing or not running
//
// The bridge closes its end (the link sees EOF and reconnects with its backoff) when the
// domain stops or is undefined, or libvirt's connection closes (libvirtd restarted, or
// keepalive lost); it ends when the link closes its end. Events and replies travel
// different paths inside libvirt, so an event may reach the link after the reply to a
// command QEMU answered later; QmpSession does not depend on that order.
//
// Threading: each open starts one bridge thread (virConnectOpen, lookup, commands; all
// blocking libvirt calls are there, never on the caller's thread). libvirt's event loop
// (virEventRunDefaultImpl) runs on one process-wide thread started at the first open;
// event callbacks write to the socket pair under the bridge's write lock.
//
// Linking: the bridge is library lockstep_ctrl_libvirt (qmp_libvirt_bridge.cpp, built
// when libvirt-qemu is found; its dependency defines LOCKSTEP_HAVE_LIBVIRT), as the
// corosync adapter is lockstep_ctrl_cluster; the programs that do not open libvirt
// endpoints (lockstepctl, lockstep-colo, ...) do not load libvirt.
#pragma once

#include <string>

#include "ctrl/net.h"

namespace lockstep::ctrl {

// False until enable_libvirt_qmp() ran (so: in a build without libvirt).
bool libvirt_qmp_available();

// A stream speaking QMP for `ep` (Kind::libvirt), non-blocking; libvirt is opened on the
// bridge's thread, so this returns at once. Invalid with `error` without libvirt or when
// too many earlier bridges are still stuck in libvirt calls.
Fd libvirt_qmp_open(const Endpoint& ep, std::string& error);

// lockstep_ctrl_libvirt only: plugs the bridge in. Once, at start, before any thread.
void enable_libvirt_qmp();

using LibvirtQmpOpener = Fd (*)(const Endpoint&, std::string&);
void set_libvirt_qmp_opener(LibvirtQmpOpener open);

}  // namespace lockstep::ctrl
