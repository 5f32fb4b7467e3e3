#!/usr/bin/env python3
"""A deterministic PyTorch + Triton + CUDA graph program for the pass-through test.

    torch_passthrough.py OUT.pt [--meta META.json] [--profile TRACE.json]
                         [--capture-mode global|thread_local|relaxed]

Runs, in this order: a bf16 1024x1024 matmul, softmax (fp32 and bf16), a Triton kernel
(scaled vector add, a length that is not a multiple of the block), then a CUDA graph: a short
sequence of ops (matmul, gelu, softmax, the Triton kernel) is warmed up on a side stream,
captured once with torch.cuda.graph and replayed several times with new inputs copied into
the static input. Every result is copied to the host and saved to OUT.pt (a dict of CPU
tensors), so two runs can be compared bit for bit.

--meta writes what the program counted itself: the pid (to find the gsa trace), the Triton
kernel's name and how many times it was launched (eagerly and during capture), captures and
replays. --profile runs the whole CUDA part under torch.profiler (CPU and CUDA activities) and
writes its Chrome trace there, for counting the launch API calls independently.

The inputs come from a seeded CPU generator, so no random-number kernels run on the GPU.
Exit status 0 on success; on an error the traceback is printed and the status is 1.
"""
import argparse
import json
import os
import sys
import time
import traceback

TRITON_IMPORT_ERROR = None
try:
    import triton
    import triton.language as tl
except Exception as exc:  # the rest of the program still runs; the Triton checks then fail
    triton = None
    tl = None
    TRITON_IMPORT_ERROR = "%s: %s" % (type(exc).__name__, exc)

TRITON_KERNEL_NAME = "gsa_scaled_add_kernel"
TRITON_BLOCK = 1024
REPLAYS = 5
WARMUP_ITERS = 3

if triton is not None:

    @triton.jit
    def gsa_scaled_add_kernel(x_ptr, y_ptr, out_ptr, n_elements, scale, BLOCK: tl.constexpr):
        pid = tl.program_id(axis=0)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n_elements
        x = tl.load(x_ptr + offs, mask=mask)
        y = tl.load(y_ptr + offs, mask=mask)
        tl.store(out_ptr + offs, x * scale + y, mask=mask)


def log(msg):
    print("torch_passthrough: " + msg, flush=True)


class Program:
    def __init__(self, torch, capture_mode):
        self.torch = torch
        self.capture_mode = capture_mode
        self.counts = {"triton_launches": 0, "triton_launches_eager": 0,
                       "triton_launches_in_capture": 0, "graph_captures": 0,
                       "graph_replays": 0, "warmup_iterations": 0}
        self.triton_error = TRITON_IMPORT_ERROR
        self.capturing = False

    def scaled_add(self, x, y, out, scale):
        """out = x * scale + y with the Triton kernel; counts each launch."""
        if triton is None:
            raise RuntimeError("triton is not importable: %s" % TRITON_IMPORT_ERROR)
        n = x.numel()
        grid = (triton.cdiv(n, TRITON_BLOCK),)
        gsa_scaled_add_kernel[grid](x, y, out, n, scale, BLOCK=TRITON_BLOCK)
        self.counts["triton_launches"] += 1
        key = "triton_launches_in_capture" if self.capturing else "triton_launches_eager"
        self.counts[key] += 1
        return out

    def run(self):
        torch = self.torch
        dev = torch.device("cuda")
        gen = torch.Generator().manual_seed(20240611)
        outs = {}

        def rand(*shape, dtype=torch.float32):
            return torch.randn(*shape, generator=gen, dtype=torch.float32).to(dtype)

        # 1. bf16 matmul
        a = rand(1024, 1024, dtype=torch.bfloat16).to(dev)
        b = rand(1024, 1024, dtype=torch.bfloat16).to(dev)
        outs["matmul_bf16"] = a @ b

        # 2. softmax, fp32 and bf16
        x = rand(256, 1000).to(dev)
        outs["softmax_fp32"] = torch.softmax(x, dim=-1)
        outs["softmax_bf16"] = torch.softmax(x.to(torch.bfloat16), dim=-1)

        # 3. Triton: scaled vector add (length not a multiple of the block: the mask matters)
        n = 100_003
        tx = rand(n).to(dev)
        ty = rand(n).to(dev)
        tout = torch.empty_like(tx)
        try:
            self.scaled_add(tx, ty, tout, 0.5)
            outs["triton_scaled_add"] = tout
        except Exception as exc:
            self.triton_error = "%s: %s" % (type(exc).__name__, exc)
            log("Triton kernel failed (the Triton checks will fail): " + self.triton_error)
            traceback.print_exc()
        use_triton = self.triton_error is None

        # 4. CUDA graph: warm up on a side stream, capture once, replay several times
        w = rand(256, 256).to(dev)
        bias = rand(64 * 256).to(dev)
        static_in = torch.zeros(64, 256, device=dev)
        static_t = torch.empty(64 * 256, device=dev)

        def step():
            h = static_in @ w
            h = torch.nn.functional.gelu(h)
            h = torch.softmax(h * 0.125, dim=-1)
            if use_triton:
                self.scaled_add(h.reshape(-1), bias, static_t, 2.0)
            else:
                torch.add(h.reshape(-1) * 2.0, bias, out=static_t)
            return h

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_ITERS):
                step()
                self.counts["warmup_iterations"] += 1
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()

        graph = torch.cuda.CUDAGraph()
        self.capturing = True
        try:
            with torch.cuda.graph(graph, capture_error_mode=self.capture_mode):
                static_h = step()
        finally:
            self.capturing = False
        self.counts["graph_captures"] += 1

        for i in range(REPLAYS):
            static_in.copy_(rand(64, 256))  # host-to-device copy into the static input
            graph.replay()
            self.counts["graph_replays"] += 1
            outs["graph_h_%d" % i] = static_h.clone()
            outs["graph_t_%d" % i] = static_t.clone()
        torch.cuda.synchronize()

        host = {k: v.detach().cpu() for k, v in outs.items()}
        torch.cuda.synchronize()
        return host


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="where to save the outputs (torch.save of a dict of tensors)")
    ap.add_argument("--meta", help="write the program's own counts here (JSON)")
    ap.add_argument("--profile", help="run under torch.profiler; write its Chrome trace here")
    ap.add_argument("--capture-mode", default="global",
                    choices=["global", "thread_local", "relaxed"],
                    help="torch.cuda.graph capture_error_mode (default: global)")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    import torch

    if not torch.cuda.is_available():
        log("FAIL: torch.cuda.is_available() is False (torch %s, built for CUDA %s)"
            % (torch.__version__, torch.version.cuda))
        return 1
    log("torch %s (CUDA %s), triton %s, device %s, pid %d, capture mode %s%s"
        % (torch.__version__, torch.version.cuda,
           getattr(triton, "__version__", "unavailable"), torch.cuda.get_device_name(0),
           os.getpid(), args.capture_mode, ", profiling" if args.profile else ""))
    if TRITON_IMPORT_ERROR:
        log("triton import failed: " + TRITON_IMPORT_ERROR)

    prog = Program(torch, args.capture_mode)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            outputs = prog.run()
        prof.export_chrome_trace(args.profile)
        log("profile written to %s" % args.profile)
    else:
        outputs = prog.run()

    torch.save(outputs, args.out)
    c = prog.counts
    log("saved %d tensors to %s" % (len(outputs), args.out))
    log("triton_launches=%d (eager %d, during capture %d) graph_captures=%d graph_replays=%d"
        % (c["triton_launches"], c["triton_launches_eager"], c["triton_launches_in_capture"],
           c["graph_captures"], c["graph_replays"]))
    if args.meta:
        meta = dict(c)
        meta.update({
            "pid": os.getpid(),
            "triton_kernel_name": TRITON_KERNEL_NAME,
            "triton_error": prog.triton_error,
            "capture_mode": args.capture_mode,
            "tensors": sorted(outputs),
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "triton": getattr(triton, "__version__", None),
            "device": torch.cuda.get_device_name(0),
            "seconds": round(time.monotonic() - t0, 3),
        })
        with open(args.meta, "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
    log("done in %.1f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        print("torch_passthrough: FAIL: the program raised (traceback above)", flush=True)
        sys.exit(1)
