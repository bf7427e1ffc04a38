"""A safetensors file written tensor by tensor, chunk by chunk, so no whole video of latents is held."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from types import TracebackType

import numpy as np
import torch

from worldmodel.files import atomic_path

_DTYPES = {torch.float32: ("F32", 4), torch.bfloat16: ("BF16", 2), torch.float16: ("F16", 2)}


class StreamingSafetensors:
    """Writes one tensor of known shape, appended along its first axis; readable by `safetensors.safe_open`.

    The header (shape, dtype, byte offsets) is known up front, so the file is header + data in
    order. It is written under a temporary name and renamed when the last row has arrived.
    """

    def __init__(self, path: str | Path, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32,
                 metadata: dict[str, str] | None = None) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"unsupported dtype {dtype}; use one of {list(_DTYPES)}")
        self.path, self.name, self.shape, self.dtype = Path(path), name, tuple(int(s) for s in shape), dtype
        code, size = _DTYPES[dtype]
        nbytes = int(np.prod(self.shape)) * size
        header: dict = {name: {"dtype": code, "shape": list(self.shape), "data_offsets": [0, nbytes]}}
        if metadata:
            header["__metadata__"] = dict(metadata)
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # safetensors aligns the data start to 8 bytes with spaces
        self._header = struct.pack("<Q", len(raw)) + raw
        self._rows = 0
        self._context = atomic_path(self.path)
        self._handle = None

    def __enter__(self) -> StreamingSafetensors:
        temp = self._context.__enter__()
        self._handle = open(temp, "wb")
        self._handle.write(self._header)
        return self

    def append(self, rows: torch.Tensor) -> None:
        """Append rows (n, *shape[1:]) after the ones already written."""
        if tuple(rows.shape[1:]) != self.shape[1:]:
            raise ValueError(f"rows of shape {tuple(rows.shape[1:])}, the file holds {self.shape[1:]}")
        if self._rows + rows.shape[0] > self.shape[0]:
            raise ValueError(f"{self.path}: more than the announced {self.shape[0]} rows")
        data = rows.detach().to("cpu", self.dtype).contiguous()
        # bf16 has no numpy dtype: write its bytes through an int16 view.
        array = data.view(torch.int16).numpy() if self.dtype is torch.bfloat16 else data.numpy()
        self._handle.write(array.tobytes())
        self._rows += rows.shape[0]

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._handle.close()
        if kind is None and self._rows != self.shape[0]:
            error = ValueError(f"{self.path}: {self._rows} rows written, {self.shape[0]} announced")
            self._context.__exit__(type(error), error, None)
            raise error
        self._context.__exit__(kind, error, tb)
