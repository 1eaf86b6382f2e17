"""Short summary of what ``make`` generated and measured.

``python -m model.summary --build build``

Lists the generated Verilog (``build/verilog/PRESET/*.v`` with sizes) and the headline ReSV numbers of
the main job (``build/resv/results.json``). Missing parts are reported, never an error: the exit
status is 0 whenever the summary could be printed.
"""

import argparse
import json
import sys
from pathlib import Path

__all__ = ["summary_lines", "main"]


def _verilog_lines(build):
    folder = build / "verilog"
    files = sorted(folder.glob("*/*.v")) if folder.is_dir() else []
    if not files:
        return [f"Verilog: none in {folder} (run `make verilog`)"]
    lines = [f"Verilog in {folder}: {len(files)} file(s)"]
    for path in files:
        name = str(path.relative_to(folder))
        lines.append(f"  {name:<40} {path.stat().st_size / 1024:8.1f} KiB")
    return lines


def _resv_lines(build):
    path = build / "resv" / "results.json"
    if not path.is_file():
        return [f"ReSV results: none at {path} (run `make run`)"]
    try:
        results = json.loads(path.read_text())
        methods = results["methods"]
        resv, clustering = methods["resv"], results["clustering"]
        lines = [f"ReSV on {results['source']} ({results['shape']['layers']} layers x "
                 f"{results['shape']['kv_heads']} KV heads, {results['shape']['tokens']} tokens), "
                 f"{results['runtime_s']:.1f} s:",
                 f"  ReSV retrieves {100 * resv['ratio']:.1f}% of the past tokens, attention "
                 f"recall {resv['recall']:.3f}, output error {resv['output_error']:.3f}",
                 f"  {clustering['tokens_per_cluster_mean']:.1f} tokens per cluster, HC table "
                 f"{100 * clustering['hc_table_overhead']:.2f}% of the KV cache"]
        for name, row in methods.items():
            if name != "resv":
                lines.append(f"  {name:<13} retrieves {100 * row['ratio']:5.1f}%, recall "
                             f"{row['recall']:.3f}, output error {row['output_error']:.3f}")
        return lines + [f"  details: {path}, plot: {path.parent / 'retrieval.png'}"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return [f"ReSV results: {path} is unreadable ({type(error).__name__}: {error})"]


def summary_lines(build):
    """The summary of the build folder ``build`` as a list of text lines."""
    build = Path(build)
    return _verilog_lines(build) + [""] + _resv_lines(build)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m model.summary",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="build", help="build folder (default build)")
    args = parser.parse_args(argv)
    print("\n".join(summary_lines(args.build)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
