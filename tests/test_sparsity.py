"""Group-sparse encoding and the per-layer choice of r."""
import numpy as np
import pytest

from helpers import group_sparse_weight
from sparselite.converters.sparsity import choose_group_size, decode_group_sparse, encode_group_sparse

rng = np.random.default_rng(5)


@pytest.mark.parametrize("r", [1, 2, 4, 8])
@pytest.mark.parametrize("oc,k", [(13, 7), (8, 70000), (1, 3)])
def test_encode_decode_round_trip(r, oc, k):
    w = group_sparse_weight(rng, oc, k, r, 0.01 if k > 1000 else 0.4)
    row_ptr, col_idx, values = encode_group_sparse(w, r)
    assert row_ptr.dtype == np.uint32 and len(row_ptr) == (oc + r - 1) // r + 1
    assert col_idx.dtype == (np.uint32 if k > 65536 else np.uint16)
    assert values.shape == (row_ptr[-1], r)
    assert np.array_equal(decode_group_sparse(row_ptr, col_idx, values, oc, k), w)


def test_choose_group_size():
    assert choose_group_size(group_sparse_weight(rng, 64, 64, 4, 0.2, empty_rows=False)) == 4
    assert choose_group_size(group_sparse_weight(rng, 64, 64, 8, 0.2, empty_rows=False)) == 8
    dense = rng.standard_normal((64, 64)).astype(np.float32)
    assert choose_group_size(dense) == 0
    unstructured = dense * (rng.random((64, 64)) < 0.2)
    assert choose_group_size(unstructured) == 1
    assert choose_group_size(dense * (rng.random((64, 64)) < 0.8)) == 0  # too dense to pay off
