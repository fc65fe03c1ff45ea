"""One TCP connection between a client and the VM, as the three captures see it: the
client's segments (ingress), the PVM's and the SVM's. The VMs keep their own ISN, IP ID,
window and timestamp clock, as two real kernels do; stream offsets are counted from the
first byte after the SYN so a case speaks in offsets, not sequence numbers."""
from . import frames as F

MSS = 1448
SIDE_OF = {"p": "primary", "s": "secondary"}


class TcpConn:
    def __init__(self, case, cli_ip="10.0.0.2", cli_port=40000, srv_ip="10.0.0.10",
                 srv_port=80, pvm_isn=0x1F3A0000, svm_isn=0x6B2C0000, cli_isn=0x3C000000,
                 cli_mac="02:00:00:00:00:01", vm_mac="52:54:00:12:34:56", vlan=None,
                 ts=True, ipid=(0x1000, 0x7000, 0x2000)):
        self.case = case
        self.cli_ip, self.cli_port, self.srv_ip, self.srv_port = cli_ip, cli_port, srv_ip, srv_port
        self.cli_mac, self.vm_mac, self.vlan, self.ts = cli_mac, vm_mac, vlan, ts
        self.isn = {"p": pvm_isn, "s": svm_isn, "c": cli_isn}
        self.nxt = {"p": 0, "s": 0, "c": 0}          # next stream offset to send
        self.syn_sent = {"p": False, "s": False, "c": False}
        self.ipid = {"p": ipid[0], "s": ipid[1], "c": ipid[2]}
        self.win = {"p": 502, "s": 509, "c": 501}
        # Timestamp clocks (1 kHz) with unrelated origins, as on two hosts.
        self.ts_base = {"p": 0x00A0B000, "s": 0x5F000000, "c": 0x11110000}
        self.last_tsval = {"p": 0, "s": 0, "c": 0}

    # -- sequence helpers ---------------------------------------------------------------
    def seq(self, who, off):
        """Sequence number of stream offset `off` (0 = first data byte) of `who`."""
        return (self.isn[who] + 1 + off) & 0xFFFFFFFF

    def _tsval(self, who, t_us):
        return (self.ts_base[who] + t_us // 1000) & 0xFFFFFFFF

    def _frame(self, src_ip, dst_ip, sport, dport, src_mac, dst_mac, seq, ack, flags, data,
               win, opts, ipid):
        seg = F.tcp(src_ip, dst_ip, sport, dport, seq, ack, flags, data, win=win, options=opts)
        pkt = F.ip(src_ip, dst_ip, F.PROTO_TCP, seg, ident=ipid)
        return F.eth(dst_mac, src_mac, F.ethertype_of(src_ip), pkt, vlan=self.vlan)

    def _syn_opts(self, who, t_us, echo):
        o = F.opt_mss(MSS if not F.is_v6(self.srv_ip) else MSS - 20) + F.opt_sackok()
        if self.ts:
            o += F.opt_ts(self._tsval(who, t_us), echo)
        return o + b"\x01" + F.opt_wscale(7)

    # -- the VM's segments (side "p" or "s") ---------------------------------------------
    def vm(self, side, t_us, flags, data=b"", off=None, ack_off=None, opts=None, win=None):
        """A segment from the PVM ("p") or SVM ("s"); returns its index in that pcap."""
        if flags & F.SYN:
            seq = self.isn[side]
            self.syn_sent[side] = True
        else:
            o = self.nxt[side] if off is None else off
            seq = self.seq(side, o)
            self.nxt[side] = max(self.nxt[side], o + len(data) + (1 if flags & F.FIN else 0))
        ack = 0
        if flags & F.ACK:
            ack = self.seq("c", self.nxt["c"] if ack_off is None else ack_off)
        if opts is None:
            if flags & F.SYN:
                opts = self._syn_opts(side, t_us, self.last_tsval["c"])
            elif self.ts:
                opts = F.opt_ts(self._tsval(side, t_us), self.last_tsval["c"])
            else:
                opts = b""
        self.last_tsval[side] = self._tsval(side, t_us)
        self.ipid[side] = (self.ipid[side] + 1) & 0xFFFF
        fr = self._frame(self.srv_ip, self.cli_ip, self.srv_port, self.cli_port, self.vm_mac,
                         self.cli_mac, seq, ack, flags, data,
                         self.win[side] if win is None else win, opts, self.ipid[side])
        return self.case.add(SIDE_OF[side], t_us, fr)

    def both(self, t_us, lag_us, flags, data=b"", **kw):
        """The same segment from the PVM at t and from the SVM lag_us later."""
        ip = self.vm("p", t_us, flags, data, **kw)
        self.vm("s", t_us + lag_us, flags, data, **kw)
        return ip

    # -- the client's segments (ingress) -------------------------------------------------
    def cli(self, t_us, flags, data=b"", off=None, ack_off=None, sack=None, opts=None):
        """A client segment; acks are in the PVM's sequence space (the client only ever
        sees the PVM). ack_off defaults to everything the PVM has sent so far."""
        if flags & F.SYN:
            seq = self.isn["c"]
            self.syn_sent["c"] = True
        else:
            o = self.nxt["c"] if off is None else off
            seq = self.seq("c", o)
            self.nxt["c"] = max(self.nxt["c"], o + len(data) + (1 if flags & F.FIN else 0))
        ack = 0
        if flags & F.ACK:
            if ack_off is not None:
                ack = self.seq("p", ack_off)
            elif self.syn_sent["p"]:
                ack = self.seq("p", self.nxt["p"])
        if opts is None:
            if flags & F.SYN:
                opts = self._syn_opts("c", t_us, self.last_tsval["p"])
            else:
                opts = b""
                if self.ts:
                    opts += F.opt_ts(self._tsval("c", t_us), self.last_tsval["p"])
                if sack:
                    opts += F.opt_sack([(self.seq("p", l), self.seq("p", r)) for l, r in sack])
        self.last_tsval["c"] = self._tsval("c", t_us)
        self.ipid["c"] = (self.ipid["c"] + 1) & 0xFFFF
        fr = self._frame(self.cli_ip, self.srv_ip, self.cli_port, self.srv_port, self.cli_mac,
                         self.vm_mac, seq, ack, flags, data, self.win["c"], opts, self.ipid["c"])
        return self.case.add("ingress", t_us, fr)

    # -- common exchanges ------------------------------------------------------------------
    def passive_open(self, t_us, lat_us=40, svm_lag_us=90, rtt_us=300):
        """Client SYN; PVM SYN/ACK lat_us later, SVM's svm_lag_us after the PVM's; client
        ACK one rtt after the PVM's SYN/ACK. Returns the time of the client's ACK."""
        self.cli(t_us, F.SYN)
        self.vm("p", t_us + lat_us, F.SYN | F.ACK)
        self.vm("s", t_us + lat_us + svm_lag_us, F.SYN | F.ACK)
        t_ack = t_us + lat_us + rtt_us
        self.cli(t_ack, F.ACK)
        return t_ack

    def active_open(self, t_us, svm_lag_us=90, rtt_us=300, lat_us=30):
        """The VM connects out: PVM SYN, SVM SYN lagging, the client's SYN/ACK (to the PVM's
        ISN), then both VMs' ACK. Returns the time of the PVM's ACK."""
        self.vm("p", t_us, F.SYN)
        self.vm("s", t_us + svm_lag_us, F.SYN)
        t_sa = t_us + rtt_us
        self.cli(t_sa, F.SYN | F.ACK, ack_off=0)
        self.vm("p", t_sa + lat_us, F.ACK)
        self.vm("s", t_sa + lat_us + svm_lag_us, F.ACK)
        return t_sa + lat_us

    def request(self, t_us, data):
        return self.cli(t_us, F.PSH | F.ACK, data)

    def send(self, side, t_us, data, seg=MSS, gap_us=12, off=None, push_last=True):
        """data from one VM cut into seg-byte segments gap_us apart; returns (indices,
        time of the last segment)."""
        base = self.nxt[side] if off is None else off
        idx, t, pos = [], t_us, 0
        sizes = seg if isinstance(seg, list) else None
        k = 0
        while pos < len(data):
            n = sizes[k % len(sizes)] if sizes else seg
            chunk = data[pos:pos + n]
            last = pos + n >= len(data)
            fl = F.ACK | (F.PSH if (last and push_last) else 0)
            idx.append(self.vm(side, t, fl, chunk, off=base + pos))
            pos += len(chunk)
            k += 1
            t += gap_us
        return idx, t - gap_us

    def respond(self, t_us, data, svm_lag_us=120, pvm_seg=MSS, svm_seg=MSS, gap_us=12):
        """PVM sends data at t; the SVM sends the same bytes svm_lag_us later, with its
        own segmentation. Returns (PVM indices, time of the last SVM segment)."""
        ip, _ = self.send("p", t_us, data, seg=pvm_seg, gap_us=gap_us)
        _, t_last = self.send("s", t_us + svm_lag_us, data, seg=svm_seg, gap_us=gap_us)
        return ip, t_last

    def close_by_client(self, t_us, svm_lag_us=90, rtt_us=300):
        """Client FIN; both VMs FIN/ACK; client's last ACK. Returns PVM FIN index."""
        self.cli(t_us, F.FIN | F.ACK)
        ip = self.vm("p", t_us + 40, F.FIN | F.ACK)
        self.vm("s", t_us + 40 + svm_lag_us, F.FIN | F.ACK)
        self.cli(t_us + 40 + rtt_us, F.ACK)
        return ip
