"""numpy's own matmul tests (``numpy/_core/tests/test_multiarray.py``: MatmulCommon and
TestMatmul, read from the installed numpy) with ``ukernels.matmul`` swapped in, restricted to
the dtypes ukernels computes natively: int8 ('b'), int16 ('h'), float16 ('e'), float32 ('f'),
plus bool, which numpy's tests mix into the value tests (run as int8, compared with 0).

Adapter (the documented differences, nothing else): integer results are int32 (the documented
widening; numpy's tests build their expected values in the input dtype from small integers, so
they compare equal), float16 results are float32 (the f32 accumulator) unless out= asks for
float16. Tests that stay excluded, and why, are listed in EXCLUDED."""
import importlib.util
import os
import warnings

import numpy as np
import pytest

import ukernels

_PATH = os.path.join(os.path.dirname(np.__file__), "_core", "tests", "test_multiarray.py")
if not os.path.exists(_PATH):  # pragma: no cover - wheels ship their tests; some distributions strip them
    pytest.skip(f"numpy's test files are not installed ({_PATH})", allow_module_level=True)
_spec = importlib.util.spec_from_file_location("_numpy_test_multiarray", _PATH)
_np_tests = importlib.util.module_from_spec(_spec)
with warnings.catch_warnings():  # numpy's own pytest marks (valgrind_error, ...) are unknown here
    warnings.simplefilter("ignore")
    _spec.loader.exec_module(_np_tests)


def uk_matmul(a, b, out=None, **kwargs):
    """ukernels.matmul with numpy's call signature (out positional or keyword). bool operands
    (numpy's tests mix them in) run as int8 0/1 products compared with 0: exact."""
    if kwargs:
        raise TypeError(f"unsupported keyword arguments {sorted(kwargs)}")
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == np.bool_ and b.dtype == np.bool_:
        return ukernels.matmul(a.astype(np.int8), b.astype(np.int8)) != 0
    if out is not None:
        res = ukernels.matmul(a, b, out_dtype=out.dtype if out.dtype in (np.float16, np.float32) else None)
        out[...] = res
        return out
    return ukernels.matmul(a, b)


EXCLUDED = {
    "test_result_types": "checks numpy's result dtypes (int8 x int8 -> int8); ukernels returns int32, documented",
    "test_out_arg": "float64 operands and complex/int outputs with casting rules: ukernels asks for "
                    "precision='f32' on float64 and does not cast outputs",
    "test_out_contiguous": "float64 operands (needs precision='f32')",
    "test_dot_equivalent": "float64 operands (needs precision='f32')",
    "test_dot_equivalent_matrix_matrix_blastypes": "float64/complex dtypes",
    "test_matmul_object": "object arrays",
    "test_matmul_object_type_scalar": "object arrays",
    "test_matmul_exception_multiply": "object arrays",
    "test_matmul_exception_add": "object arrays",
    "test_empty_out": "float64 out",
    "test_matmul_empty": "float64 operands",
}


class TestUkernelsMatmul(_np_tests.TestMatmul):
    types = "?bhef"
    matmul = staticmethod(uk_matmul)

    def test_matmul_bool(self):
        """numpy's test_matmul_bool (gh-14439) calls np.matmul itself; the same checks through
        ukernels: bool results stay 0/1, and agree with np.dot."""
        a = np.array([[1, 0], [1, 1]], dtype=bool)
        b = self.matmul(a, a)
        assert b.dtype == np.bool_ and np.max(b.view(np.uint8)) == 1
        np.testing.assert_array_equal(b, np.dot(a, a))
        rg = np.random.default_rng(np.random.PCG64(43))
        d = rg.integers(2, size=4 * 5, dtype=np.int8).reshape(4, 5) > 0
        np.testing.assert_array_equal(self.matmul(d, d.reshape(5, 4)), np.dot(d, d.reshape(5, 4)))
        c = self.matmul(np.zeros((2, 0), dtype=bool), np.zeros(0, dtype=bool))
        assert c.shape == (2,) and not np.any(c)


def _excluded(why: str):
    @pytest.mark.skip(reason=f"excluded: {why}")
    def test_excluded(self, *args, **kwargs):  # replaces numpy's test of that name
        pass
    return test_excluded


for _name, _why in EXCLUDED.items():
    if hasattr(TestUkernelsMatmul, _name):
        setattr(TestUkernelsMatmul, _name, _excluded(_why))


def test_the_suite_was_found():
    names = [n for n in dir(TestUkernelsMatmul) if n.startswith("test_")]
    assert {"test_exceptions", "test_shapes", "test_vector_matrix_values", "test_matrix_matrix_values"} <= set(names)
