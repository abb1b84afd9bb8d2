"""Durée de bout en bout de la démonstration hors ligne (tools/demo.py) et de chaque section.

    .venv/bin/python bench/bench_demo.py

Lance `run_demo` dans un dossier temporaire, puis lit `environment.section_seconds` dans le
metrics.json écrit. Cible : moins de 3 minutes sur cette machine (CPU à 2 cœurs).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from cpu_share import CpuShare
from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET_SECONDS = 180.0


def section_seconds(output_root: Path) -> dict:
    """Durées par section lues dans le metrics.json de la démonstration."""
    metrics = json.loads((output_root / "metrics.json").read_text(encoding="utf-8"))
    return metrics["environment"]["section_seconds"]


def timed_demo() -> tuple[float, dict]:
    """Exécute la démonstration dans un dossier temporaire ; rend la durée totale et par section."""
    from demo import run_demo

    with tempfile.TemporaryDirectory(prefix="bench_demo_") as folder:
        seconds = run_demo(Path(folder))
        return seconds, section_seconds(Path(folder))


def main() -> None:
    """Affiche les durées de la démonstration et la cible."""
    load = CpuShare().start()
    total, sections = timed_demo()
    load_report = load.report()
    rows = [*sections.items(), ("somme des sections", round(sum(sections.values()), 1))]
    print(tabulate(rows, headers=["section", "durée (s)"], floatfmt=".1f"))
    verdict = "atteinte" if total < TARGET_SECONDS else "MANQUÉE"
    print(
        f"Démonstration hors ligne de bout en bout : {total:.1f} s "
        f"(cible : < {TARGET_SECONDS:.0f} s sur cette machine, {os.cpu_count()} cœurs) : "
        f"cible {verdict}."
    )
    print(
        "Hors sections du notebook (fixtures, démarrage du noyau, papermill) : "
        f"{total - sum(sections.values()):.1f} s."
    )
    print(load_report)


if __name__ == "__main__":
    main()
