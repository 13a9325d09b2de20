"""``python -m ukernels info`` and ukernels.info()."""
import json
import os
import subprocess
import sys

import ukernels
from ukernels import cpu


def test_info_dict():
    d = ukernels.info()
    assert d["isa"] in d["supported_isas"]
    assert set(d["tiles"]) == {"f32f32f32", "s8s8s32", "f16f16f32", "f16f16f16", "bf16bf16f32", "bf16bf16bf16",
                               "s16s16s32", "u8s8s32", "s8s4s32"}
    assert d["threads"] >= 1 and d["compiler"]
    cg = d["codegen"]
    generated = set(d["tiles"]) - {"f16f16f16", "bf16bf16bf16"}  # narrow outputs: the same kernels + write-back
    assert "generic" in cg["runnable_targets"] and set(cg["target_for_isa"]) == generated
    assert all(t in cg["runnable_targets"] for t in cg["target_for_isa"].values())


def test_info_command_text_and_json():
    out = subprocess.run([sys.executable, "-m", "ukernels", "info"], capture_output=True, text=True, check=True)
    assert "isa:" in out.stdout and "f32f32f32" in out.stdout
    js = subprocess.run([sys.executable, "-m", "ukernels", "info", "--json"], capture_output=True, text=True,
                        check=True)
    assert json.loads(js.stdout)["isa"] == cpu.active_isa()


def test_info_under_forced_generic_isa():
    env = dict(os.environ, UKERNELS_ISA="generic")
    out = subprocess.run([sys.executable, "-m", "ukernels", "info", "--json"], capture_output=True, text=True,
                         check=True, env=env)
    d = json.loads(out.stdout)
    assert d["isa"] == "generic"
    assert all("generic" in t["function"] for t in d["tiles"].values())


def test_subpackages_are_reachable_from_a_plain_import():
    code = "import ukernels; assert callable(ukernels.codegen.tune); assert ukernels.runtime.get_num_threads() >= 1"
    subprocess.run([sys.executable, "-c", code], check=True)
