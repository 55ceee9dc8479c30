#!/usr/bin/env python3
"""Plots a flash-sale JSON (`flash-sale --json PATH`) as a PNG: throughput and latency over time.

Usage: python3 benches/plot_flash_sale.py RESULTS.json OUT.png   (needs matplotlib)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(source, target):
    with open(source) as f:
        data = json.load(f)
    runs = data["runs"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), sharex=False)
    colors = ["tab:blue", "tab:green", "tab:red", "tab:purple", "tab:orange"]
    for run, color in zip(runs, colors):
        t = [p["t_s"] for p in run["series"]]
        top.plot(t, [p["successes_per_s"] for p in run["series"]], color=color,
                 label=f'{run["label"]}: purchases/s')
        top.plot(t, [p["rejections_per_s"] for p in run["series"]], color=color, linestyle=":",
                 label=f'{run["label"]}: rejections/s')
        paid = [p.get("paid_per_s", 0) for p in run["series"]]
        if any(paid):
            top.plot(t, paid, color=color, linestyle="--", label=f'{run["label"]}: paid/s')
        ok = [(p["t_s"], p["success_p99_ms"]) for p in run["series"] if p["success_p99_ms"] > 0]
        rej = [(p["t_s"], p["rejection_p99_ms"]) for p in run["series"] if p["rejection_p99_ms"] > 0]
        if ok:
            bottom.plot(*zip(*ok), color=color, label=f'{run["label"]}: success p99')
        if rej:
            bottom.plot(*zip(*rej), color=color, linestyle=":", label=f'{run["label"]}: rejection p99')
    first = runs[0]
    what = "places" if first.get("sale") == "general" else "seats"
    where = f' via {", ".join(first["targets"])}' if first.get("targets") else ""
    top.set_title(
        f'Flash sale: {first["seats"]:,} {what}, {first["attempts"]:,} attempts, '
        f'concurrency {first["concurrency"]}{where} (load avg {data.get("load_average") or "?"})'
    )
    top.set_ylabel("per second")
    top.set_xlabel("seconds since start")
    top.set_xscale("symlog", linthresh=1.0)
    top.set_xlim(left=0)
    top.grid(True, alpha=0.3)
    top.legend(fontsize=7, ncol=2)
    bottom.set_ylabel("p99 latency (ms, log)")
    bottom.set_xlabel("seconds since start")
    bottom.set_yscale("log")
    bottom.set_xscale("symlog", linthresh=1.0)
    bottom.set_xlim(left=0)
    bottom.grid(True, alpha=0.3)
    bottom.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
