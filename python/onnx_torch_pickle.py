"""Read a PyTorch state dict (`.pth`) into numpy arrays without importing torch.

Both on-disk formats are handled:

* the zip format (PyTorch >= 1.6): `<root>/data.pkl` holds the pickled object,
  tensors refer to storages by key, and each storage's raw little-endian bytes
  sit in `<root>/data/<key>`;
* the legacy format (PyTorch < 1.6): a stream of pickles — magic number,
  protocol version, system info, the object itself, then the list of storage
  keys — followed, for each key in that order, by an 8-byte element count and
  the storage's raw bytes.

A custom `pickle.Unpickler` maps `torch._utils._rebuild_tensor*` and the
`torch.*Storage` classes to numpy constructors, and `persistent_load` resolves
storage references. Tensors are views (offset, size, stride, all counted in
elements) into their storage; they are returned as contiguous copies. Only
plain tensors and containers are supported: any other class in the pickle
raises `PickleFormatError` rather than being imported.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # raw bits; widened in `_as_array`
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

# `torch.float32` and friends, as found in the zip format's `torch.storage.TypedStorage` ids.
TORCH_DTYPES: dict[str, str] = {
    "float64": "DoubleStorage",
    "float32": "FloatStorage",
    "float16": "HalfStorage",
    "bfloat16": "BFloat16Storage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


class PickleFormatError(Exception):
    """The file is not a state dict this reader understands."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    key: str
    kind: _StorageType
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_rest):
    return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, _requires_grad=False, _backward_hooks=None, *_rest):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" and name in TORCH_DTYPES:
            return _StorageType(TORCH_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise PickleFormatError(f"unsupported class in pickle: {module}.{name}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise PickleFormatError(f"unexpected persistent id {pid!r}")
        tag = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if tag != "storage":
            raise PickleFormatError(f"unsupported persistent id type {tag!r}")
        kind, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(kind, _StorageType):
            raise PickleFormatError(f"unsupported storage type {kind!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise PickleFormatError("storage views (legacy view_metadata) are not supported")
        storage = self.storages.get(key)
        if storage is None:
            storage = _Storage(key, kind, numel)
            self.storages[key] = storage
        return storage


def _as_array(ref: _TensorRef) -> np.ndarray:
    data = ref.storage.data
    if data is None:
        raise PickleFormatError(f"storage {ref.storage.key} has no data")
    if ref.storage.kind.name == "BFloat16Storage":
        data = (data.astype(np.uint32) << 16).view(np.float32)
    itemsize = data.dtype.itemsize
    if ref.size:
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride) if n > 0)
        if min(ref.size) > 0 and last >= data.size:
            raise PickleFormatError(
                f"tensor of size {ref.size} stride {ref.stride} offset {ref.offset} "
                f"overruns storage {ref.storage.key} of {data.size} elements"
            )
    if not ref.size:  # a 0-d tensor; as_strided would not keep the empty shape
        if ref.offset >= data.size:
            raise PickleFormatError(f"scalar at offset {ref.offset} overruns storage {ref.storage.key}")
        return np.array(data[ref.offset])
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset:],
        shape=ref.size,
        strides=tuple(s * itemsize for s in ref.stride),
        writeable=False,
    )
    return np.ascontiguousarray(view)


def _convert(obj):
    if isinstance(obj, _TensorRef):
        return _as_array(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _convert(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_convert(v) for v in obj)
    return obj


def _load_zip(path: Path):
    storages: dict[str, _Storage] = {}
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise PickleFormatError(f"{path}: expected one data.pkl in the zip, found {pkl}")
        root = pkl[0][: -len("data.pkl")]
        obj = _Unpickler(io.BytesIO(archive.read(pkl[0])), storages).load()
        for key, storage in storages.items():
            raw = archive.read(f"{root}data/{key}")
            storage.data = np.frombuffer(raw, dtype=storage.kind.dtype)
    return obj


def _load_legacy(path: Path):
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as handle:
        magic = _HeaderUnpickler(handle).load()
        if magic != LEGACY_MAGIC:
            raise PickleFormatError(f"{path}: not a PyTorch file (magic {magic!r})")
        protocol = _HeaderUnpickler(handle).load()
        if protocol != 1001:
            raise PickleFormatError(f"{path}: unsupported legacy protocol {protocol}")
        sys_info = _HeaderUnpickler(handle).load()
        if not sys_info.get("little_endian", True):
            raise PickleFormatError(f"{path}: big-endian files are not supported")
        obj = _Unpickler(handle, storages).load()
        keys = _HeaderUnpickler(handle).load()
        for key in keys:
            storage = storages[str(key)]
            (numel,) = struct.unpack("<q", handle.read(8))
            nbytes = numel * storage.kind.dtype.itemsize
            raw = handle.read(nbytes)
            if len(raw) != nbytes:
                raise PickleFormatError(f"{path}: storage {key} truncated")
            storage.data = np.frombuffer(raw, dtype=storage.kind.dtype)
    return obj


class _HeaderUnpickler(pickle.Unpickler):
    """For the legacy format's framing pickles, which hold only plain values."""

    def find_class(self, module, name):
        raise PickleFormatError(f"unexpected class in header pickle: {module}.{name}")


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Load a `.pth` state dict as `{name: numpy array}` (contiguous copies)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        obj = _load_zip(path)
    else:
        obj = _load_legacy(path)
    obj = _convert(obj)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise PickleFormatError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj
