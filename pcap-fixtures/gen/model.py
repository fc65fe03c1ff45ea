"""A fixture case: frames per side with their times, the expectation, the README."""
import hashlib

# Virtual time origin of every generated case: 2023-11-14 22:13:20 UTC, in microseconds.
T0 = 1_700_000_000_000_000

SIDES = ("ingress", "primary", "secondary")


def blob(tag, n):
    """n deterministic pseudo-random bytes named by tag (SHA-256 in counter mode)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{tag}/{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def text_blob(tag, n):
    """n deterministic printable bytes (looks like an HTTP body in a hex dump)."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 \n"
    raw = blob(tag, n)
    return bytes(alphabet[b % len(alphabet)] for b in raw)


def rng(lo, hi):
    """Range expectation: {"min": lo, "max": hi}."""
    return {"min": lo, "max": hi}


class Case:
    def __init__(self, name, title, story, made=""):
        self.name = name
        self.title = title          # one line
        self.story = story          # what it exercises and why the outcome is expected
        self.made = made            # how it was made, beyond "generate.py"
        self.frames = {s: [] for s in SIDES}
        self.expect = {}
        self.raw_files = {}         # file name -> bytes written as is (bad-file cases)
        self.has_ingress = True

    def add(self, side, t_us, frame):
        """Appends a frame; returns its index in that side's pcap. Times per side must not
        go backwards (a capture is in time order), which keeps indices stable."""
        lst = self.frames[side]
        if lst and t_us < lst[-1][0]:
            raise ValueError(f"{self.name}: {side} time goes back at frame {len(lst)}")
        lst.append((t_us, bytes(frame)))
        return len(lst) - 1

    def pvm(self, t_us, frame):
        return self.add("primary", t_us, frame)

    def svm(self, t_us, frame):
        return self.add("secondary", t_us, frame)

    def ing(self, t_us, frame):
        return self.add("ingress", t_us, frame)

    def n_pvm(self):
        return len(self.frames["primary"])


REGISTRY = []


def case(fn):
    """Registers a case builder: a function returning a Case."""
    REGISTRY.append(fn)
    return fn
