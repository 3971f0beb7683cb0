"""Kelly's packed weights: an RTNeural model stored as binary float32 arrays (``<key>.npz``).

Why a second format: RTNeural's JSON writes every weight as decimal text. Even at the
9 significant digits float32 needs, the five trained networks take 15.6 MB of JSON, and
Kelly ships its weights inside the package (at most 6 MB, issue 10). The same numbers
as raw float32 take 4.6 MB. So the package ships ``.npz`` files and ``kelly export``
writes the RTNeural JSON a C++ plugin loads from them, number for number.

A packed file is a plain ``numpy.savez`` archive (a ZIP of ``.npy`` arrays, *stored*, not
deflated) holding

* ``skeleton``: the RTNeural JSON object as UTF-8 bytes, every layer's ``weights`` list
  replaced by the names of its arrays (``["l0_w0", "l0_w1"]``);
* ``l<layer>_w<k>``: those arrays, float32, in RTNeural's layout.

Loading goes through the same checks as a JSON file (:func:`kelly.ml.runtime.model_from_dict`:
declared sizes against the caps before anything is built, exact shapes, finite float32),
and the archive itself is checked first: a regular file of bounded size, only stored
members (a deflated member could expand without bound), member sizes that add up, no
pickled objects (``allow_pickle=False``). Every failure is one
:class:`~kelly.ml.runtime.ModelFileError` naming the file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from kelly.ml.runtime import MAX_MODEL_BYTES, Model, ModelFileError, model_from_dict, read_model_file

#: File suffix of a packed model.
SUFFIX = ".npz"
_SKELETON = "skeleton"
#: Most members an archive may hold (a model has at most a few dozen arrays).
MAX_MEMBERS = 256


def packed_name(json_name: str) -> str:
    """``emotionrecognizer.json`` → ``emotionrecognizer.npz``."""
    stem = json_name[:-5] if json_name.endswith(".json") else json_name
    return stem + SUFFIX


def pack(obj: Mapping[str, Any]) -> bytes:
    """The packed bytes of an RTNeural model object (weights as nested lists or arrays)."""
    skeleton = {k: v for k, v in obj.items() if k != "layers"}
    layers = []
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(obj["layers"]):
        entry = dict(layer)
        names = []
        for k, w in enumerate(layer.get("weights", [])):
            name = f"l{i}_w{k}"
            arrays[name] = np.asarray(w, dtype=np.float32)
            names.append(name)
        entry["weights"] = names
        layers.append(entry)
    skeleton["layers"] = layers
    arrays[_SKELETON] = np.frombuffer(json.dumps(skeleton, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # stored, not compressed: trained weights barely compress, and see _members
    return buf.getvalue()


def _members(data: bytes, name: str) -> dict[str, np.ndarray]:
    """Every array of the archive, after checking the ZIP's own bookkeeping."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{name}: not a packed model (not a readable .npz archive: {exc})") from None
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{name}: not a packed model ({len(infos)} members, at most {MAX_MEMBERS})")
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise ModelFileError(f"{name}: member {info.filename!r} is compressed; packed models store "
                                 "their arrays uncompressed")
        total += info.file_size
        if info.file_size != info.compress_size or total > len(data):
            raise ModelFileError(f"{name}: member {info.filename!r} declares more bytes than the file holds")
    out: dict[str, np.ndarray] = {}
    try:
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ModelFileError(f"{name}: unexpected member {info.filename!r} (only .npy arrays)")
            raw = zf.read(info)
            arr = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            out[info.filename[:-4]] = arr
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a corrupt archive gets one line, never a traceback
        raise ModelFileError(f"{name}: not a packed model ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})") from None
    return out


def unpack(data: bytes, *, name: str = "model.npz") -> dict[str, Any]:
    """The RTNeural model object of packed bytes, weights as float32 arrays.

    Raises
    ------
    ModelFileError
        A bad archive, a missing or malformed skeleton, a weight name with no array, or
        an array that is not a float32 matrix or vector.
    """
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(f"{name}: {len(data):,} bytes, more than a model may have ({MAX_MODEL_BYTES:,})")
    arrays = _members(data, name)
    raw = arrays.pop(_SKELETON, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{name}: not a packed model (no skeleton)")
    try:
        skeleton = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{name}: the skeleton is not JSON ({type(exc).__name__})") from None
    if not isinstance(skeleton, dict) or not isinstance(skeleton.get("layers"), list):
        raise ModelFileError(f"{name}: the skeleton has no list of layers")
    for pos, layer in enumerate(skeleton["layers"], start=1):
        if not isinstance(layer, dict) or not isinstance(layer.get("weights", []), list):
            raise ModelFileError(f"{name}: layer {pos} of the skeleton is malformed")
        weights = []
        for ref in layer.get("weights", []):
            arr = arrays.get(ref) if isinstance(ref, str) else None
            if arr is None:
                raise ModelFileError(f"{name}: layer {pos} names weights {ref!r} that the archive lacks")
            if arr.dtype != np.float32 or arr.ndim not in (1, 2):
                raise ModelFileError(f"{name}: layer {pos} weights {ref!r} are {arr.dtype} of {arr.ndim} "
                                     "dimensions; expected a float32 vector or matrix")
            weights.append(arr)
        layer["weights"] = weights
    return skeleton


def load_packed(path: str | os.PathLike, *, spec: Any = None, sizes: tuple[int, int] | None = None,
                dtype=np.float32) -> Model:
    """Load a packed model file (checked like a JSON one; see the module docstring)."""
    path = Path(path)
    data = read_model_file(path)
    return model_from_dict(unpack(data, name=path.name), name=path.name, spec=spec, sizes=sizes, dtype=dtype)


def to_rtneural(path: str | os.PathLike) -> dict[str, Any]:
    """A packed file's model as an RTNeural JSON object (nested lists), for ``kelly export``."""
    path = Path(path)
    obj = unpack(read_model_file(path), name=path.name)
    model_from_dict(obj, name=path.name)  # every check a load makes, before anything is written
    for layer in obj["layers"]:
        layer["weights"] = [w.tolist() for w in layer.get("weights", [])]
    return obj


def is_packed(data: bytes) -> bool:
    """Whether ``data`` starts like a ZIP archive (a packed model) rather than JSON text."""
    return data[:4] == b"PK\x03\x04"


__all__ = ["SUFFIX", "packed_name", "pack", "unpack", "load_packed", "to_rtneural", "is_packed"]
