"""Load pickles of numpy arrays in dicts and lists, refusing every other class a pickle may name."""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

# What numpy needs to rebuild an ndarray (numpy 1 and numpy 2 module names), plus plain containers.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "dict"),
    ("builtins", "list"),
})


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle named a class outside the numpy-array allow-list."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An Unpickler whose `find_class` only resolves numpy array reconstruction and builtin containers."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refusing to load {module}.{name} from a weights pickle: only numpy arrays, dicts and lists "
                "are allowed")
        return super().find_class(module, name)


def load_numpy_pickle(source: str | Path | bytes) -> Any:
    """Unpickle a file (or bytes) holding numpy arrays in nested dicts / lists; anything else raises."""
    if isinstance(source, bytes):
        return NumpyOnlyUnpickler(io.BytesIO(source)).load()
    with open(source, "rb") as handle:
        return NumpyOnlyUnpickler(handle).load()
