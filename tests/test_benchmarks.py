"""The benchmark scripts run end to end and write well-formed results. Timings are not
checked here (speed lives in benchmarks/, on a quiet machine); only that every engine ran."""
import json
import os
import subprocess
import sys

import pytest

import sparselite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_model_benchmark_runs_every_engine(tmp_path):
    out = tmp_path / "models.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_models.py"), "--runs", "2", "--blocks",
                    "1", "--warmup", "1", "--models", "mobilenet_v2", "minilm_l6", "regnet_y_400mf", "--sparsities",
                    "0.9", "--threads", "1", "--json", str(out)],
                   check=True, capture_output=True, text=True, timeout=900)
    report = json.loads(out.read_text())
    machine = report["machine"]
    assert machine["cpu"] and "vendor" in machine and machine["isa"] == sparselite.cpu_isa()
    if machine["arch"] == "x86_64":   # what tells one "AMD EPYC" from another
        assert machine["family"] > 0 and machine["model"] >= 0 and machine["mhz"] > 0
    if os.path.isdir("/sys/devices/system/cpu/cpu0/cache"):
        assert machine["l2_kib"] >= 64 and (machine["l3_kib"] is None or machine["l3_kib"] >= machine["l2_kib"])
    assert [row["model"] for row in report["results"]] == ["mobilenet_v2", "minilm_l6", "regnet_y_400mf"]
    assert [row["weights"] for row in report["results"]] == ["pretrained", "pretrained", "random"]   # torchvision's
    for row in report["results"]:
        timing = row["threads"]["1"]
        assert {"sparselite", "onnxruntime", "torch", "speedup_vs_ort"} <= set(timing)
        assert all(timing[k] > 0 for k in ("sparselite", "onnxruntime", "torch"))
        assert "spmm" in row["kernels"] and row["layers"]
        assert row["slite_fp16_bytes"] < 0.6 * row["slite_bytes"]
        assert row["rss"]["sparselite"]["peak_mib"] > 0 and row["rss"]["onnxruntime"]["peak_mib"] > 0
    # 90% pruned: the .onnx stores the zeros. MiniLM keeps its dense embedding table (47 MB).
    assert report["results"][0]["slite_bytes"] < 0.2 * report["results"][0]["onnx_bytes"]
    assert report["results"][1]["slite_bytes"] < 0.65 * report["results"][1]["onnx_bytes"]


@pytest.mark.parametrize("reps", ["0", "102", "x"])
def test_kernel_benchmark_refuses_bad_repetitions(reps):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_kernels.py"), "--reps", reps],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--reps" in out.stderr


def test_kernel_benchmark_covers_the_registry(tmp_path):
    """Every kernel this CPU runs is benchmarked: each ISA's spmm at every r against its gemm, and the
    depthwise and row kernels."""
    out = tmp_path / "kernels.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_kernels.py"), "--reps", "1", "--json",
                    str(out)], check=True, capture_output=True, text=True, timeout=900)
    report = json.loads(out.read_text())
    rows = report["results"]
    assert report["cpu"] and "vendor" in report and report["isa"] == sparselite.cpu_isa()
    simd_gemms = [r for r in rows if r["family"] == "gemm" and not r["kernel"].endswith("__scalar")]
    assert simd_gemms and all(r["peak_gflops"] == report["peak_gflops"][r["kernel"].split("__")[1]] > 0
                              for r in simd_gemms)
    benched = {r["kernel"] for r in rows}
    runnable = {name for name, isa in sparselite.kernels() if set(isa) <= set(sparselite.cpu_isa())}
    assert benched == runnable
    for isa in {r["isa"] for r in rows}:
        assert {r["r"] for r in rows if r["isa"] == isa and r["family"] in ("spmm", "gemm")} == {0, 1, 2, 4, 8}
    assert all(r.get("gflops", r.get("gelem_per_s")) > 0 for r in rows)


def test_wasm_benchmark_runs_both_engines(tmp_path):
    out = tmp_path / "wasm.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_wasm.py"), "--runs", "2", "--sparsities",
                    "0.9", "--json", str(out)], check=True, capture_output=True, text=True, timeout=900)
    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert report["cpu"] and report["isa"] == "wasm_simd128"
    assert row["ms"]["sparselite"] > 0 and row["ms"]["onnxruntime-web"] > 0
    assert row["rel_err"] < 1e-4  # both engines compute the same model


def test_browser_benchmark_runs_every_engine_in_chromium(tmp_path):
    """benchmarks/browser: one pruned model in headless Chromium, every engine timed and agreeing with
    sparselite, sparselite on its relaxed-SIMD build (Chromium validates relaxed SIMD) and on its threads
    build with 2 threads (the page is cross-origin isolated), against LiteRT.js's threaded build on 2
    threads in a second page."""
    out = tmp_path / "browser.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "browser", "bench_browser.py"), "--runs", "2",
                    "--models", "mobilenet_v2 90%", "--json", str(out)], check=True, capture_output=True, text=True,
                   timeout=1200)
    report = json.loads(out.read_text())
    assert report["browser"].startswith("Chromium") and report["crossOriginIsolated"]
    assert report["engines"]["sparselite"]["build"] == "wasm_relaxed_simd"
    assert report["engines"]["sparselite SIMD128"]["build"] == "wasm_simd128"
    assert "relaxed SIMD" in report["engines"]["LiteRT.js"]["build"]  # both sides on their best build
    (row,) = report["results"]
    assert report["engines"]["sparselite 2 threads"]["threads"] == 2
    assert report["engines"]["LiteRT.js 2 threads"] == {"build": "litert_wasm_threaded_internal", "threads": 2}
    assert set(row["ms"]) == {"sparselite", "sparselite 2 threads", "sparselite SIMD128", "LiteRT.js",
                              "LiteRT.js 2 threads", "onnxruntime-web"}
    assert all(ms > 0 for ms in row["ms"].values())
    assert all(err < 1e-4 for err in row["relErrVsSparselite"].values()), row["relErrVsSparselite"]


def test_tflite_benchmark_runs_both_engines(tmp_path):
    out = tmp_path / "tflite.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_tflite.py"), "--runs", "2", "--blocks",
                    "1", "--warmup", "1", "--json", str(out)], check=True, capture_output=True, text=True, timeout=900)
    report = json.loads(out.read_text())
    rows = report["results"]
    assert [r["model"] for r in rows[:3]] == ["face_detection_short_range", "face_detection_full_range",
                                             "face_detection_full_range_sparse"]
    # The mediapipe 0.10.21 wheel's 14 float models: each runs, or its report says what does not convert;
    # face_landmark_with_attention runs, checked against LiteRT around MediaPipe's custom ops.
    (alone,) = report["without_litert"]
    assert alone["model"] == "face_landmark_with_attention" and alone["max_rel_diff"] < 1e-4 and alone["sparselite"] > 0
    names = {r["model"] for r in rows} | {f["model"] for f in report["not_converted"]} | {alone["model"]}
    assert {"face_landmark", "iris_landmark", "palm_detection_full", "hand_landmark_full", "pose_detection",
            "selfie_segmentation"} <= names and len(names) >= 15
    assert all(f["error"] for f in report["not_converted"])
    assert all(r["sparselite"] > 0 and r["litert"] > 0 for r in rows)
    assert all(r["max_rel_diff"] < (1e-4 if r["model"].startswith("face_detection") else 1e-3) for r in rows)
    assert rows[2]["sparse_layers"] >= 40 and rows[0]["sparse_layers"] == 0
