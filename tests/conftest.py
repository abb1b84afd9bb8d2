"""Fixtures partagées : données et modèles minuscules, une exécution complète par session.

pytest (mode d'import « prepend ») met déjà tests/ en tête de sys.path ; on y ajoute tools/
(nbtools, fixtures, demo, try_sentences).
"""

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from demo import DEMO_PARAMETERS  # noqa: E402
from fixtures import build_all  # noqa: E402

NOTEBOOK = ROOT / "finetuning-projet.ipynb"

# Les modèles évalués, dans l'ordre où le notebook les range dans metrics["runs"].
RUNS_WITHOUT_LLM = [
    "majority_class",
    "tfidf_logreg",
    "encoder_scratch",
    "encoder_finetuned",
    "encoder_lora",
    "encoder_matched",
]
RUNS = [*RUNS_WITHOUT_LLM, "llm_zero_shot", "llm_few_shot", "llm_qlora"]

# Variante bon marché : pas d'expériences, pas de LLM, un seul taux candidat par encodeur, pas de
# minimum de pas, et peu d'exemples pour encoder_matched (le budget du LLM).
CHEAP_PARAMETERS = {
    "RUN_LLM": False,
    "RUN_ABLATIONS": False,
    "ENCODER_EPOCHS": 2,
    "ENCODER_MIN_STEPS": 0,
    "ENCODER_BATCH_SIZE": 16,
    "ENCODER_LRS": [5e-3],
    "SCRATCH_LRS": [5e-3],
    "ENCODER_LORA_LRS": [5e-3],
    "LLM_TRAIN_EXAMPLES": 48,
    "ABLATION_TRAIN_EXAMPLES": 60,
    "ABLATION_SEEDS": 1,
}


def execute_notebook(folder: Path, **parameters) -> Path:
    """Exécute le notebook avec papermill ; renvoie le notebook exécuté (lève s'il échoue)."""
    import papermill

    folder.mkdir(parents=True, exist_ok=True)
    parameters.setdefault("OUTPUT_DIR", str(folder / "outputs"))
    parameters.setdefault("FIGURES_DIR", str(folder / "figures"))
    executed = folder / "executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(executed),
        parameters=parameters,
        cwd=str(ROOT),
        kernel_name="python3",
        progress_bar=False,
    )
    return executed


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory) -> Path:
    """Dossier des fixtures (modèles, tokenizers, CSV) construit une fois par session."""
    folder = tmp_path_factory.mktemp("fixtures")
    build_all(folder)
    return folder


@pytest.fixture(scope="session")
def manifest(fixture_dir) -> dict:
    """Paramètres du notebook et chemins annexes des fixtures."""
    return json.loads((fixture_dir / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def facts(manifest) -> dict:
    """Réponses connues du jeu de données de test."""
    return json.loads(Path(manifest["facts"]).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def full_run(tmp_path_factory, manifest) -> dict:
    """Le notebook complet (toutes les sections, LLM 4 bits compris), exécuté une fois."""
    folder = tmp_path_factory.mktemp("full_run")
    parameters = {**manifest["params"], **DEMO_PARAMETERS}
    executed = execute_notebook(folder, **parameters)
    return {
        "folder": folder,
        "executed": executed,
        "output": folder / "outputs",
        "figures": folder / "figures",
        "parameters": parameters,
        "metrics": json.loads((folder / "outputs" / "metrics.json").read_text(encoding="utf-8")),
    }
