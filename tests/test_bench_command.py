"""``python -m ukernels bench``: structure, never speed. A tiny run end to end (report,
JSON, charts), peers that are missing reported as skipped, bad arguments and shapes files
as clear errors."""
import json
import os
import subprocess
import sys

import pytest

from ukernels.__main__ import main
from ukernels.benchmark import peers as P
from ukernels.benchmark import shapes as S

TINY = "24x40x56 tiny\n1x64x96 decode-ish\n"


@pytest.fixture
def shapes_file(tmp_path):
    p = tmp_path / "shapes.txt"
    p.write_text("# a tiny suite\n" + TINY)
    return str(p)


def _run(argv, capsys):
    code = main(["bench", "--rounds", "1", "--no-progress"] + argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_tiny_suite_end_to_end_writes_report_json_and_charts(tmp_path, shapes_file, capsys):
    out_dir = tmp_path / "out"
    code, out, err = _run(["--shapes", shapes_file, "--threads", "1", "--peers", "numpy",
                           "--workloads", "matmul,linear,int8,int4", "--out", str(out_dir)], capsys)
    assert code == 0, err
    data = json.loads((out_dir / "results.json").read_text())
    assert data["settings"]["shapes"] == ["24x40x56", "1x64x96"]
    assert data["machine"]["read_gbs"]["1"] > 0 and data["machine"]["triad_gbs"]["1"] > 0
    res = data["results"]
    ok = [r for r in res if r["status"] == "ok"]
    # every workload ran both ukernels backends and numpy at both shapes (int4: K=56 is not a
    # multiple of the group, reported as not applicable rather than dropped)
    for w in ("matmul", "linear", "int8"):
        for shape in ("24x40x56", "1x64x96"):
            libs = {r["impl"] for r in ok if r["workload"] == w and r["shape"] == shape}
            assert any("[ukernel]" in i for i in libs) and any("[codegen]" in i for i in libs), (w, shape, libs)
            assert any(i.startswith("numpy") for i in libs), (w, shape, libs)
    assert any(r["workload"] == "int4" and r["shape"] == "24x40x56" and r["status"] == "n/a" and "group" in r["reason"]
               for r in res)
    assert any(r["workload"] == "int4" and r["shape"] == "1x64x96" and r["status"] == "ok" for r in res)
    for r in ok:
        assert r["gflops"] > 0 and r["seconds_min"] <= r["seconds"] <= r["seconds_max"]
    report = (out_dir / "report.md").read_text()
    for heading in ("## Machine", "## Versions", "## matmul", "## linear", "## int8", "## int4"):
        assert heading in report
    assert "ukernels / best peer" in report
    if data["charts_skipped"] is None:
        assert data["charts"] and all((out_dir / c).stat().st_size > 1000 for c in data["charts"])
        assert f"![matmul]({data['charts'][0]})" in report or "![matmul](" in report
    assert "matmul" in out and "wrote" in out


def test_json_flag_prints_the_results(tmp_path, shapes_file, capsys):
    code, out, _ = _run(["--shapes", shapes_file, "--threads", "1", "--peers", "numpy", "--workloads", "matmul",
                         "--out", str(tmp_path / "o"), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert {r["workload"] for r in data["results"]} == {"matmul"}
    assert data["summary"] and all("ratio" in s for s in data["summary"])


def test_missing_peer_is_reported_as_skipped_with_the_package(tmp_path, shapes_file, capsys, monkeypatch):
    real = P.import_module

    def fake(name):
        if name.startswith("onnx") or name.startswith("iree"):
            raise ImportError(f"No module named {name!r}")
        return real(name)
    monkeypatch.setattr(P, "import_module", fake)
    code, out, _ = _run(["--shapes", shapes_file, "--threads", "1", "--peers", "numpy,onnxruntime,iree",
                         "--workloads", "matmul", "--out", str(tmp_path / "o")], capsys)
    assert code == 0
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert set(data["skipped_peers"]) == {"onnxruntime", "iree"}
    assert "pip install onnxruntime" in data["skipped_peers"]["onnxruntime"]
    assert "pip install iree-base-compiler" in data["skipped_peers"]["iree"]
    assert "skipped peer onnxruntime" in out
    assert "Peers skipped" in (tmp_path / "o" / "report.md").read_text()
    assert not any(r["library"] in ("onnxruntime", "iree") for r in data["results"])


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "--threads values must be between"),
    (["--threads", "one"], "--threads must be comma-separated integers"),
    (["--workloads", "matmul,fft"], "--workloads: unknown 'fft'"),
    (["--peers", "numpy,mkl"], "--peers: unknown 'mkl'"),
    (["--rounds", "0"], "--rounds must be between"),
    (["--shapes", "/nonexistent/shapes.txt"], "cannot read shapes file"),
])
def test_bad_arguments_are_one_line_errors(argv, message, capsys):
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ("", "no shapes in the file"),
    ("64x64\n", ":1: expected 'MxNxK [label]'"),
    ("# ok\n8x8x8\n0x8x8\n", ":3: dimensions must be between 1"),
    ("8x8x8 two words\n", ":1: expected"),
])
def test_bad_shapes_files_name_the_line(tmp_path, text, message, capsys):
    p = tmp_path / "s.txt"
    p.write_text(text)
    code, _, err = _run(["--shapes", str(p)], capsys)
    assert code == 2 and message in err


def test_unreadable_and_binary_shapes_files(tmp_path, capsys):
    d = tmp_path / "dir"
    d.mkdir()
    code, _, err = _run(["--shapes", str(d)], capsys)
    assert code == 2 and "cannot read shapes file" in err
    b = tmp_path / "bin"
    b.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = _run(["--shapes", str(b)], capsys)
    assert code == 2 and "not UTF-8" in err


def test_shapes_file_format():
    shapes = S.parse_shapes("# c\n\n1024x1024x1024\n1 4096 4096 decode  # trailing comment\n127x255x511 odd\n")
    assert [(s.M, s.N, s.K, s.label) for s in shapes] == [(1024, 1024, 1024, ""), (1, 4096, 4096, "decode"),
                                                          (127, 255, 511, "odd")]
    assert shapes[1].decode and not shapes[0].decode


def test_default_shapes_are_the_documented_ones():
    full = {s.name for s in S.SUITES["full"]}
    assert {"256x256x256", "2048x2048x2048", "256x4096x1024", "1x4096x4096", "16x4096x4096", "1x11008x4096",
            "4096x128x4096", "127x255x511"} <= full
    assert {s.name for s in S.SUITES["quick"]} <= full


def test_unwritable_output_directory_is_a_clear_error(tmp_path, shapes_file, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(["--shapes", shapes_file, "--threads", "1", "--peers", "numpy", "--workloads", "matmul",
                         "--out", str(blocker / "sub")], capsys)
    assert code == 2 and "error" in err and "Traceback" not in err


def test_help_lists_the_options():
    r = subprocess.run([sys.executable, "-m", "ukernels", "bench", "--help"], capture_output=True, text=True,
                       env=dict(os.environ), timeout=60)
    assert r.returncode == 0
    for opt in ("--suite", "--threads", "--workloads", "--shapes", "--peers", "--out", "--json"):
        assert opt in r.stdout


def test_installed_peers_build_and_agree_with_the_reference(tmp_path, shapes_file, capsys):
    """Every installed peer's implementation of every workload builds and passes the check
    (an error or a wrong result here is a bug in the benchmark, not a slow peer)."""
    installed = [p for p in P.PEERS if P.unavailable(p) is None]
    code, _, err = _run(["--shapes", shapes_file, "--threads", "1", "--peers", ",".join(installed),
                         "--out", str(tmp_path / "o"), "--suite", "full"], capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    bad = [(r["workload"], r["shape"], r["impl"], r["status"], r["reason"]) for r in data["results"]
           if r["status"] in ("error", "wrong")]
    assert bad == []
    ran = {r["library"] for r in data["results"] if r["status"] == "ok"}
    assert set(installed) <= ran | {"iree"}  # IREE runs the f32 workloads only


@pytest.mark.parametrize("workload", ["bf16", "matmul", "qlinear", "int4", "int8"])
@pytest.mark.parametrize("K", [64, 16384])
def test_correctness_gates_reject_wrong_results(workload, K):
    """Each workload's check passes the reference (and, for bf16, the reference rounded to
    bf16, as torch returns it) and rejects wrong results: all zeros, one wrong column, the
    product of the wrong operands -- at any K (the bf16 gate scaled by sqrt(K) let zeros pass)."""
    import ml_dtypes
    import numpy as np

    from ukernels.benchmark.workloads import WORKLOADS
    wl = WORKLOADS[workload]
    s = S.Shape(8, 24, K, "")
    inp = wl.make(s, np.random.default_rng(0))
    ref = np.asarray(inp.reference)
    assert wl.check(ref.copy(), ref, s) is None
    if workload == "bf16":
        assert wl.check(ref.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64), ref, s) is None
    assert wl.check(np.zeros_like(ref), ref, s) is not None
    col = ref.astype(np.float64).copy()
    col[:, 3] = -col[:, 3] if workload != "int8" else col[:, 3] + 7
    assert wl.check(col, ref, s) is not None
    other = wl.make(s, np.random.default_rng(1)).reference  # a product of other operands
    assert wl.check(np.asarray(other), ref, s) is not None


def test_each_case_is_timed_within_its_budget():
    """Slow implementations get fewer calls per block and fewer rounds (at least one of each), so
    a case costs about case_seconds however slow one call is; fast ones keep every round."""
    from ukernels.benchmark.runner import SETTINGS, timing_plan
    full = SETTINGS["full"]
    assert timing_plan(1e-4, full) == (full.max_block, full.rounds)
    calls, rounds = timing_plan(0.5, full)
    assert calls == 1 and rounds * 0.5 * (calls + 1) <= full.case_seconds
    assert timing_plan(60.0, full) == (1, 1)  # one call a minute: one block of one call
    for first in (1e-6, 1e-3, 0.05, 0.3, 2.0):
        calls, rounds = timing_plan(first, full)
        assert 1 <= calls <= full.max_block and 1 <= rounds <= full.rounds
        assert rounds == 1 or rounds * first * (calls + 1) <= full.case_seconds
