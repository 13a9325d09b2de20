"""Benchmark: decode-shaped products (few rows x a large weight), bound by reading the weight.

For each shape and thread count, interleaved in one run: numpy's BLAS (f32), plain
``ukernels.matmul`` (f32 rhs read in place for small M), prepacked ``ukernels.Linear``
(f32 weights; bf16 weights; int8 per-channel and int4 per-group weights with int8
activations quantized per call), and torch / onnxruntime when
installed. Reported: GFLOP/s, the weight's bytes read per second (GB/s) and that as a
fraction of the machine's read bandwidth, measured first by a probe (C, several
sequential streams side by side, per thread count).

    python bench/bench_decode.py            # all shapes, 1 and 2 threads
    python bench/bench_decode.py --quick    # fewer shapes and repetitions

Peers' idle threads are told not to spin (OpenMP OMP_WAIT_POLICY=PASSIVE for torch,
session.intra_op.allow_spinning=0 for onnxruntime): spinning peer threads take the
other vCPU from whatever runs next and made our 2-thread figures vary by 2x.
"""
import argparse
import os
import sys
import threading
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch's OpenMP starts (see the doc)

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    sys.exit("bench needs threadpoolctl to pin numpy's BLAS threads: pip install threadpoolctl")

import ukernels
from ukernels._lib import ffi, lib
from ukernels._timing import interleaved

SHAPES = [(1, 4096, 4096), (1, 11008, 4096), (16, 4096, 4096), (256, 4096, 4096)]


def read_bandwidth(threads: int, mib: int = 256, streams: int = 8, reps: int = 5) -> float:
    """GB/s of `threads` threads each reading its share of a `mib` MiB buffer (best of reps)."""
    buf = np.ones((mib << 20) // 8, np.uint64)
    share = buf.nbytes // threads
    parts = [ffi.cast("void*", buf.ctypes.data + i * share) for i in range(threads)]
    best = 0.0
    for _ in range(reps):
        ths = [threading.Thread(target=lib.uk_probe_read, args=(p, share, streams)) for p in parts]
        t0 = time.perf_counter()
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        best = max(best, buf.nbytes / (time.perf_counter() - t0) / 1e9)
    return best


def torch_peers(a: np.ndarray, w_nk: np.ndarray, threads: int):
    """torch f32 and bf16 F.linear, and its dynamically quantized int8 Linear (fbgemm)."""
    try:
        import torch
    except ImportError:
        return []
    torch.set_num_threads(threads)
    N, K = w_nk.shape
    ta, tw = torch.from_numpy(a), torch.from_numpy(w_nk)
    tb, twb = ta.to(torch.bfloat16), tw.to(torch.bfloat16)
    lin = torch.nn.Linear(K, N, bias=False)
    with torch.no_grad():
        lin.weight.copy_(tw)
    qlin = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)

    def run(fn):
        def call():
            with torch.inference_mode():
                return fn()
        return call
    return [("torch f32 F.linear", run(lambda: torch.nn.functional.linear(ta, tw)), w_nk.nbytes),
            ("torch bf16 F.linear", run(lambda: torch.nn.functional.linear(tb, twb)), w_nk.nbytes // 2),
            ("torch int8 dynamic", run(lambda: qlin(ta)), w_nk.nbytes // 4)]


def ort_peers(a: np.ndarray, w_nk: np.ndarray, threads: int):
    """onnxruntime: MatMulNBits (int4, block 32 and 128) and dynamically quantized int8 MatMul."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return []
    import tempfile
    N, K = w_nk.shape
    M = a.shape[0]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    out = []

    def session(model):
        return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    for block in (32, 128):  # MatMulNBits: uint4 blocks along K, zero point 8
        wb = w_nk.reshape(N, K // block, block)
        scale = (np.abs(wb).max(axis=2) / 7).astype(np.float32)
        q = (np.clip(np.rint(wb / np.where(scale > 0, scale, 1)[:, :, None]), -8, 7) + 8).astype(np.uint8)
        packed = (q[:, :, 0::2] | (q[:, :, 1::2] << 4)).astype(np.uint8)  # (N, blocks, block/2)
        node = helper.make_node("MatMulNBits", ["A", "B", "scales"], ["Y"], domain="com.microsoft", K=K, N=N,
                                bits=4, block_size=block)
        graph = helper.make_graph([node], "nbits", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [M, K])],
                                  [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [M, N])],
                                  [numpy_helper.from_array(packed, "B"),
                                   numpy_helper.from_array(scale.reshape(-1), "scales")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                        helper.make_opsetid("com.microsoft", 1)])
        s = session(model)
        out.append((f"ort int4 MatMulNBits b{block}", lambda s=s: s.run(None, {"A": a}),
                    N * K // 2 + N * K // block * 4))
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "W"], ["Y"])], "mm",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [M, K])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [M, N])],
                              [numpy_helper.from_array(np.ascontiguousarray(w_nk.T), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "f.onnx"), os.path.join(d, "q.onnx")
        onnx.save(model, src)
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        s = ort.InferenceSession(dst, opts, providers=["CPUExecutionProvider"])
    out.append(("ort int8 dynamic", lambda: s.run(None, {"A": a}), w_nk.nbytes // 4))
    s32 = session(model)
    out.append(("ort f32 MatMul", lambda: s32.run(None, {"A": a}), w_nk.nbytes))
    return out


def peers(M: int, N: int, K: int, a: np.ndarray, w_nk: np.ndarray, threads: int):
    """(name, fn, weight bytes) of the optional peers that are installed (torch, onnxruntime)."""
    return torch_peers(a, w_nk, threads) + ort_peers(a, w_nk, threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    args = ap.parse_args()
    shapes = SHAPES[:1] + SHAPES[2:3] if args.quick else SHAPES
    rounds, block = (3, 3) if args.quick else (5, 5)
    bw = {t: read_bandwidth(t, mib=64) for t in args.threads}
    print("read bandwidth (probe: 64 MiB, the f32 4096x4096 weight; 8 streams per thread): " + ", ".join(f"{t}T {v:.1f} GB/s" for t, v in bw.items()))
    rng = np.random.default_rng(0)
    for M, N, K in shapes:
        a = rng.standard_normal((M, K), dtype=np.float32)
        w_kn = rng.standard_normal((K, N), dtype=np.float32)
        w_nk = np.ascontiguousarray(w_kn.T)
        lin_f32 = ukernels.Linear(w_nk)
        lin_bf16 = ukernels.Linear(w_nk, weight_dtype="bf16")
        lin_i8 = ukernels.Linear(w_nk, weight_dtype="int8")
        lin_i4_32 = ukernels.Linear(w_nk, weight_dtype="int4", group_size=32)
        lin_i4_128 = ukernels.Linear(w_nk, weight_dtype="int4", group_size=128)
        for t in args.threads:
            ukernels.set_num_threads(t)
            cases = [("numpy f32 (BLAS)", lambda: a @ w_kn, w_kn.nbytes),
                     ("ukernels.matmul f32", lambda: ukernels.matmul(a, w_kn), w_kn.nbytes),
                     ("Linear f32 prepacked", lambda: lin_f32(a), w_kn.nbytes),
                     ("Linear bf16 weights", lambda: lin_bf16(a), w_kn.nbytes // 2),
                     ("Linear int8 per-channel", lambda: lin_i8(a), w_kn.nbytes // 4),
                     ("Linear int4 group 32", lambda: lin_i4_32(a), w_kn.nbytes // 8 + N * K // 32 * 4),
                     ("Linear int4 group 128", lambda: lin_i4_128(a), w_kn.nbytes // 8 + N * K // 128 * 4)]
            cases += peers(M, N, K, a, w_nk, t)
            with threadpool_limits(t):
                times = interleaved([c[1] for c in cases], rounds, block)
            base = times[0]
            print(f"\n{M}x{N}x{K}, {t} thread(s)")
            for (name, _, nbytes), s in zip(cases, times):
                gbs = nbytes / s / 1e9
                print(f"  {name:<24} {2 * M * N * K / s / 1e9:7.1f} GFLOP/s  weight {gbs:6.1f} GB/s "
                      f"({gbs / bw[t]:4.0%} of read bw)  {base / s:5.2f}x numpy")


if __name__ == "__main__":
    main()
