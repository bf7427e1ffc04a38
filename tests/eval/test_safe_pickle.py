"""The restricted unpickler: numpy arrays in dicts and lists load, anything else is refused."""
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from worldmodel.eval.safe_pickle import UnsafePickleError, load_numpy_pickle


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_arrays_in_dicts_and_lists_round_trip() -> None:
    data = {"params": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, "stats": [np.ones((1, 1, 1, 1, 4))]}
    loaded = load_numpy_pickle(pickle.dumps(data, protocol=4))
    np.testing.assert_array_equal(loaded["params"]["w"], data["params"]["w"])
    assert loaded["stats"][0].shape == (1, 1, 1, 1, 4)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_pickle_naming_os_system_is_refused(protocol: int) -> None:
    with pytest.raises(UnsafePickleError, match="system"):
        load_numpy_pickle(pickle.dumps({"w": _Exploit()}, protocol=protocol))


def test_other_containers_are_refused() -> None:
    with pytest.raises(UnsafePickleError, match="collections.OrderedDict"):
        load_numpy_pickle(pickle.dumps(OrderedDict(w=np.zeros(2)), protocol=4))
