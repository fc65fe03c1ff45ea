"""Classic pcap (microsecond, little-endian, Ethernet link type) writer and reader.

Written by hand so that the bytes depend on nothing but the frames and their times:
no library version, no clock, no host byte order.
"""
import struct

MAGIC_US = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144


def pcap_bytes(records, linktype=LINKTYPE_ETHERNET):
    """records: iterable of (t_us, frame_bytes). Returns the whole file as bytes."""
    out = [struct.pack("<IHHiIII", MAGIC_US, 2, 4, 0, 0, SNAPLEN, linktype)]
    for t_us, frame in records:
        sec, usec = divmod(int(t_us), 1_000_000)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
        out.append(bytes(frame))
    return b"".join(out)


def read_pcap(path):
    """Returns (linktype, [(t_us, frame_bytes)]). Classic pcap only (either byte order,
    micro- or nanosecond magic); raises ValueError on anything else or on truncation."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError(f"{path}: shorter than a pcap header")
    magic_le = struct.unpack_from("<I", data, 0)[0]
    if magic_le in (0xA1B2C3D4, 0xA1B23C4D):
        end = "<"
        nano = magic_le == 0xA1B23C4D
    else:
        magic_be = struct.unpack_from(">I", data, 0)[0]
        if magic_be not in (0xA1B2C3D4, 0xA1B23C4D):
            raise ValueError(f"{path}: not a classic pcap file")
        end = ">"
        nano = magic_be == 0xA1B23C4D
    linktype = struct.unpack_from(end + "I", data, 20)[0]
    recs = []
    off = 24
    while off < len(data):
        if off + 16 > len(data):
            raise ValueError(f"{path}: truncated record header at byte {off}")
        sec, frac, incl, _orig = struct.unpack_from(end + "IIII", data, off)
        off += 16
        if off + incl > len(data):
            raise ValueError(f"{path}: truncated record at byte {off}")
        t_us = sec * 1_000_000 + (frac // 1000 if nano else frac)
        recs.append((t_us, data[off:off + incl]))
        off += incl
    return linktype, recs
