#!/usr/bin/python3
"""Writes the fuzz targets' seed corpus (fuzz/corpus/TARGET/*): small valid
inputs for the fuzzer to mutate. Run once; its output is committed."""
import gzip, io, os, pathlib
import numpy as np

here = pathlib.Path(__file__).resolve().parent
root = here.parent

def put(target, name, data):
    path = here / "corpus" / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())

# config: the shipped configs, and a TOML with overrides after NUL bytes
for cfg in sorted((root / "configs").glob("*.toml")):
    put("config", cfg.name, cfg.read_bytes())
put("config", "npy_overrides", '[data]\nkind = "npy"\ntrain_x = "x.npy"\ntrain_y = "y.npy"\ntest_x = "x.npy"\n'
    'test_y = "y.npy"\nshape = [1, 2, 2]\nstandardize = true\n[model]\narch = "lenet"\nwidth = 0.5\n'
    '\0run.bins=[0.3, 0.35]\0prior.kind=normal\0prior.sigma=0.3')
put("config", "csv", '[data]\nkind = "csv"\ntrain_file = "a.csv"\ntest_file = "b.csv"\nlabel_column = 0\n'
    '[prior]\nkind = "sphere"\nsphere_radius = 2.5\n[run]\nn = [2, 4]\nrepeats = 2\nshard = 1\n'
    'loss = "raw"\ntime_limit = 1.5\n[exec]\nbatch = 1000\nthreads = 1\n')

def npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()

# npy: first byte even = the reader alone, odd = the features of an npy dataset
x = np.arange(8, dtype=np.float32).reshape(4, 2)
put("npy", "f4_reader", b"\0" + npy(x))
put("npy", "f4_features", b"\1" + npy(x))
put("npy", "f8_images", b"\3" + npy(np.linspace(-1, 1, 4 * 1 * 2 * 2).reshape(4, 1, 2, 2)))
put("npy", "i8_labels", b"\0" + npy(np.array([0, 1, 0, 1], dtype=np.int64)))
put("npy", "u1", b"\0" + npy(x.astype(np.uint8)))

# idx: first byte = file (bits 0-1) and storage (bits 2-3)
images = b"\0\0\x08\x03\0\0\0\x04\0\0\0\x03\0\0\0\x03" + bytes((i * 7) % 256 for i in range(36))
labels = b"\0\0\x08\x01\0\0\0\x04" + bytes([0, 1, 0, 1])
put("idx", "train_images_raw", bytes([0]) + images)
put("idx", "train_labels_raw", bytes([1]) + labels)
put("idx", "test_images_gz", bytes([2 | 4]) + images)
put("idx", "test_labels_gzfile", bytes([3 | 8]) + gzip.compress(labels, mtime=0))

# csv: first byte = label column and standardization; train, NUL, test
put("csv", "header_last_label", "\x00x,y,label\n0.5,1,0\n-1,2e3,1\n3,4,0\n\n5,6,1\n\0x,y,label\n1,1,0\n2,2,1\n")
put("csv", "label_first_standardized", "\x81" + "0,1.5,2\r\n1,-2,3\r\n0,+4,5\r\n1,6,7\r\n")

# cifar: first byte = which batch file; one record of label + 3072 pixels
record = bytes([1]) + bytes((i * 13) % 256 for i in range(3072))
put("cifar", "batch_1", bytes([0]) + record)
put("cifar", "test_two_records", bytes([5]) + record + bytes([0]) + record[1:])
