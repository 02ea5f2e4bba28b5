"""Δ against the task correlation p, from the study's MLflow runs: a Markdown table on stdout
and ``delta_vs_p.svg`` (a plain SVG line chart, no plotting library needed).

    sweeps run examples/synthetic_correlation/study.yaml
    python examples/synthetic_correlation/plot.py [examples/synthetic_correlation/study.yaml]
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from sweeps.spec import load_spec

HERE = Path(__file__).resolve().parent
SERIES = (("delta_m", "#1f77b4"), ("delta/y1", "#ff7f0e"), ("delta/y2", "#2ca02c"))


def rows(study: Path) -> list[dict[str, float]]:
    spec = load_spec(study)
    client = MlflowClient(spec.tracking)
    experiment = client.get_experiment_by_name(spec.name)
    if experiment is None:
        raise SystemExit(f"no runs yet: sweeps run {study}")
    found = client.search_runs(
        [experiment.experiment_id],
        "tags.`mtl.kind` = 'trial' and tags.`mtl.state` = 'COMPLETE'",
    )
    out = []
    for run in found:
        m = run.data.metrics
        row = {"p": float(run.data.params["options.correlation"])}
        for key, _ in SERIES:
            row[key] = m[key]
            row[f"{key}_ci95"] = m.get(f"{key}_ci95", 0.0)
        out.append(row)
    return sorted(out, key=lambda r: r["p"])


def svg(data: list[dict[str, float]], width: int = 560, height: int = 320) -> str:
    left, right, top, bottom = 60, 120, 20, 45
    # the 95% interval over the seeds is drawn for delta_m only (the per-task ones are wide)
    low = min(min(r[k] for k, _ in SERIES) for r in data)
    high = max(max(r[k] for k, _ in SERIES) for r in data)
    low = min(low, min(r["delta_m"] - r["delta_m_ci95"] for r in data))
    high = max(high, max(r["delta_m"] + r["delta_m_ci95"] for r in data))
    low, high = min(low, 0.0), max(high, 0.0)
    span = (high - low) or 1.0

    def x(p: float) -> float:
        return left + p * (width - left - right)

    def y(v: float) -> float:
        return top + (high - v) / span * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#333"/>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle">{tick:g}</text>'
        )
    for i in range(5):
        v = low + span * i / 4
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:+.1f}</text>')
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">'
        "task correlation p</text>"
    )
    parts.append(
        f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})">Δ vs single-task (%)</text>'
    )
    for n, (key, colour) in enumerate(SERIES):
        points = " ".join(f"{x(r['p']):.1f},{y(r[key]):.1f}" for r in data)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for r in data:
            ci = r[f"{key}_ci95"] if key == "delta_m" else 0.0
            parts.append(
                f'<line x1="{x(r["p"]):.1f}" y1="{y(r[key] - ci):.1f}" x2="{x(r["p"]):.1f}" '
                f'y2="{y(r[key] + ci):.1f}" stroke="{colour}" opacity="0.5"/>'
            )
            parts.append(
                f'<circle cx="{x(r["p"]):.1f}" cy="{y(r[key]):.1f}" r="3" fill="{colour}"/>'
            )
        parts.append(
            f'<text x="{width - right + 10}" y="{top + 16 + 18 * n}" fill="{colour}">{key}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def main() -> None:
    study = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "study.yaml"
    data = rows(study)
    print("| p | Δm % | Δ y1 % | Δ y2 % |")
    print("| --- | --- | --- | --- |")
    for r in data:
        cells = [f"{r[k]:+.1f} ± {r[f'{k}_ci95']:.1f}" for k, _ in SERIES]
        print(f"| {r['p']:g} | " + " | ".join(cells) + " |")
    out = study.parent / "delta_vs_p.svg"
    out.write_text(svg(data))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
