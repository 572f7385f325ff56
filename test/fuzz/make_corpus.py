#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora under corpus/<target>/ (checked in; rerun after a format change).

npz_fuzz: small .npz archives laid out as numpy.savez writes them (zipfile, "<key>.npy"
entries, NPY v1/v2 headers), one archive written by numpy itself (Chainer's goldens), and
bare .npy arrays (the fuzzer also decodes its input as one array).
cache_entry_fuzz: kernel-cache entries (see runtime/src/kernel_cache.cpp) under the
fuzzer's key "kiln-fuzz-key", and one under another key.
ir_parse_fuzz: the functions of test/ir/*.mlir, one per file, comments stripped.
"""
import os
import re
import shutil
import struct
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))


def out_dir(target):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def npy(descr, shape, data, fortran=False, version=1):
    shape_text = "(" + "".join(f"{d}, " for d in shape).rstrip(" ")
    shape_text = (shape_text[:-1] if len(shape) > 1 else shape_text) + ")"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    prefix = 10 if version == 1 else 12
    header += " " * ((64 - (prefix + len(header) + 1) % 64) % 64) + "\n"
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode("latin1") + data


def npz(path, arrays, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for key, blob in arrays.items():
            z.writestr(key + ".npy", blob)


def npz_corpus():
    d = out_dir("npz_fuzz")
    f32 = npy("<f4", (3,), struct.pack("<3f", 1.0, -2.5, 3.25))
    i64 = npy("<i8", (), struct.pack("<q", 42))
    fortran = npy("<i4", (2, 3), struct.pack("<6i", 0, 3, 1, 4, 2, 5), fortran=True)
    big_endian = npy(">f8", (2,), struct.pack(">2d", 0.5, 1e300))
    flags = npy("|b1", (2, 2), bytes([1, 0, 0, 1]))
    small_ints = npy("|u1", (4,), bytes([0, 1, 127, 255]))
    v2 = npy("<i2", (1, 2), struct.pack("<2h", -300, 7), version=2)
    empty = npy("<f4", (0, 4), b"")
    text = npy("<U3", (), "abc".encode("utf-32-le"))  # not numeric: left out
    npz(os.path.join(d, "stored.npz"), {"w": f32, "t": i64, "a/b": fortran})
    npz(os.path.join(d, "deflated.npz"), {"x": big_endian, "m": flags, "u": small_ints},
        zipfile.ZIP_DEFLATED)
    npz(os.path.join(d, "v2_and_empty.npz"), {"v2": v2, "e": empty, "s": text})
    npz(os.path.join(d, "no_arrays.npz"), {})
    for name, blob in [("f32", f32), ("fortran", fortran), ("big_endian", big_endian), ("v2", v2)]:
        with open(os.path.join(d, name + ".npy"), "wb") as f:
            f.write(blob)
    shutil.copy(os.path.join(SOURCE, "test", "goldens", "model.npz"), os.path.join(d, "chainer_model.npz"))


FNV_OFFSET, FNV_PRIME, MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1


def fnv1a(data, h=FNV_OFFSET):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def cache_entry(key, payload):
    key = key.encode()
    head = b"KILNKC\r\n" + struct.pack("<IIQQ", 1, len(key), len(payload), fnv1a(payload))
    return head + struct.pack("<Q", fnv1a(key, fnv1a(head))) + key + payload


def cache_corpus():
    d = out_dir("cache_entry_fuzz")
    for name, key, payload in [("empty", "kiln-fuzz-key", b""),
                               ("object", "kiln-fuzz-key", b"\x7fELF" + bytes(range(60))),
                               ("text", "kiln-fuzz-key", b"compiled kernel"),
                               ("other_key", "another key", b"payload")]:
        with open(os.path.join(d, name + ".kc"), "wb") as f:
            f.write(cache_entry(key, payload))


def ir_corpus():
    d = out_dir("ir_parse_fuzz")
    n = 0
    for name in ["roundtrip.mlir", "fusion.mlir", "custom.mlir", "invalid.mlir", "fusion-invalid.mlir"]:
        with open(os.path.join(SOURCE, "test", "ir", name)) as f:
            lines = [l for l in f.read().splitlines() if not l.lstrip().startswith("//") or l.strip() == "// -----"]
        for chunk in re.split(r"^// -----$", "\n".join(lines), flags=re.M):
            for func in re.findall(r"^func\.func .*?^}$", chunk, flags=re.M | re.S):
                n += 1
                with open(os.path.join(d, "%s-%02d.mlir" % (name[:-5], n)), "w") as out:
                    out.write(func + "\n")


if __name__ == "__main__":
    npz_corpus()
    cache_corpus()
    ir_corpus()
