"""Reads classic pcap (micro- or nanosecond, either byte order) and pcapng (section
header, interface description, enhanced/simple packet blocks). Times in nanoseconds."""
import struct


class CaptureError(Exception):
    pass


def read_capture(path):
    """Returns (linktype, [(t_ns, frame_bytes)])."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) >= 4 and struct.unpack_from("<I", data, 0)[0] == 0x0A0D0D0A:
        return _read_pcapng(path, data)
    return _read_pcap(path, data)


def _read_pcap(path, data):
    if len(data) < 24:
        raise CaptureError(f"{path}: shorter than a pcap header")
    for end in ("<", ">"):
        magic = struct.unpack_from(end + "I", data, 0)[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        raise CaptureError(f"{path}: not a pcap or pcapng file")
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack_from(end + "I", data, 20)[0] & 0xFFFF
    recs, off = [], 24
    while off < len(data):
        if off + 16 > len(data):
            raise CaptureError(f"{path}: truncated record header at byte {off}")
        sec, frac, incl, _ = struct.unpack_from(end + "IIII", data, off)
        off += 16
        if off + incl > len(data):
            raise CaptureError(f"{path}: truncated record at byte {off}")
        recs.append((sec * 1_000_000_000 + (frac if nano else frac * 1000), data[off:off + incl]))
        off += incl
    return linktype, recs


def _read_pcapng(path, data):
    off, end, linktypes, tsres, recs = 0, "<", [], [], []
    while off + 12 <= len(data):
        btype = struct.unpack_from("<I", data, off)[0]
        if btype == 0x0A0D0D0A:
            bom = struct.unpack_from("<I", data, off + 8)[0]
            end = "<" if bom == 0x1A2B3C4D else ">"
            linktypes, tsres = [], []
        blen = struct.unpack_from(end + "I", data, off + 4)[0]
        if blen < 12 or off + blen > len(data):
            raise CaptureError(f"{path}: truncated pcapng block at byte {off}")
        body = data[off + 8:off + blen - 4]
        if btype == 0x00000001:
            linktypes.append(struct.unpack_from(end + "H", body, 0)[0])
            res = 1000  # ns per tick: microseconds unless if_tsresol says otherwise
            o = 8
            while o + 4 <= len(body):
                code, ln = struct.unpack_from(end + "HH", body, o)
                if code == 0:
                    break
                if code == 9 and ln >= 1:
                    v = body[o + 4]
                    res = 10 ** (9 - v) if not v & 0x80 and v <= 9 else 1
                o += 4 + ln + ((-ln) % 4)
            tsres.append(res)
        elif btype == 0x00000006:
            ifc, hi, lo, cap, _ = struct.unpack_from(end + "IIIII", body, 0)
            recs.append((((hi << 32) | lo) * tsres[ifc], body[20:20 + cap]))
        off += blen
    if off != len(data):
        raise CaptureError(f"{path}: truncated pcapng block at byte {off}")
    return (linktypes[0] if linktypes else 1), recs
