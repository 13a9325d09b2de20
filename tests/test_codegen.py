"""The codegen path: generated kernels vs numpy and vs the handwritten
ukernels (bit for bit on small-integer inputs), and the kernel cache."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ukernels
from ukernels.abi import ELEMENT_TYPES, mmt4d
from ukernels.codegen import cache, targets
from ukernels.codegen.compiler import CompileError, CompilerNotFound
from ukernels.codegen.render import KernelSpec, render
from conftest import k_scaled_tol, small_ints


@pytest.fixture(autouse=True)
def kernel_cache(tmp_path_factory, monkeypatch):
    """One fresh cache directory for this module's tests (shared, so each kernel compiles once)."""
    root = getattr(kernel_cache, "root", None)
    if root is None:
        root = kernel_cache.root = str(tmp_path_factory.mktemp("kernel-cache"))
    monkeypatch.setenv("UKERNELS_CACHE_DIR", root)
    return root


@pytest.fixture
def no_builtin_prebuilt(monkeypatch, tmp_path):
    """Hide the package's own pre-generated kernels (built by setup.py)."""
    from ukernels.codegen import prebuilt
    monkeypatch.setattr(prebuilt, "BUILTIN_DIR", str(tmp_path / "no-builtin"))
    cache.clear_memo()
    yield
    cache.clear_memo()


def _skip_unless_target(name):
    if name not in targets.host_targets():
        t = targets.target(name)
        pytest.skip(f"this CPU cannot run codegen target {name!r} (needs CPU bits {t.required_cpu:#x}, arch {t.arch})")


# (types, M0, N0, target): the default tiles plus tiles the handwritten set lacks
GEN_CASES = [
    ("f32f32f32", 6, 8, "generic"), ("f32f32f32", 1, 8, "generic"), ("f32f32f32", 4, 12, "generic"),
    ("s8s8s32", 8, 8, "generic"), ("s8s8s32", 3, 5, "generic"),
    ("f32f32f32", 6, 16, "avx2"), ("f32f32f32", 4, 24, "avx2"), ("f32f32f32", 1, 16, "avx2"),
    ("f32f32f32", 12, 8, "avx2"),
    ("s8s8s32", 8, 8, "avx2"), ("s8s8s32", 4, 16, "avx2"), ("s8s8s32", 2, 8, "avx2"),
    ("f32f32f32", 16, 16, "avx512"), ("f32f32f32", 8, 32, "avx512"), ("f32f32f32", 1, 16, "avx512"),
    ("f32f32f32", 2, 48, "avx512"),
    ("s8s8s32", 16, 16, "avx512"), ("s8s8s32", 16, 16, "avx512_vnni"), ("s8s8s32", 1, 16, "avx512_vnni"),
]
TILE_SHAPES = [(1, 1, 1), (2, 3, 1000), (5, 7, 13), (9, 9, 9), (0, 3, 4), (3, 0, 4), (3, 4, 0)]


@pytest.mark.parametrize("static_k", [None, 13])
@pytest.mark.parametrize("shape", TILE_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("case", GEN_CASES, ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}-{c[3]}")
def test_generated_kernel_exact_vs_numpy_and_handwritten(case, shape, static_k):
    types_name, M0, N0, target = case
    _skip_unless_target(target)
    types = ELEMENT_TYPES[types_name]
    spec = KernelSpec(types_name, M0, N0, target, static_k)
    kernel = cache.get_kernel(spec)
    M, N, K = shape
    K0 = spec.K0
    rng = np.random.default_rng(M0 * 1000 + N0 * 10 + K)
    lo, hi = (-128, 127) if types_name == "s8s8s32" else (-4, 4)
    pad = 3  # padded outer strides and offsets
    lhs = rng.integers(lo, hi + 1, pad + max(M, 1) * (K * M0 * K0 + pad)).astype(types.lhs)
    rhs = rng.integers(lo, hi + 1, pad + max(N, 1) * (K * N0 * K0 + pad)).astype(types.rhs)
    init = rng.integers(-50, 51, pad + max(M, 1) * (N * M0 * N0 + pad) + 5).astype(types.acc)
    kw = dict(types=types, M=M, N=N, K=K, M0=M0, N0=N0, K0=K0, lhs_offset=pad, lhs_stride0=K * M0 * K0 + pad,
              rhs_offset=pad, rhs_stride0=K * N0 * K0 + pad, out_offset=pad, out_stride0=N * M0 * N0 + pad)
    for accumulate in (False, True):
        got, want = init.copy(), init.copy()
        mmt4d(lhs, rhs, got, accumulate=accumulate, fn=kernel.fn, **kw)
        mmt4d(lhs, rhs, want, accumulate=accumulate, isa="generic", **kw)  # handwritten generic: any tile
        np.testing.assert_array_equal(got, want)
        # and the handwritten result is the numpy one (guards against both being wrong alike)
        for m in range(M):
            l4 = lhs[pad + m * kw["lhs_stride0"]:][:K * M0 * K0].reshape(K, M0, K0).astype(np.int64)
            for n in range(N):
                r4 = rhs[pad + n * kw["rhs_stride0"]:][:K * N0 * K0].reshape(K, N0, K0).astype(np.int64)
                o = pad + m * kw["out_stride0"] + n * M0 * N0
                ref = np.einsum("kiq,kjq->ij", l4, r4) + (init[o:o + M0 * N0].reshape(M0, N0) if accumulate else 0)
                np.testing.assert_array_equal(got[o:o + M0 * N0].reshape(M0, N0), ref.astype(types.acc))


SHAPES = [(1, 1, 1), (1, 1, 1000), (2, 2, 2), (5, 7, 13), (9, 9, 9), (6, 13, 3), (81, 19, 41),
          (127, 255, 511), (17, 33, 65), (1, 300, 64), (3, 64, 1000), (0, 4, 5), (4, 5, 0)]


@pytest.mark.parametrize("dtype", [np.float32, np.int8])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matmul_codegen_equals_ukernel_bitwise(isa, shape, dtype):
    M, N, K = shape
    rng = np.random.default_rng(M + 31 * N + 977 * K)
    lo, hi = (-128, 127) if dtype == np.int8 else (-4, 4)
    a = small_ints(rng, (M, K), dtype, lo, hi)
    b = small_ints(rng, (K, N), dtype, lo, hi)
    bias = small_ints(rng, (N,), np.float32 if dtype == np.float32 else np.int32)
    for kw in ({}, {"bias": bias, "activation": "relu"}):
        gen = ukernels.matmul(a, b, backend="codegen", **kw)
        hand = ukernels.matmul(a, b, backend="ukernel", **kw)
        np.testing.assert_array_equal(gen, hand)
    ref = a.astype(np.int64) @ b.astype(np.int64)
    np.testing.assert_array_equal(ukernels.matmul(a, b, backend="codegen"), ref.astype(gen.dtype))


def test_matmul_codegen_random_floats_within_k_scaled_tolerance(isa):
    rng = np.random.default_rng(11)
    a = rng.standard_normal((70, 700)).astype(np.float32)
    b = rng.standard_normal((700, 90)).astype(np.float32)
    out = ukernels.matmul(a, b, backend="codegen", activation="gelu")
    pre = ukernels.matmul(a, b, backend="codegen")
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert (np.abs(pre - ref) <= k_scaled_tol(a, b)).all()
    # summation orders differ between the paths: both within the bound of the exact value
    hand = ukernels.matmul(a, b, backend="ukernel", activation="gelu")
    assert np.allclose(out, hand, rtol=0, atol=float(2.3 * k_scaled_tol(a, b).max()) + 1e-6)


# ---- the cache -------------------------------------------------------------

SPEC = KernelSpec("f32f32f32", 5, 8, "generic", 7)  # not in codegen/default_kernels.json


def test_cache_miss_then_memo_then_disk_hit():
    cache.clear_memo()
    key = cache.cache_key(SPEC)
    _, so, meta, _ = cache.entry_paths(key)
    for p in (so, meta):
        if os.path.exists(p):
            os.unlink(p)
    k1 = cache.get_kernel(SPEC)
    assert k1.origin == "compiled" and os.path.exists(so) and os.path.exists(meta)
    assert cache.get_kernel(SPEC) is k1  # memo
    cache.clear_memo()
    assert cache.get_kernel(SPEC).origin == "disk"
    assert json.load(open(meta))["name"] == SPEC.name


@pytest.mark.parametrize("damage", ["truncate", "garbage", "no-metadata"])
def test_corrupt_entry_is_rebuilt(damage):
    # Built by another process and never loaded here: a library this process has
    # mapped must not be damaged in place (the cache itself only ever replaces files).
    spec = KernelSpec("f32f32f32", 3, 8, "generic", {"truncate": 101, "garbage": 102, "no-metadata": 103}[damage])
    code = ("from ukernels.codegen import cache; from ukernels.codegen.render import KernelSpec; "
            f"print(cache.get_kernel(KernelSpec(*{(spec.types, spec.M0, spec.N0, spec.target, spec.static_k)!r})).path)")
    so = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                        env=dict(os.environ)).stdout.strip()
    meta = so[:-3] + ".json"
    if damage == "truncate":
        with open(so, "r+b") as f:
            f.truncate(100)
    elif damage == "garbage":
        with open(so, "wb") as f:
            f.write(b"not an ELF file")
    else:
        os.unlink(meta)
    cache.clear_memo()
    k2 = cache.get_kernel(spec)
    assert k2.origin == "compiled" and k2.path == so
    K = spec.static_k
    out = np.zeros(3 * 8, np.float32)
    mmt4d(np.ones(3 * K, np.float32), np.ones(8 * K, np.float32), out, types=ELEMENT_TYPES["f32f32f32"],
          M=1, N=1, K=K, M0=3, N0=8, K0=1, fn=k2.fn)
    assert (out == K).all()


def test_flags_or_compiler_change_is_a_miss(monkeypatch):
    key = cache.cache_key(SPEC)
    from ukernels.codegen import compiler
    monkeypatch.setattr(compiler, "compile_flags", lambda t: ["-O1", "-std=c11", "-fPIC", "-shared"])
    assert cache.cache_key(SPEC) != key
    monkeypatch.undo()
    monkeypatch.setenv("UKERNELS_CACHE_DIR", kernel_cache.root)
    assert cache.cache_key(SPEC) == key
    monkeypatch.setenv("CC", "gcc -fno-common")  # a different compiler command
    assert cache.cache_key(SPEC) != key


def test_two_processes_compile_the_same_kernel_at_once(tmp_path):
    env = dict(os.environ, UKERNELS_CACHE_DIR=str(tmp_path))
    code = ("from ukernels.codegen import cache; from ukernels.codegen.render import KernelSpec; "
            "k = cache.get_kernel(KernelSpec('f32f32f32', 3, 8, 'generic', 5)); print(k.origin, k.path)")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o[0] for o in outs) == ["compiled", "disk"]  # one compiled, the other waited and loaded
    assert outs[0][1] == outs[1][1]
    leftovers = [f for d, _, fs in os.walk(tmp_path) for f in fs if f.startswith(".tmp-")]
    assert not leftovers


def test_compile_failure_names_compiler_command_and_log(monkeypatch, tmp_path, no_builtin_prebuilt):
    monkeypatch.setenv("UKERNELS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    cache.clear_memo()
    with pytest.raises(CompileError) as err:
        cache.get_kernel(KernelSpec("f32f32f32", 3, 8, "generic"))  # not prebuilt: must compile
    msg = str(err.value)
    assert "false exited with" in msg and "command: false" in msg and os.path.exists(err.value.stderr_path)
    with pytest.raises(CompileError):
        ukernels.matmul(np.ones((3, 3), np.float32), np.ones((3, 3), np.float32), backend="codegen")


def test_missing_compiler_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("UKERNELS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler-ukernels")
    cache.clear_memo()
    with pytest.raises(CompilerNotFound, match="no-such-compiler-ukernels"):
        cache.get_kernel(KernelSpec("f32f32f32", 5, 8, "generic"))


def test_bad_specs_are_rejected():
    with pytest.raises(ValueError, match="multiple of the avx2 vector width 8"):
        render(KernelSpec("f32f32f32", 4, 12, "avx2"))
    with pytest.raises(ValueError, match="vector registers"):
        render(KernelSpec("f32f32f32", 16, 16, "avx2"))
    with pytest.raises(ValueError, match="unknown codegen target"):
        render(KernelSpec("f32f32f32", 4, 8, "sse9"))


def test_explain_api_and_cli():
    d = ukernels.explain(16, 4096, 4096, backend="codegen", source=True)
    assert d["backend"] == "codegen" and d["function"].startswith("ukg_mmt4d_f32f32f32_")
    assert d["function"] in d["source"] and d["rhs_packing"].startswith("none")  # source served; b read in place
    h = ukernels.explain(1024, 1024, 1024, dtype="int8", backend="ukernel")
    assert h["function"].startswith("uk_mmt4d_tile_s8s8s32_") and h["ukernel_tile"].endswith(("x2", "x4"))
    out = subprocess.run([sys.executable, "-m", "ukernels", "explain", "8", "8", "8", "--backend", "codegen"],
                         capture_output=True, text=True, check=True, env=dict(os.environ))
    expected = ukernels.explain(8, 8, 8, backend="codegen")["function"]  # depends on the host's ISA
    assert expected.startswith("ukg_mmt4d_f32f32f32_") and expected in out.stdout
    with pytest.raises(ValueError, match="M must be an int >= 0"):
        ukernels.explain(-1, 2, 3)


# ---- build-time generator, prebuilt kernels, tuning, the "auto" rule -------

def _write_spec(path, kernels):
    path.write_text(json.dumps({"kernels": kernels}))
    return str(path)


def test_generator_cli_end_to_end_then_load_without_a_compiler(tmp_path):
    spec = _write_spec(tmp_path / "spec.json", [
        {"types": "f32f32f32", "target": "generic", "tiles": [[6, 8], [1, 8]], "static_k": [None, 64]},
        # M above DIRECT_MAX_M: K blocks of 64 (small M reads b in place, 8 rows per block)
        {"types": "f32f32f32", "target": "generic", "shapes": [[40, 40, 64]], "static_k": [64]},
        {"types": "s8s8s32", "target": "generic", "shapes": [[16, 64, 64]]},
    ])
    out = tmp_path / "kernels"
    proc = subprocess.run([sys.executable, "-m", "ukernels.codegen", "build", "--spec", spec, "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "[5/5]" in proc.stderr and "built 5 kernels" in proc.stderr  # progress
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "ukernels-kernels" and len(manifest["kernels"]) == 5
    # a process with no compiler on PATH and an empty cache: only the prebuilt library can serve
    code = ("import numpy as np, shutil, ukernels; assert shutil.which('cc') is None and shutil.which('gcc') is None; "
            "a = np.arange(40 * 64, dtype=np.float32).reshape(40, 64) % 5; b = np.ones((64, 40), np.float32); "
            "d = ukernels.explain(40, 40, 64, backend='codegen'); "
            "assert d['kernel_origin'] == 'prebuilt', d; "
            "assert np.array_equal(ukernels.matmul(a, b, backend='codegen'), a @ b); "
            "assert ukernels.explain(40, 40, 64)['backend'] == 'codegen'; "  # generated for this shape
            "assert ukernels.explain(41, 40, 64)['backend'] == 'ukernel'; print(d['function'])")
    nocc = tmp_path / "bin"
    nocc.mkdir()
    env = {"PATH": str(nocc), "HOME": str(tmp_path), "UKERNELS_ISA": "generic",
           "UKERNELS_KERNEL_PATH": str(out), "UKERNELS_CACHE_DIR": str(tmp_path / "empty-cache")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "ukg_mmt4d_f32f32f32_6x8x1_k64__generic"


def test_generator_rejects_bad_spec_files(tmp_path):
    bad = _write_spec(tmp_path / "bad.json", [{"types": "f32f32f32", "target": "avx2", "tiles": [[4, 12]]}])
    proc = subprocess.run([sys.executable, "-m", "ukernels.codegen", "build", "--spec", bad, "-o",
                           str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "multiple of the avx2 vector width" in proc.stderr
    (tmp_path / "nojson.json").write_text("{")
    proc = subprocess.run([sys.executable, "-m", "ukernels.codegen", "build", "--spec",
                           str(tmp_path / "nojson.json"), "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "cannot read kernel spec file" in proc.stderr


@pytest.mark.parametrize("damage", ["library", "manifest", "foreign"])
def test_damaged_or_foreign_manifest_is_ignored_with_a_warning(tmp_path, monkeypatch, damage, no_builtin_prebuilt):
    from ukernels.codegen import generator, prebuilt
    out = tmp_path / "k"
    generator.build([KernelSpec("f32f32f32", 2, 8, "generic")], str(out), progress=None)
    if damage == "library":
        with open(out / "libukernels_kernels.so", "r+b") as f:
            f.truncate(64)
    elif damage == "manifest":
        (out / "manifest.json").write_text("{not json")
    else:
        (out / "manifest.json").write_text(json.dumps({"format": "something-else", "version": 9}))
    monkeypatch.setenv("UKERNELS_KERNEL_PATH", str(out))
    prebuilt.reset()
    with pytest.warns(RuntimeWarning, match="ignoring pre-generated kernels"):
        assert prebuilt.find(KernelSpec("f32f32f32", 2, 8, "generic")) is None


def test_tune_persists_the_winner_and_auto_then_uses_codegen(tmp_path, monkeypatch, no_builtin_prebuilt):
    from ukernels.codegen import tuning
    monkeypatch.setenv("UKERNELS_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("UKERNELS_ISA", "generic")
    tuning.forget()
    cache.clear_memo()
    assert ukernels.explain(24, 40, 32)["backend"] == "ukernel"
    r = ukernels.codegen.tune(24, 40, 32, repeats=1)
    assert r["tile"] in r["results"] and os.path.exists(tuning.tuned_path())
    saved = json.loads(open(tuning.tuned_path()).read())
    assert saved["f32f32f32:generic:24x40x32"] == list(r["tile"][:2])
    d = ukernels.explain(24, 40, 32)
    assert d["backend"] == "codegen" and d["ukernel_tile"] == "%dx%dx1" % r["tile"][:2]
    a = (np.arange(24 * 32, dtype=np.float32).reshape(24, 32) % 7) - 3
    b = (np.arange(32 * 40, dtype=np.float32).reshape(32, 40) % 5) - 2
    np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
    # "auto" falls back to the handwritten kernels, with a warning, when it cannot compile
    from ukernels.runtime import dispatch
    monkeypatch.setattr(dispatch, "_warned_fallback", False)
    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv("UKERNELS_CACHE_DIR", str(tmp_path / "c"))  # tuned.json stays; kernel cache is warm ...
    cache.clear_memo()
    for p in (tmp_path / "c").rglob("*.so"):
        p.unlink()  # ... but no kernel can be loaded or compiled now
    with pytest.warns(RuntimeWarning, match="falls back to the handwritten"):
        np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
