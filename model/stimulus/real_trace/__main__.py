"""``python -m model.stimulus.real_trace``: write a KV dump of a real clip through a real LM.

``python -m model.stimulus.real_trace --clip bikes --fps 10 [--frames N] [--layers N]
[--out build/traces/bikes.npz]``
"""

import argparse
import sys

from threadpoolctl import ThreadpoolController

from model.stimulus.real_trace import assets
from model.stimulus.real_trace.pipeline import TraceOptions, build_trace

#: One BLAS thread around the entry point (nothing is changed at import): the prefill's matrix
#: products are small, and on a shared 2-core machine two threads per process spin against other
#: work (measured: 1.4 s per 88-token chunk with one thread, 15 to 30 s with two, at a load of 8).
one_blas_thread = ThreadpoolController().wrap(limits=1, user_api="blas")


@one_blas_thread
def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m model.stimulus.real_trace",
                                     description=__doc__.split("\n")[0].split(": ", 1)[1])
    parser.add_argument("--clip", default="bikes", choices=sorted(assets.CLIPS),
                        help="bundled clip (default bikes)")
    parser.add_argument("--fps", type=float, default=10.0,
                        help="frames per second sampled from the clip (default 10)")
    parser.add_argument("--frames", type=int, default=0,
                        help="at most this many frames (default 0: the whole clip)")
    parser.add_argument("--layers", type=int, default=0,
                        help="trace only the first N language-model layers (default 0: all 30)")
    parser.add_argument("--chunk-frames", type=int, default=8,
                        help="frames per prefill call (default 8; the trace does not depend on it)")
    parser.add_argument("--projector-seed", type=int, default=0,
                        help="seed of the fixed projector (default 0)")
    parser.add_argument("--out", help="output .npz (default build/traces/CLIP.npz)")
    parser.add_argument("--install-seconds", type=float,
                        help="time the optional group took to install (make real-trace passes "
                             "it), reported beside its disk use")
    args = parser.parse_args(argv)
    try:
        options = TraceOptions(args.clip, args.fps, args.frames, args.layers, args.chunk_frames,
                               args.projector_seed)
        out = args.out or f"build/traces/{options.clip}.npz"
        try:
            size, installed, _ = assets.group_disk_usage()
        except assets.MissingAsset:                 # not run from a checkout: no lock to read
            size, installed = 0, []
        group = {"packages": len(installed), "disk_mb": round(size / 1e6, 1),
                 "install_s": args.install_seconds}
        build_trace(options, out, progress=lambda line: print(line, file=sys.stderr, flush=True),
                    extra={"optional_group": group})
        took = "" if args.install_seconds is None else \
            f", its last install step took {args.install_seconds:.0f} s"
        print(f"optional group realtrace: {len(installed)} packages, {size / 1e6:.0f} MB on disk"
              f"{took}", file=sys.stderr)
    except (ValueError, assets.MissingAsset) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
