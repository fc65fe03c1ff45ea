"""Datagram flows (UDP, ICMP echo, ICMPv6 echo) between a client and the VM, as the three
captures see them. The VMs differ in IP ID only, as two kernels do."""
from . import frames as F

SIDE_OF = {"p": "primary", "s": "secondary"}


class Dgram:
    def __init__(self, case, vm_ip="10.0.0.10", cli_ip="10.0.0.2", vm_port=5000,
                 cli_port=33000, vm_mac="52:54:00:12:34:56", cli_mac="02:00:00:00:00:01",
                 vlan=None, kind="udp", ident=0x4242):
        self.case, self.vm_ip, self.cli_ip = case, vm_ip, cli_ip
        self.vm_port, self.cli_port, self.vm_mac, self.cli_mac = vm_port, cli_port, vm_mac, cli_mac
        self.vlan, self.kind, self.ident = vlan, kind, ident
        self.ipid = {"p": 0x3000, "s": 0xB000, "c": 0x0100}
        self.seq = {"p": 0, "s": 0, "c": 0}

    def l4(self, src, dst, sport, dport, payload, reply, who):
        if self.kind == "udp":
            return F.PROTO_UDP, F.udp(src, dst, sport, dport, payload)
        seq = self.seq[who]
        self.seq[who] += 1
        if self.kind == "icmp":
            return F.PROTO_ICMP, F.icmp_echo(self.ident, seq, payload, reply=reply)
        return F.PROTO_ICMPV6, F.icmpv6_echo(src, dst, self.ident, seq, payload, reply=reply)

    def packet(self, who, payload, ttl=64):
        self.ipid[who] = (self.ipid[who] + 1) & 0xFFFF
        if who == "c":
            proto, l4 = self.l4(self.cli_ip, self.vm_ip, self.cli_port, self.vm_port, payload,
                                False, who)
            pkt = F.ip(self.cli_ip, self.vm_ip, proto, l4, ident=self.ipid[who], ttl=ttl, df=False)
            return F.eth(self.vm_mac, self.cli_mac, F.ethertype_of(self.cli_ip), pkt, vlan=self.vlan)
        proto, l4 = self.l4(self.vm_ip, self.cli_ip, self.vm_port, self.cli_port, payload, True, who)
        pkt = F.ip(self.vm_ip, self.cli_ip, proto, l4, ident=self.ipid[who], ttl=ttl, df=False)
        return F.eth(self.cli_mac, self.vm_mac, F.ethertype_of(self.vm_ip), pkt, vlan=self.vlan)

    def cli(self, t_us, payload):
        return self.case.add("ingress", t_us, self.packet("c", payload))

    def vm(self, side, t_us, payload, ttl=64):
        return self.case.add(SIDE_OF[side], t_us, self.packet(side, payload, ttl=ttl))

    def exchange(self, t_us, req, resp, lat_us=40, svm_lag_us=70, svm_resp=None):
        """Client request, PVM response lat_us later, SVM response svm_lag_us after it.
        Returns the PVM frame's index."""
        self.cli(t_us, req)
        ip = self.vm("p", t_us + lat_us, resp)
        self.vm("s", t_us + lat_us + svm_lag_us, resp if svm_resp is None else svm_resp)
        return ip
