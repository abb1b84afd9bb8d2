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
    "FORCE_RERUN",
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
    for line in source.splitlines():
        assert re.match(r"^[A-Z_0-9]+ = .+  # \S", line), f"paramètre sans commentaire : {line}"
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
