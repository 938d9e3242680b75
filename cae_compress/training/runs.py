"""``cae runs``: the training runs under a folder, side by side.

Reads each run folder's ``run.json``, ``history.csv`` and results files (see
:mod:`cae_compress.training.train`) and nothing else, so it needs no TensorFlow.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

COLUMNS = [
    ("run", "run"), ("model", "model"), ("dataset", "dataset"), ("code", "code_length"), ("epochs", "epochs"),
    ("lr", "learning_rate"), ("l2", "l2_penalty"), ("l1", "l1_code"), ("status", "status"),
    ("val MSE", "val_mse"), ("val PSNR", "val_psnr"), ("test MSE", "test_mse"), ("test PSNR", "test_psnr"),
    ("test MSE/2 [-1,1]", "test_mse_half_pm1"), ("test bpp", "test_bpp"),
]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _epochs_done(run: Path) -> int:
    try:
        with (run / "history.csv").open() as f:
            return sum(1 for _ in csv.DictReader(f))
    except OSError:
        return 0


def collect_runs(root: str | Path = "logs") -> list[dict]:
    """One flat record per run folder (a folder with ``run.json``) under ``root``."""
    root = Path(root)
    records = []
    for meta_path in sorted(root.rglob("run.json")):
        run = meta_path.parent
        meta = _read_json(meta_path)
        config = meta.get("config", {})
        val, test = _read_json(run / "validation_results.json"), _read_json(run / "test_results.json")
        model_info = meta.get("model", {})
        records.append({
            "run": str(run.relative_to(root)) if run != root else run.name,
            "path": str(run),
            "model": config.get("model"),
            "dataset": config.get("dataset"),
            # a rate model's code grows with the image: its lambda says more
            "code_length": f"l={config['lmbda']:g}" if "lmbda" in model_info else model_info.get("code_length", config.get("code_length")),
            "epochs": f"{_epochs_done(run)}/{config.get('epochs')}",
            "learning_rate": config.get("learning_rate"),
            "l2_penalty": config.get("l2_penalty"),
            "l1_code": config.get("l1_code"),
            "status": meta.get("status"),
            "val_mse": val.get("mse"), "val_psnr": val.get("psnr"),
            "test_mse": test.get("mse"), "test_psnr": test.get("psnr"),
            "test_mse_half_pm1": test.get("mse_half_pm1"), "test_bpp": test.get("bpp"),
            "config": config,
            "command": meta.get("command"),
        })
    return records


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def format_table(records: list[dict]) -> str:
    """A plain-text table, one row per run."""
    rows = [[title for title, _ in COLUMNS]] + [[_cell(r.get(key)) for _, key in COLUMNS] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
