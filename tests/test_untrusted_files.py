"""Files ukernels reads are untrusted input (README, "Files ukernels reads"):
damaged manifests, tuned tiles, cache entries and Linear files cost a
warning, a rebuild or one clear ValueError -- never a traceback from inside,
a hang or a crash -- and ``auto`` always falls back (once, remembered) when
the codegen path cannot serve a kernel."""
import hashlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest

import ukernels
from ukernels import ops as O
from ukernels.codegen import cache, generator, prebuilt, tuning
from ukernels.codegen.compiler import CacheError, CodegenError, CompileError
from ukernels.codegen.render import KernelSpec
from ukernels.runtime import dispatch

A = (np.arange(24 * 32, dtype=np.float32).reshape(24, 32) % 7) - 3
B = (np.arange(32 * 40, dtype=np.float32).reshape(32, 40) % 5) - 2
REF = A @ B


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A private cache, no package-provided kernels, no remembered decisions."""
    monkeypatch.setenv("UKERNELS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(prebuilt, "BUILTIN_DIR", str(tmp_path / "no-builtin"))
    monkeypatch.delenv("UKERNELS_KERNEL_PATH", raising=False)
    monkeypatch.setattr(dispatch, "_warned_fallback", False)
    tuning.forget()
    cache.clear_memo()
    yield tmp_path
    tuning.forget()
    cache.clear_memo()


def _auto_matmul_ok():
    np.testing.assert_array_equal(ukernels.matmul(A, B), REF)
    np.testing.assert_array_equal(ukernels.matmul(A, B, backend="codegen"), REF)


# ---- manifests -------------------------------------------------------------------------------------

def _good_manifest(out):
    generator.build([KernelSpec("f32f32f32", 2, 8, "generic")], str(out), progress=None)
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("kind", ["array", "deeply nested", "spec wrong types", "spec not an object",
                                  "library path escapes", "kernels not a list", "shapes malformed", "huge",
                                  "directory", "fifo", "name not identifier", "bad utf8"])
def test_hostile_manifest_is_ignored_with_a_warning(fresh, monkeypatch, kind):
    out = fresh / "k"
    doc = _good_manifest(out)
    path = out / "manifest.json"
    if kind == "array":
        path.write_text("[1]")
    elif kind == "deeply nested":
        path.write_text("[" * 200_000 + "]" * 200_000)
    elif kind == "spec wrong types":
        doc["kernels"][0]["spec"]["M0"] = "2"
        path.write_text(json.dumps(doc))
    elif kind == "spec not an object":
        doc["kernels"][0]["spec"] = [2, 8]
        path.write_text(json.dumps(doc))
    elif kind == "library path escapes":
        doc["library"] = "../../../../etc/passwd"
        path.write_text(json.dumps(doc))
    elif kind == "kernels not a list":
        doc["kernels"] = {"a": 1}
        path.write_text(json.dumps(doc))
    elif kind == "shapes malformed":
        doc["kernels"][0]["shapes"] = [[1, 2]]
        path.write_text(json.dumps(doc))
    elif kind == "huge":
        with open(path, "wb") as f:
            f.truncate(64 << 20)  # sparse: larger than the manifest limit
    elif kind == "directory":
        path.unlink()
        path.mkdir()
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "name not identifier":
        doc["kernels"][0]["name"] = "x; rm -rf /"
        path.write_text(json.dumps(doc))
    else:
        path.write_bytes(b'{"format": "\xff\xfe"}')
    monkeypatch.setenv("UKERNELS_KERNEL_PATH", str(out))
    prebuilt.reset()
    with pytest.warns(RuntimeWarning, match="ignoring pre-generated kernels"):
        assert prebuilt.find(KernelSpec("f32f32f32", 2, 8, "generic")) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _auto_matmul_ok()


# ---- tuned.json -----------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", [[0, 16], [4], "4x16", {"M0": 4}, [4, 16, 1], [True, 8], [-2, 8], [4, 10],
                                   [10**9, 8]])
def test_malformed_tuned_entry_is_ignored(fresh, monkeypatch, entry):
    monkeypatch.setenv("UKERNELS_ISA", "generic")
    os.makedirs(os.path.dirname(tuning.tuned_path()), exist_ok=True)
    with open(tuning.tuned_path(), "w") as f:
        json.dump({"f32f32f32:generic:24x40x32": entry, "f32f32f32:generic:1x1x1": [2, 8]}, f)
    with pytest.warns(RuntimeWarning, match="ignoring 1 malformed entries"):
        assert tuning.tuned_tile("f32f32f32", "generic", 24, 40, 32) is None
    assert tuning.tuned_tile("f32f32f32", "generic", 1, 1, 1) == (2, 8, 1)  # the good entry still counts
    _auto_matmul_ok()


@pytest.mark.parametrize("content", [b"[]", b"7", b"{", b"[" * 100_000])
def test_malformed_tuned_file_is_ignored(fresh, content):
    os.makedirs(os.path.dirname(tuning.tuned_path()), exist_ok=True)
    with open(tuning.tuned_path(), "wb") as f:
        f.write(content)
    with pytest.warns(RuntimeWarning, match="ignoring tuned tiles|ignoring"):
        assert tuning.tuned_tile("f32f32f32", "generic", 24, 40, 32) is None
    _auto_matmul_ok()


# ---- cache entries --------------------------------------------------------------------------------

SPEC = KernelSpec("f32f32f32", 3, 8, "generic", 5)


@pytest.mark.parametrize("damage", ["json array", "json null", "json deep", "sha not a string", "so missing",
                                    "so is a directory"])
def test_damaged_cache_entry_is_rebuilt(fresh, damage):
    k = cache.get_kernel(SPEC)
    assert k.origin == "compiled"
    _, so, meta, _ = cache.entry_paths(k.key)
    if damage == "json array":
        open(meta, "w").write("[]")
    elif damage == "json null":
        open(meta, "w").write("null")
    elif damage == "json deep":
        open(meta, "w").write("[" * 100_000)
    elif damage == "sha not a string":
        d = json.load(open(meta))
        d["sha256"] = 7
        open(meta, "w").write(json.dumps(d))
    elif damage == "so missing":
        os.unlink(so)
    else:
        os.unlink(so)
        os.mkdir(so)
        os.rmdir(so)  # replaced below by a dangling symlink (the same "not a regular file")
        os.symlink(str(fresh / "nowhere"), so)
    cache.clear_memo()
    again = cache.get_kernel(SPEC)
    assert again.origin == "compiled" and os.path.isfile(so) and not os.path.islink(so)


def test_cached_library_that_is_a_symlink_to_dev_zero_does_not_hang(fresh):
    k = cache.get_kernel(SPEC)
    _, so, _, _ = cache.entry_paths(k.key)
    os.unlink(so)
    os.symlink("/dev/zero", so)
    code = textwrap.dedent("""
        from ukernels.codegen import cache
        from ukernels.codegen.render import KernelSpec
        print(cache.get_kernel(KernelSpec("f32f32f32", 3, 8, "generic", 5)).origin)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
    assert proc.returncode == 0 and proc.stdout.strip() == "compiled", proc.stderr


def test_published_entries_are_shareable_and_stale_temporaries_swept(fresh):
    key = cache.cache_key(SPEC)
    d, so, meta, lock = cache.entry_paths(key)
    os.makedirs(d)
    stale = os.path.join(d, ".tmp-killed.so")
    young = os.path.join(d, ".tmp-in-progress.so")
    for p in (stale, young):
        open(p, "w").close()
    os.utime(stale, (1, 1))  # a compile killed long ago
    cache.get_kernel(SPEC)
    assert not os.path.exists(stale) and os.path.exists(young)
    assert os.stat(so).st_mode & 0o777 == 0o755 and os.stat(meta).st_mode & 0o777 == 0o644


# ---- compilers and cache directories that cannot serve --------------------------------------------

def _force_auto_codegen(monkeypatch):
    """Make "auto" want a generated kernel for A @ B (as if tuned here) with an unusual tile."""
    monkeypatch.setattr(tuning, "tuned_tile", lambda types, target, M, N, K: (3, 8, 1) if (M, N, K) == (24, 40, 32)
                        else None)


def _script(tmp, name, body):
    p = tmp / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


@pytest.mark.parametrize("problem", ["failing compiler", "hanging compiler", "compiler writes nothing",
                                     "cache dir under a file", "cache dir is a file"])
def test_auto_falls_back_once_and_remembers(fresh, monkeypatch, problem):
    monkeypatch.setenv("UKERNELS_ISA", "generic")
    _force_auto_codegen(monkeypatch)
    counter = fresh / "runs"
    if problem == "failing compiler":
        monkeypatch.setenv("CC", _script(fresh, "cc", f'echo x >> {counter}\n[ "$1" = --version ] && exit 0\n'
                                                     'echo "error: broken" >&2; exit 1\n'))
    elif problem == "hanging compiler":
        monkeypatch.setenv("CC", _script(fresh, "cc", f'echo x >> {counter}\n[ "$1" = --version ] && exit 0\n'
                                                     'sleep 60\n'))
        monkeypatch.setenv("UKERNELS_COMPILE_TIMEOUT", "1")
    elif problem == "compiler writes nothing":
        monkeypatch.setenv("CC", _script(fresh, "cc", f'echo x >> {counter}\nexit 0\n'))
    elif problem == "cache dir under a file":
        (fresh / "file").write_text("x")
        monkeypatch.setenv("UKERNELS_CACHE_DIR", str(fresh / "file" / "cache"))
    else:
        (fresh / "file").write_text("x")
        monkeypatch.setenv("UKERNELS_CACHE_DIR", str(fresh / "file"))
    with pytest.warns(RuntimeWarning, match="falls back to the handwritten") as rec:
        np.testing.assert_array_equal(ukernels.matmul(A, B), REF)
    assert len(rec) == 1
    runs = counter.read_text().count("x") if counter.exists() else 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        for _ in range(5):
            np.testing.assert_array_equal(ukernels.matmul(A, B), REF)
    assert (counter.read_text().count("x") if counter.exists() else 0) == runs  # the compiler did not run again
    with pytest.raises(CodegenError) as err:  # explicit codegen: the same clear error, at once
        ukernels.matmul(A, B, backend="codegen")
    msg = str(err.value)
    if problem.startswith("cache dir"):
        assert isinstance(err.value, CacheError) and "UKERNELS_CACHE_DIR" in msg
    elif problem == "hanging compiler":
        assert isinstance(err.value, CompileError) and "timed out after 1 s" in msg
    elif problem == "compiler writes nothing":
        assert "no usable output" in msg
        assert not [f for _, _, fs in os.walk(fresh / "cache") for f in fs if f.endswith(".so")]  # nothing published


# ---- Linear files --------------------------------------------------------------------------------

def _linear():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    return ukernels.Linear(w, bias=rng.standard_normal(6).astype(np.float32), activation="relu",
                           epilogue=[O.Scale(0.5), O.Clamp(-1.0, 2.0)])


def _rewrite_header(blob: bytes, edit) -> bytes:
    """A v2 file with its header edited and the digest recomputed (valid framing, hostile content)."""
    magic, version, hlen = struct.unpack_from("<8sII", blob)
    header = json.loads(blob[48:48 + hlen])
    edit(header)
    new = json.dumps(header).encode()
    return struct.pack("<8sII", magic, version, len(new)) + hashlib.sha256(new).digest() + new + blob[48 + hlen:]


def test_changed_header_digit_is_detected(tmp_path):
    lin = _linear()
    blob = io.BytesIO()
    lin.save(blob)
    data = blob.getvalue()
    assert b'"scale": 0.5' in data
    bad = data.replace(b'"scale": 0.5', b'"scale": 0.4')
    with pytest.raises(ValueError, match=r"header is corrupt \(sha256 mismatch\)"):
        ukernels.Linear.load(io.BytesIO(bad))


@pytest.mark.parametrize("edit", [
    lambda h: h.update(arrays=[]),
    lambda h: h.update(arrays="x"),
    lambda h: h["arrays"][0].update(shape=[6, -5]),
    lambda h: h["arrays"][0].update(dtype="O"),
    lambda h: h["arrays"][0].update(dtype="<U3"),
    lambda h: h["arrays"][0].update(nbytes=10**15),
    lambda h: h["arrays"][1].update(offset=0),
    lambda h: h.update(ops=[{"op": "os.system", "fields": {}}]),
    lambda h: h.update(ops=[{"op": "Scale", "fields": {"scale": {"array": 99}}}]),
    lambda h: h.update(ops=[{"op": "Scale", "fields": {"nope": 1}}]),
    lambda h: h.update(ops=[{"op": "Clamp", "fields": {"lo": [[[[1]]]]}}]),
    lambda h: h.update(bias={"array": 0}),
    lambda h: h.update(in_features="5"),
    lambda h: h.update(layout="mn"),
    lambda h: h.update(dtype="float64"),
    lambda h: h.update(activation=["relu"]),
    lambda h: h.pop("bias"),
    lambda h: h.clear(),
], ids=lambda f: "edit")
def test_malformed_headers_raise_value_error(edit):
    blob = io.BytesIO()
    _linear().save(blob)
    bad = _rewrite_header(blob.getvalue(), edit)
    with pytest.raises(ValueError):
        ukernels.Linear.load(io.BytesIO(bad))


def test_header_not_an_object_or_deeply_nested():
    for header in (b"[1]", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe", b"null"):
        blob = struct.pack("<8sII", b"UKLINEAR", 2, len(header)) + hashlib.sha256(header).digest() + header
        with pytest.raises(ValueError, match="header|JSON"):
            ukernels.Linear.load(io.BytesIO(blob))


def test_foreign_gigabyte_file_is_rejected_from_its_first_bytes(tmp_path):
    p = tmp_path / "big.bin"
    with open(p, "wb") as f:
        f.write(b"NOTOURS!")
        f.truncate(1 << 30)  # sparse 1 GiB
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="bad magic"):
            ukernels.Linear.load(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    # a header length that claims gigabytes is refused before reading it
    blob = struct.pack("<8sII", b"UKLINEAR", 2, 0xFFFFFFF0) + b"\0" * 32
    with pytest.raises(ValueError, match="exceeds"):
        ukernels.Linear.load(io.BytesIO(blob))


def test_lying_array_length_costs_no_memory_up_front(tmp_path):
    blob = io.BytesIO()
    _linear().save(blob)
    data = _rewrite_header(blob.getvalue(), lambda h: h["arrays"][-1].update(shape=[1 << 30], nbytes=4 << 30))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="truncated"):
            ukernels.Linear.load(io.BytesIO(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_version_1_files_still_load(tmp_path):
    lin = _linear()
    blob = io.BytesIO()
    lin.save(blob)
    data = blob.getvalue()
    _, _, hlen = struct.unpack_from("<8sII", data)
    header = json.loads(data[48:48 + hlen])
    header["version"] = 1
    h1 = json.dumps(header).encode()
    v1 = struct.pack("<8sII", b"UKLINEAR", 1, len(h1)) + h1 + data[48 + hlen:]
    x = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_array_equal(ukernels.Linear.load(io.BytesIO(v1))(x), lin(x))


def test_linear_pickle_file_objects_zero_features_big_endian(tmp_path):
    lin = _linear()
    x = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lin))(x), lin(x))
    buf = io.BytesIO()
    lin.save(buf)
    buf.seek(0)
    np.testing.assert_array_equal(ukernels.Linear.load(buf)(x), lin(x))
    with open(tmp_path / "l.ukl", "wb") as f:
        lin.save(f)
    with open(tmp_path / "l.ukl", "rb") as f:
        np.testing.assert_array_equal(ukernels.Linear.load(f)(x), lin(x))
    for shape in ((4, 0), (0, 4), (0, 0)):  # in_features or out_features = 0, like numpy
        w = np.ones(shape, np.float32)
        z = ukernels.Linear(w, bias=np.ones(shape[0], np.float32))
        xs = np.ones((3, shape[1]), np.float32)
        np.testing.assert_array_equal(z(xs), xs @ w.T + 1)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(z))(xs), z(xs))
    wbe = lin._weight.astype(">f4")  # big-endian, as matmul accepts
    np.testing.assert_array_equal(ukernels.Linear(wbe)(x), ukernels.Linear(lin._weight)(x))
