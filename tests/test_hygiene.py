"""Le notebook livré : sans sorties, nbformat valide, lint propre, cellules dans l'ordre du contrat."""

import ast
import json
import re
import subprocess
import sys

import nbformat
from nbtools import NOTEBOOK, ROOT, code_cells

CONTRACT_PARAMETERS = [
    "DATASET_NAME",
    "DATASET_CONFIG",
    "DATA_FILES",
    "TEXT_COLUMN",
    "LABEL_COLUMN",
    "ENCODER_MODEL",
    "LLM_MODEL",
    "RUN_LLM",
    "RUN_ABLATIONS",
    "MAX_TRAIN_EXAMPLES",
    "MAX_EVAL_EXAMPLES",
    "MAX_LENGTH",
    "LLM_MAX_LENGTH",
    "ENCODER_EPOCHS",
    "LLM_TRAIN_EXAMPLES",
    "LLM_EPOCHS",
    "DEMO_TEXTS",
    "SEED",
    "OUTPUT_DIR",
    "FIGURES_DIR",
]


def test_notebook_is_valid_and_stripped():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_cell_order_follows_the_contract():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    first = "".join(cells[0]["source"])
    assert "colab.research.google.com" in first and "Nom Prénom" in first
    code = code_cells()
    assert "%run setup_env.py --notebook" in "".join(code[0]["source"])
    tagged = [cell for cell in code if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[1]


def test_parameters_cell_holds_only_commented_assignments_of_the_contract_names():
    cell = next(cell for cell in code_cells() if "parameters" in cell.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"])
    tree = ast.parse(source)
    assert all(isinstance(node, ast.Assign) for node in tree.body)
    names = [node.targets[0].id for node in tree.body]
    assert set(CONTRACT_PARAMETERS) <= set(names)
    lines = source.splitlines()
    for node in tree.body:  # une valeur peut tenir sur plusieurs lignes : le commentaire suit sa fin
        first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
        assert re.match(r"^[A-Z_0-9]+ = \S", first), f"paramètre mal formé : {first}"
        assert re.search(r"  # \S", last[node.end_col_offset :]), f"paramètre sans commentaire : {first}"
    covered = {n for node in tree.body for n in range(node.lineno, node.end_lineno + 1)}
    assert [line for i, line in enumerate(lines, 1) if i not in covered and line.strip()] == []
    defaults = dict(zip(names, (ast.literal_eval(node.value) for node in tree.body)))
    assert defaults["DATASET_NAME"] == "dair-ai/emotion" and defaults["RUN_LLM"] == "auto" and defaults["SEED"] == 42
    assert defaults["ENCODER_MODEL"] == "distilbert-base-uncased" and defaults["OUTPUT_DIR"] == "outputs"


def test_setup_repository_is_named_once():
    code = "".join("".join(cell["source"]) for cell in code_cells())
    assert code.count("auduvignac/llm-finetuning") == 1  # la constante SETUP_REPOSITORY, et elle seule


def test_ruff_passes_on_the_notebook_and_the_python_files():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_documents_every_parameter():
    cell = next(cell for cell in code_cells() if "parameters" in cell.get("metadata", {}).get("tags", []))
    names = [node.targets[0].id for node in ast.parse("".join(cell["source"])).body]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [name for name in names if f"| `{name}` |" not in readme] == []


def test_the_reuse_cache_is_gone():
    code = "".join("".join(cell["source"]) for cell in code_cells())
    markdown = "".join(
        "".join(cell["source"])
        for cell in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
        if cell["cell_type"] == "markdown"
    )
    for name in ("run_key", "reusable", "_message", "NOTEBOOK_VERSION", "FORCE_RERUN"):
        assert name not in code and name not in markdown, name


def test_the_notebook_stays_legible():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    assert len(cells) <= 100, f"{len(cells)} cellules (au plus 100)"
    code_lines = sum(len("".join(cell["source"]).splitlines()) for cell in cells if cell["cell_type"] == "code")
    assert code_lines <= 1600, f"{code_lines} lignes de code (au plus 1 600)"
    streak, longest, where = 0, 0, None
    for index, cell in enumerate(cells):
        streak = streak + 1 if cell["cell_type"] == "code" else 0
        if streak > longest:
            longest, where = streak, index
    assert longest <= 3, f"{longest} cellules de code d'affilée (au plus 3), jusqu'à la cellule {where}"
