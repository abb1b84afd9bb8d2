"""setup_env.py en ligne de commande : ce qu'il lance, ce qu'il refuse, ce qu'il affiche, ses codes
de sortie.

Le script tourne dans un sous-processus (ou, pour un Python trop ancien, en mémoire avec une
fausse sys.version_info) ; pip est remplacé par le faux pip de fake_colab.py quand un test
pourrait l'appeler. La cellule du notebook elle-même est testée dans test_install_cell.py.
"""

import ast
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys

import pytest
from fake_colab import ROOT, SETUP_ENV, copy_setup_env, make_fakes, pip_calls, satisfied_pins
from packaging.requirements import Requirement

RUN_AS_NOTEBOOK = (  # comme %run : exécute le script en __main__ puis lit ses globales
    "import runpy, sys; sys.argv = ['setup_env.py', *sys.argv[1:]]; "
    "print('SETUP_ERROR =', "
    "repr(runpy.run_path('setup_env.py', run_name='__main__')['SETUP_ERROR']))"
)


def load(path=SETUP_ENV):
    """Importe un setup_env.py comme module (son bloc __main__ ne s'exécute pas)."""
    spec = importlib.util.spec_from_file_location("setup_env_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(folder, *args, fakes=None, colab=False, monkeypatch=None, notebook=False):
    """Lance le setup_env.py de folder ; renvoie le processus terminé (sorties, code)."""
    env = {key: value for key, value in os.environ.items() if key != "COLAB_RELEASE_TAG"}
    if fakes is not None:
        env["PYTHONPATH"] = str(fakes)
    if colab:
        env["COLAB_RELEASE_TAG"] = "release-simulee"
    command = (
        [sys.executable, "-c", RUN_AS_NOTEBOOK, *args]
        if notebook
        else [sys.executable, "setup_env.py", *args]
    )
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def requirement_lines(path):
    """Lignes utiles d'un fichier requirements (sans commentaires ni lignes vides)."""
    lines = [line.split(" #")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


# ---------------------------------------------------------------- versions : une seule source


def test_requirements_txt_matches_setup_env_pins_exactly():
    module = load()
    assert requirement_lines(ROOT / "requirements.txt") == [*module.PINS, module.TORCH_REQUIREMENT]


def test_dev_requirements_extend_the_project_ones_and_pin_jupytext():
    lines = requirement_lines(ROOT / "requirements-dev.txt")
    assert lines[0] == "-r requirements.txt"
    assert all("==" in line for line in lines[1:]) and any(
        line.startswith("jupytext==") for line in lines
    )


def test_pins_are_valid_and_respect_colab():
    module = load()
    requirements = {Requirement(spec).name: Requirement(spec) for spec in module.PINS}
    for name in ("transformers", "peft", "accelerate", "bitsandbytes", "datasets"):
        assert str(requirements[name].specifier).startswith("=="), (
            name
        )  # pile d'entraînement exacte
    hub = requirements["huggingface-hub"].specifier
    assert (
        "1.33.0" in hub and "2.0.0" not in hub
    )  # gradio et diffusers de Colab veulent huggingface-hub<2
    assert "scipy" in requirements  # scipy.stats.binomtest dans le notebook
    assert "torch" not in requirements and Requirement(module.TORCH_REQUIREMENT).name == "torch"


def test_setup_version_is_readable_by_the_notebook_cell():
    found = re.findall(r"^SETUP_VERSION = (\d+)", SETUP_ENV.read_text(encoding="utf-8"), re.M)
    assert found == ["3"] and load().SETUP_VERSION == 3


def test_setup_error_is_set_first_so_that_a_crash_leaves_it_set():
    body = ast.parse(SETUP_ENV.read_text(encoding="utf-8")).body
    first = next(node for node in body[1:] if not isinstance(node, ast.Import | ast.ImportFrom))
    assert isinstance(first, ast.Assign) and first.targets[0].id == "SETUP_ERROR"
    assert isinstance(first.value, ast.Constant) and "setup_env.py" in first.value.value


def test_setup_env_stays_short_and_leaves_versions_to_packaging():
    text = SETUP_ENV.read_text(encoding="utf-8")
    # 250 lignes à 120 colonnes ; 287 une fois remis à 100 colonnes par ruff format : même code
    assert len(text.splitlines()) <= 300
    assert "from packaging.requirements import Requirement" in text
    assert "pip._vendor.packaging" in text  # repli si packaging n'est pas installé à part


# ---------------------------------------------------------------- --check


def test_check_prints_one_line_per_package_and_exits_0_or_1():
    result = run(ROOT, "--check")
    lines = result.stdout.splitlines()
    for spec in [*load().PINS, load().TORCH_REQUIREMENT]:
        assert any(f" {Requirement(spec).name} " in f"{line} " for line in lines), spec
    all_ok = not any(line.startswith(("🔁", "⬇️")) for line in lines)
    assert result.returncode == (0 if all_ok else 1)
    assert ("✅ Tout est en ordre." in result.stdout) == all_ok


def test_check_reports_a_wrong_version_with_exit_code_1(tmp_path):
    # Une distribution « tqdm 1.0 » en tête de PYTHONPATH masque la vraie : mauvaise version.
    fakes = tmp_path / "fakes"
    (fakes / "tqdm-1.0.dist-info").mkdir(parents=True)
    (fakes / "tqdm-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tqdm\nVersion: 1.0\n"
    )
    copy_setup_env(
        tmp_path,
        satisfied_pins(),
        (r'^PINS = \["packaging>=20"', 'PINS = ["tqdm>=4.66", "packaging>=20"'),
    )
    result = run(tmp_path, "--check", fakes=fakes)
    assert result.returncode == 1
    assert "🔁 tqdm 1.0 : mauvaise version (requis >=4.66)" in result.stdout
    assert "⏭️ tqdm : non requis ici" in result.stdout  # l'exigence au marqueur faux est sautée
    assert "❌ à installer ou corriger : tqdm 1.0 au lieu de >=4.66" in result.stderr


def test_unknown_or_conflicting_options_exit_2():
    assert run(ROOT, "--bogus").returncode == 2
    assert run(ROOT, "--check", "--dev").returncode == 2


# ---------------------------------------------------------------- Python trop ancien


@pytest.mark.parametrize("args", [["--check"], ["--dev"], ["--notebook"]])
def test_python_older_than_3_11_is_refused_before_anything_runs(
    tmp_path, monkeypatch, capsys, args
):
    module = load(copy_setup_env(tmp_path))
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    monkeypatch.setattr(
        module.subprocess, "run", lambda *a, **k: pytest.fail("rien ne doit être lancé")
    )
    assert module.main(args) == 4
    assert "Python 3.10.14 est incompatible" in module.SETUP_ERROR and "3.11" in module.SETUP_ERROR
    assert "❌ Python 3.10.14 est incompatible" in capsys.readouterr().err
    assert not (tmp_path / ".venv").exists()


# ---------------------------------------------------------------- --notebook


def test_notebook_outside_colab_only_checks_and_never_calls_pip(tmp_path):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="fail")
    copy_setup_env(tmp_path)
    result = run(tmp_path, "--notebook", fakes=fakes, notebook=True)
    assert result.returncode == 0 and "SETUP_ERROR = None" in result.stdout
    assert "Hors Colab : vérification seulement, rien n'est installé." in result.stdout
    assert pip_calls(fakes) == [] and not (tmp_path / ".venv").exists()


def test_notebook_on_colab_installs_in_one_pip_call_with_colab_torch_held(tmp_path):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="noop")
    copy_setup_env(tmp_path, satisfied_pins())
    result = run(tmp_path, "--notebook", fakes=fakes, colab=True, notebook=True)
    assert result.returncode == 0 and "SETUP_ERROR = None" in result.stdout
    assert "✅ Rien à installer" in result.stdout
    (call,) = pip_calls(fakes)
    assert call["args"][:2] == ["install", "--progress-bar"] and "packaging>=20" in call["args"]
    assert call["constraints"] == f"torch=={importlib.metadata.version('torch')}\n"


def test_notebook_on_colab_pip_failure_sets_setup_error_without_system_exit(tmp_path):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="fail")
    copy_setup_env(tmp_path)
    result = run(tmp_path, "--notebook", fakes=fakes, colab=True, notebook=True)
    assert result.returncode == 0  # pas de SystemExit : %run l'avalerait
    assert "SETUP_ERROR = 'pip a échoué (code 1)" in result.stdout
    assert "No matching distribution found for transformers==5.23.0" in result.stderr


def test_notebook_on_colab_restarts_by_killing_the_kernel_after_a_change(tmp_path):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="install")
    copy_setup_env(tmp_path, satisfied_pins())
    result = run(tmp_path, "--notebook", fakes=fakes, colab=True, notebook=True)
    assert result.returncode == -9  # SIGKILL : Colab relance alors la session
    assert "Successfully installed paquet-simule-1.0" in result.stdout
    assert (
        "🔁 Paquets modifiés : paquet-simule." in result.stdout
        and "La session redémarre" in result.stdout
    )


def test_notebook_no_restart_asks_for_a_restart_and_stops_the_notebook(tmp_path):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="install")
    copy_setup_env(tmp_path, satisfied_pins())
    result = run(tmp_path, "--notebook", "--no-restart", fakes=fakes, colab=True, notebook=True)
    assert result.returncode == 0
    assert "SETUP_ERROR = 'paquets mis à jour, la session doit redémarrer" in result.stdout
    assert "Redémarrer la session" in result.stderr


# ---------------------------------------------------------------- --dev et sans option (.venv)


@pytest.fixture
def project(tmp_path):
    """Copie du projet dont .venv existe déjà : son « python » relance l'interpréteur des tests."""
    for name in ("requirements.txt", "requirements-dev.txt"):
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "requirements"), [(["--dev"], "requirements-dev.txt"), ([], "requirements.txt")]
)
def test_venv_mode_installs_requirements_into_dot_venv_then_checks(project, args, requirements):
    fakes = make_fakes(project / "fakes", pip_mode="noop")
    copy_setup_env(project, satisfied_pins())
    result = run(project, *args, fakes=fakes)
    assert result.returncode == 0, result.stderr
    assert pip_calls(fakes) == [
        {"args": ["install", "-r", str(project / requirements)], "constraints": None}
    ]
    assert (
        "Environnement virtuel existant" in result.stdout
        and "✅ Tout est en ordre." in result.stdout
    )


def test_venv_mode_reports_pip_failure_with_exit_code_3(project):
    fakes = make_fakes(project / "fakes", pip_mode="fail")
    copy_setup_env(project)
    result = run(project, "--dev", fakes=fakes)
    assert result.returncode == 3
    assert "pip a échoué (code 1) en installant requirements-dev.txt" in result.stderr
    assert "No matching distribution found" in result.stderr


def test_venv_mode_fails_with_exit_code_1_when_the_check_fails(project):
    fakes = make_fakes(project / "fakes", pip_mode="noop")
    copy_setup_env(project, (r'"tqdm>=4\.66"', '"tqdm>=999"'))
    result = run(project, "--dev", fakes=fakes)
    assert result.returncode == 1
    assert "🔁 tqdm" in result.stdout and "ne satisfait pas les versions demandées" in result.stderr
