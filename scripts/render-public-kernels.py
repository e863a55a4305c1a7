#!/usr/bin/env python3
"""Render public WGSL f32 GEMM kernels at fixed sizes for `examples/public_gemm.rs`.

The kernels come from public repositories that their authors publish for anyone to run.
They are NOT committed here: some carry no licence (wgpu-mm), and a benchmark needs
only the rendered text. Clone the repositories (any checkout; the commit is recorded in
the manifest) into one folder, named owner+repo:

    FL33TW00D+wgpu-mm        (webgpu-blas's block SGEMM as ported to WGSL, Bram Wasti's
                              kernel, siboehm's 2D block tiling)
    zanussbaum+surfgrad      (its matmul shader, Apache-2.0)
    AnswerDotAI+gpu.cpp      (examples/matmul/run.cpp versions, Apache-2.0)

then:

    scripts/render-public-kernels.py --src DIR --out /tmp/public-kernels --sizes 1024,2048

Each kernel is rendered the way its own host code renders it (the same template values,
workgroup sizes and dispatch grids, gpu.cpp's loop unrolling reproduced from its
utils/wgsl.hpp), and listed in OUT/manifest.json with where it came from, its bindings,
its layout (nn: B is k x n; nt: B is n x k) and its grid. Sizes a kernel cannot take
(its host code asserts divisibility) are left out and listed as such.
"""

import argparse
import json
import pathlib
import re
import subprocess
import sys

import jinja2


def commit(repo: pathlib.Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def tera(text: str, **ctx) -> str:
    # Tera (wgpu-mm's template engine) and Jinja2 agree on every construct these use, but
    # for `/` of two integers: Tera keeps an integer, Jinja2 makes a float.
    text = re.sub(r"\{\{(.*?)\}\}", lambda m: "{{" + m.group(1).replace("/", "//") + "}}", text)
    return jinja2.Template(text, undefined=jinja2.StrictUndefined).render(**ctx)


def gpucpp_unroll(code: str, threshold: int = 32) -> str:
    """gpu.cpp's utils/wgsl.hpp unrollLoops, the same regex and rule, in Python."""
    loop = re.compile(
        r"for\s*\(\s*var\s+(\w+):\s*u32\s*=\s*(\d+)\s*;\s*\1\s*<\s*(\d+)\s*;\s*\1\+\+\s*\)\s*\{\s*([^{}]*)\}"
    )

    def repl(m):
        name, start, end, body = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        if end - start > threshold:
            return m.group(0)
        var = re.compile(r"\b" + re.escape(name) + r"\b")
        return "".join(var.sub(str(i), body) for i in range(start, end))

    return loop.sub(repl, code)


def gpucpp_shader(run_cpp: str, name: str) -> str:
    m = re.search(r"static const char \*" + name + r' = R"\((.*?)\)";', run_cpp, re.S)
    if not m:
        sys.exit(f"gpu.cpp: {name} not found in examples/matmul/run.cpp")
    return m.group(1)


def replace_all(code: str, values: dict) -> str:
    for k, v in values.items():
        code = code.replace("{{" + k + "}}", str(v))
    return code


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True, type=pathlib.Path)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--sizes", default="1024,2048")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    entries = []

    def add(name, origin, repo, path, license_, layout, s, text, grid, bindings, params=None,
            vec4=False, note=""):
        file = f"{name}-{s}.wgsl"
        (args.out / file).write_text(text)
        entries.append({
            "name": name, "origin": origin, "repo": repo, "path": path, "commit": commit(args.src / repo),
            "license": license_, "layout": layout, "m": s, "n": s, "k": s, "file": file,
            "workgroups": grid, "bindings": bindings, "params": params, "note": note,
        })

    # wgpu-mm: shaders are Tera templates; its gemm.rs/main.rs give the sizes and grids.
    mm = args.src / "FL33TW00D+wgpu-mm"
    gemm3 = (mm / "shaders/gemm3.wgsl").read_text()
    bram = (mm / "shaders/bram.wgsl").read_text()
    gemm5 = (mm / "shaders/gemm/gemm_5.wgsl").read_text()
    abc = {"a": 0, "b": 1, "c": 2}
    for s in sizes:
        # webgpu-blas's block SGEMM (milhidaka/webgpu-blas, MIT) as wgpu-mm carries it in
        # WGSL: 8x8 invocations, each 4 rows x 8 columns (two vec4s of B), sizes compiled in.
        t = gemm3.replace("let KD4 = 256u;", f"let KD4 = {s // 4}u;").replace(
            "let ND4 = 256u;", f"let ND4 = {s // 4}u;")
        t = tera(t, workgroup_size_x=8, workgroup_size_y=8, workgroup_size_z=1)
        add("webgpu-blas-block", "milhidaka/webgpu-blas sgemm_block via wgpu-mm shaders/gemm3.wgsl",
            "FL33TW00D+wgpu-mm", "shaders/gemm3.wgsl", "MIT (webgpu-blas); wgpu-mm: none stated",
            "nn", s, t, [s // 64, s // 32, 1], abc)
        # Bram Wasti's M1 kernel (jott.live/markdown/m1_webgpu_perf) as wgpu-mm carries it:
        # 4 rows x one vec4 column per invocation, 256u = K/4 = N/4 compiled in (square only).
        t = tera(bram.replace("256u", f"{s // 4}u"), workgroup_size_x=8, workgroup_size_y=8,
                 workgroup_size_z=1)
        add("bram-m1", "jott.live m1_webgpu_perf via wgpu-mm shaders/bram.wgsl", "FL33TW00D+wgpu-mm",
            "shaders/bram.wgsl", "wgpu-mm: none stated", "nn", s, t, [s // 32, s // 32, 1], abc)
        # siboehm's 2D block tiling ported by wgpu-mm (gemm.rs gemm_5: BM=BN=32, BK=16, TM=TN=4).
        t = tera(gemm5, M=s, N=s, K=s, BM=32, BN=32, BK=16, TM=4, TN=4, workgroup_size_x=64,
                 workgroup_size_y=1, workgroup_size_z=1)
        add("wgpu-mm-gemm5", "wgpu-mm shaders/gemm/gemm_5.wgsl (siboehm kernel 5)", "FL33TW00D+wgpu-mm",
            "shaders/gemm/gemm_5.wgsl", "wgpu-mm: none stated", "nn", s, t, [s // 32, s // 32, 1], abc)

    # surfgrad: one shader, dimensions in a uniform {M, K, N}; 16x16 invocations of 8x8.
    sg = args.src / "zanussbaum+surfgrad"
    src = (sg / "src/shaders/matmul.ts").read_text()
    shader = re.search(r"export const matmulShader = `(.*?)`;", src, re.S).group(1)
    for s in sizes:
        add("surfgrad", "zanussbaum/surfgrad src/shaders/matmul.ts", "zanussbaum+surfgrad",
            "src/shaders/matmul.ts", "Apache-2.0", "nn", s, shader,
            [-(-s // 128), -(-s // 128), 1], {"params": 0, "a": 1, "b": 2, "c": 3}, params=[s, s, s])

    # gpu.cpp examples/matmul/run.cpp: versions 5 (2D block tiling, B as n x k), 8
    # (vectorized, n x k, unrolled) and 9 (vectorized, B as k x n), f32, as its
    # selectMatmul renders them: BM=BN=64, BK=8, TM=TN=8, 64 invocations.
    gc = args.src / "AnswerDotAI+gpu.cpp"
    run_cpp = (gc / "examples/matmul/run.cpp").read_text()
    BM = BN = 64
    BK = 8
    TM = TN = 8
    nthreads = BM * BN // (TM * TN)
    for s in sizes:
        common = {"workgroupSize": f"{nthreads}, 1, 1", "precision": "f32", "M": s, "K": s, "N": s,
                  "BM": BM, "BK": BK, "BN": BN, "TM": TM, "TN": TN,
                  "NUM_TILEA": BM * BK // nthreads, "NUM_TILEB": BN * BK // nthreads,
                  "TN4": TN // 4, "N4": s // 4, "BN4": BN // 4}
        grid = [s // BM, s // BN, 1]
        for version, shader_name, layout, unroll in [
            (5, "kShaderMatmul4", "nt", False),
            (8, "kShaderMatmulWithVectorization", "nt", True),
            (9, "kShaderMatmulWithTranspose", "nn", False),
        ]:
            t = replace_all(gpucpp_shader(run_cpp, shader_name), common)
            if unroll:
                t = gpucpp_unroll(t)
            add(f"gpu.cpp-v{version}", f"AnswerDotAI/gpu.cpp examples/matmul/run.cpp version {version}",
                "AnswerDotAI+gpu.cpp", "examples/matmul/run.cpp", "Apache-2.0", layout, s, t, grid, abc)

    (args.out / "manifest.json").write_text(json.dumps({"kernels": entries}, indent=1))
    print(f"{len(entries)} kernels written to {args.out}")


if __name__ == "__main__":
    main()
