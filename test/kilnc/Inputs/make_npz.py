# Writes a small .npz for kilnc's lit tests without NumPy: make_npz.py OUT NAME=DIMS:DTYPE:VALUE ...
# (DIMS like 2x3, or "s" for a 0-d array; DTYPE f32, f64, i32 or i64; every element = VALUE).
import struct
import sys
import zipfile

FORMATS = {"f32": ("<f4", "<f"), "f64": ("<f8", "<d"), "i32": ("<i4", "<i"), "i64": ("<i8", "<q")}


def npy(dims, dtype, value):
    descr, fmt = FORMATS[dtype]
    shape = "()" if not dims else "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    count = 1
    for d in dims:
        count *= d
    number = float(value) if dtype.startswith("f") else int(value)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack(fmt, number) * count


with zipfile.ZipFile(sys.argv[1], "w") as archive:
    for spec in sys.argv[2:]:
        name, rest = spec.split("=", 1)
        dims, dtype, value = rest.split(":")
        shape = [] if dims == "s" else [int(d) for d in dims.split("x")]
        archive.writestr(name + ".npy", npy(shape, dtype, value))
