"""One-line summaries of Ethernet frames and their canonical flow key (for per-flow
order checks and readable failures)."""
import ipaddress
import struct


def _l3(fr):
    """(ethertype, offset of L3, vlan ids)."""
    if len(fr) < 14:
        return None, len(fr), []
    et, off, vlans = struct.unpack_from("!H", fr, 12)[0], 14, []
    while et in (0x8100, 0x88A8) and off + 4 <= len(fr):
        vlans.append(struct.unpack_from("!H", fr, off)[0] & 0xFFF)
        et = struct.unpack_from("!H", fr, off + 2)[0]
        off += 4
    return et, off, vlans


def parse(fr):
    """dict with proto, src, dst, sport, dport, flags, seq, ack, payload length, vlans,
    or {'kind': ...} for what is not IP."""
    et, off, vlans = _l3(fr)
    out = {"vlans": vlans}
    try:
        if et == 0x0800:
            ihl = (fr[off] & 15) * 4
            tl = struct.unpack_from("!H", fr, off + 2)[0]
            proto = fr[off + 9]
            fragoff = struct.unpack_from("!H", fr, off + 6)[0]
            out.update(kind="ipv4", proto=proto, src=str(ipaddress.ip_address(fr[off + 12:off + 16])),
                       dst=str(ipaddress.ip_address(fr[off + 16:off + 20])),
                       ipid=struct.unpack_from("!H", fr, off + 4)[0],
                       frag=(fragoff & 0x1FFF) * 8, mf=bool(fragoff & 0x2000))
            l4, end = off + ihl, off + tl
            if out["frag"]:
                out["proto"] = ("frag", proto)
                return out
        elif et == 0x86DD:
            nh = fr[off + 6]
            out.update(kind="ipv6", src=str(ipaddress.ip_address(fr[off + 8:off + 24])),
                       dst=str(ipaddress.ip_address(fr[off + 24:off + 40])))
            l4, end = off + 40, off + 40 + struct.unpack_from("!H", fr, off + 4)[0]
            while nh in (0, 43, 60, 44):
                if nh == 44:
                    fo = struct.unpack_from("!H", fr, l4 + 2)[0]
                    out["frag"], out["mf"] = fo & 0xFFF8, bool(fo & 1)
                    out["ipid"] = struct.unpack_from("!I", fr, l4 + 4)[0]
                    nh, l4 = fr[l4], l4 + 8
                    if out["frag"]:
                        out["proto"] = ("frag", nh)
                        return out
                else:
                    nh, l4 = fr[l4], l4 + (fr[l4 + 1] + 1) * 8
            out["proto"] = nh
            proto = nh
        else:
            out["kind"] = {0x0806: "arp", 0x88CC: "lldp"}.get(et, "ethertype 0x%04x" % (et or 0))
            return out
        if proto == 6:
            sp, dp, seq, ack = struct.unpack_from("!HHII", fr, l4)
            hl = (fr[l4 + 12] >> 4) * 4
            out.update(sport=sp, dport=dp, seq=seq, ack=ack, flags=fr[l4 + 13], plen=end - l4 - hl)
        elif proto == 17:
            sp, dp = struct.unpack_from("!HH", fr, l4)
            out.update(sport=sp, dport=dp, plen=end - l4 - 8)
        elif proto in (1, 58):
            out.update(type=fr[l4], code=fr[l4 + 1], plen=end - l4 - 4)
            if fr[l4] in (0, 8, 128, 129):
                out["sport"] = out["dport"] = struct.unpack_from("!H", fr, l4 + 4)[0]
    except (IndexError, struct.error):
        out["kind"] = out.get("kind", "?") + " (malformed)"
    return out


def flow_key(fr):
    p = parse(fr)
    if "src" not in p:
        return ("l2", p.get("kind"))
    a = (p["src"], p.get("sport", 0))
    b = (p["dst"], p.get("dport", 0))
    lo, hi = sorted([a, b])
    return (tuple(p["vlans"]), str(p.get("proto")), lo, hi)


FLAG_NAMES = ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, "."))


def summary(fr, hexbytes=24):
    p = parse(fr)
    vl = "".join(f"vlan{v} " for v in p["vlans"])
    if "src" not in p:
        s = f"{vl}{p['kind']} len={len(fr)}"
    else:
        proto = p.get("proto")
        name = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6"}.get(proto, str(proto))
        s = f"{vl}{name} {p['src']}:{p.get('sport', '')} > {p['dst']}:{p.get('dport', '')}"
        if proto == 6:
            fl = "".join(n for b, n in FLAG_NAMES if p["flags"] & b)
            s += f" [{fl}] seq={p['seq']} ack={p['ack']} len={p['plen']}"
        elif "plen" in p:
            s += f" len={p['plen']}"
        if p.get("frag") or p.get("mf"):
            s += f" frag@{p['frag']}{'+' if p['mf'] else ''} id=0x{p['ipid']:x}"
    return s + " | " + fr[:hexbytes].hex()
