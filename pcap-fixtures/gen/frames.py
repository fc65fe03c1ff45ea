"""Ethernet frame builders: 802.1Q, IPv4 (with fragments), IPv6 (with the fragment
header), TCP with options, UDP, ICMP, ICMPv6, ARP. Every field is packed explicitly in
network byte order and every checksum is computed, so a frame is a pure function of its
arguments."""
import ipaddress
import struct

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
ETH_VLAN = 0x8100
ETH_LLDP = 0x88CC

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_FRAG6 = 44
PROTO_ICMPV6 = 58

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def ip_bytes(text):
    return ipaddress.ip_address(text).packed


def is_v6(text):
    return ":" in text


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def pseudo(src, dst, proto, length):
    s, d = ip_bytes(src), ip_bytes(dst)
    if len(s) == 4:
        return s + d + struct.pack("!BBH", 0, proto, length)
    return s + d + struct.pack("!IxxxB", length, proto)


def eth(dst, src, ethertype, payload, vlan=None, pad=True):
    """vlan: None, an id, or a list of ids (outer first, 802.1ad outer tag for QinQ)."""
    hdr = mac(dst) + mac(src)
    if vlan is not None:
        tags = vlan if isinstance(vlan, list) else [vlan]
        for i, vid in enumerate(tags):
            tpid = 0x88A8 if (len(tags) > 1 and i == 0) else ETH_VLAN
            hdr += struct.pack("!HH", tpid, vid & 0x0FFF)
    frame = hdr + struct.pack("!H", ethertype) + payload
    if pad and len(frame) < 60:
        frame += b"\0" * (60 - len(frame))
    return frame


def ipv4(src, dst, proto, payload, ident=0, ttl=64, df=True, frag_off=0, mf=False,
         tos=0, options=b"", total_len=None, ihl=None):
    hl = 20 + len(options)
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | ((frag_off // 8) & 0x1FFF)
    tl = hl + len(payload) if total_len is None else total_len
    ihl_v = hl // 4 if ihl is None else ihl
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl_v, tos, tl, ident & 0xFFFF, flags, ttl,
                      proto, 0, ip_bytes(src), ip_bytes(dst)) + options
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(src, dst, nh, payload, hlim=64, flow=0, payload_len=None):
    pl = len(payload) if payload_len is None else payload_len
    return struct.pack("!IHBB16s16s", (6 << 28) | (flow & 0xFFFFF), pl, nh, hlim,
                       ip_bytes(src), ip_bytes(dst)) + payload


def ip(src, dst, proto, payload, **kw):
    """IPv4 or IPv6 by the address family; IPv4-only keywords are ignored for IPv6."""
    if is_v6(src):
        return ipv6(src, dst, proto, payload, hlim=kw.get("ttl", 64))
    return ipv4(src, dst, proto, payload, **kw)


def ethertype_of(src):
    return ETH_IPV6 if is_v6(src) else ETH_IPV4


# --- TCP -----------------------------------------------------------------------------

def opt_mss(v):
    return struct.pack("!BBH", 2, 4, v)


def opt_wscale(v):
    return struct.pack("!BBB", 3, 3, v)


def opt_sackok():
    return b"\x04\x02"


def opt_ts(tsval, tsecr):
    return struct.pack("!BBII", 8, 10, tsval & 0xFFFFFFFF, tsecr & 0xFFFFFFFF)


def opt_sack(blocks):
    return struct.pack("!BB", 5, 2 + 8 * len(blocks)) + b"".join(
        struct.pack("!II", l & 0xFFFFFFFF, r & 0xFFFFFFFF) for l, r in blocks)


def pad_options(opts):
    """NOP-pad in front (as Linux does) to a multiple of 4."""
    return b"\x01" * ((-len(opts)) % 4) + opts


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", win=64240, options=b"",
        urg=0, data_off=None, bad_csum=False):
    opts = pad_options(options)
    doff = (20 + len(opts)) // 4 if data_off is None else data_off
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      doff << 4, flags, win, 0, urg) + opts
    seg = hdr + payload
    c = csum(pseudo(src, dst, PROTO_TCP, len(seg)) + seg)
    if bad_csum:
        c ^= 0x5A5A
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(src, dst, sport, dport, payload, length=None):
    ln = 8 + len(payload) if length is None else length
    seg = struct.pack("!HHHH", sport, dport, ln, 0) + payload
    c = csum(pseudo(src, dst, PROTO_UDP, len(seg)) + seg)
    if c == 0:
        c = 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def icmp_echo(ident, seq, data, reply=True):
    msg = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + data
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def icmpv6(src, dst, typ, code, body):
    msg = struct.pack("!BBH", typ, code, 0) + body
    c = csum(pseudo(src, dst, PROTO_ICMPV6, len(msg)) + msg)
    return msg[:2] + struct.pack("!H", c) + msg[4:]


def icmpv6_echo(src, dst, ident, seq, data, reply=True):
    return icmpv6(src, dst, 129 if reply else 128, 0, struct.pack("!HH", ident, seq) + data)


def nd_ns(src, dst, target, src_mac):
    body = b"\0\0\0\0" + ip_bytes(target) + b"\x01\x01" + mac(src_mac)
    return icmpv6(src, dst, 135, 0, body)


def nd_na(src, dst, target, tgt_mac, flags=0x60000000):
    body = struct.pack("!I", flags) + ip_bytes(target) + b"\x02\x01" + mac(tgt_mac)
    return icmpv6(src, dst, 136, 0, body)


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH6s4s6s4s", 1, ETH_IPV4, 6, 4, op, mac(sha), ip_bytes(spa),
                       mac(tha), ip_bytes(tpa))


# --- fragments -----------------------------------------------------------------------

def fragments_v4(src, dst, proto, l4, ident, sizes, ttl=64):
    """Split an L4 datagram into IPv4 fragments of the given data sizes (multiples of 8
    except the last); returns the IP packets in offset order."""
    out, off = [], 0
    for i, n in enumerate(sizes):
        last = i == len(sizes) - 1
        chunk = l4[off:] if last else l4[off:off + n]
        out.append(ipv4(src, dst, proto, chunk, ident=ident, ttl=ttl, df=False,
                        frag_off=off, mf=not last))
        off += len(chunk)
    return out


def fragments_v6(src, dst, nh, l4, ident, sizes, hlim=64):
    out, off = [], 0
    for i, n in enumerate(sizes):
        last = i == len(sizes) - 1
        chunk = l4[off:] if last else l4[off:off + n]
        fh = struct.pack("!BBHI", nh, 0, (off & 0xFFF8) | (0 if last else 1), ident)
        out.append(ipv6(src, dst, PROTO_FRAG6, fh + chunk, hlim=hlim))
        off += len(chunk)
    return out
