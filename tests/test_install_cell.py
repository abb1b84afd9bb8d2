"""La première cellule de code du notebook, exécutée dans un vrai noyau IPython, sur un faux Colab.

Chaque test construit un notebook d'une ou deux cellules dans un dossier temporaire :
éventuellement `import google.colab` (faux paquet en tête de PYTHONPATH), puis la cellule
d'installation telle qu'elle est dans finetuning-projet.ipynb. Le dossier contient (ou non) un
setup_env.py, et le PYTHONPATH un faux pip. Ce qui est vérifié : la cellule lève RuntimeError
avec un message en français à chaque échec (sinon « Tout exécuter » continuerait), et seulement
dans ces cas-là.
"""

import importlib.metadata

import nbformat
import pytest
from fake_colab import copy_setup_env, make_fakes, pip_calls, satisfied_pins
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from nbtools import code_cells

INSTALL_CELL = "".join(code_cells()[0]["source"])


@pytest.fixture(autouse=True)
def the_notebook_has_the_install_cell_of_setup_env_v3():
    """Un message clair tant que le notebook n'a pas la cellule qu'attend setup_env.py (v3)."""
    if "SETUP_VERSION_EXPECTED = 3" not in INSTALL_CELL or "if SETUP_ERROR:" not in INSTALL_CELL:
        pytest.fail(
            "la première cellule de code du notebook n'est pas la cellule d'installation "
            "de setup_env.py v3"
        )


def run_cells(workdir, fakes, monkeypatch, colab: bool):
    """Exécute [import google.colab,] la cellule d'installation, affiche SETUP_ERROR.

    Renvoie (notebook, erreur)."""
    monkeypatch.setenv("PYTHONPATH", str(fakes))
    for name in ("no_proxy", "NO_PROXY", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(name, raising=False)
    # Téléchargement : un mandataire local fermé fait échouer urlretrieve tout de suite.
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    sources = (["import google.colab"] if colab else []) + [
        INSTALL_CELL,
        "print('SETUP_ERROR =', repr(globals().get('SETUP_ERROR', 'absente')))",
    ]
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in sources]
    )
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    try:
        client.execute()
    except (CellExecutionError, DeadKernelError) as error:
        return notebook, error
    return notebook, None


def output_text(notebook) -> str:
    """Texte affiché par toutes les cellules (flux et erreurs)."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") + output.get("evalue", ""))
    return "".join(parts)


def assert_cell_raises(error, *fragments):
    """La cellule a levé RuntimeError, avec tous ces fragments dans le message."""
    assert isinstance(error, CellExecutionError), error
    assert error.ename == "RuntimeError", error
    for fragment in fragments:
        assert fragment in error.evalue, error.evalue


def test_the_cell_runs_setup_env_in_notebook_mode_and_checks_setup_error():
    assert INSTALL_CELL.index("%run setup_env.py --notebook") < INSTALL_CELL.index(
        "if SETUP_ERROR:"
    )


def test_download_failure_on_colab_raises(tmp_path, monkeypatch):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="fail", colab=True)
    workdir = tmp_path / "work"
    workdir.mkdir()
    notebook, error = run_cells(workdir, fakes, monkeypatch, colab=True)
    assert_cell_raises(
        error, "Téléchargement de setup_env.py impossible", "raw.githubusercontent.com"
    )
    assert not (workdir / "setup_env.py").exists()
    assert pip_calls(fakes) == []


def test_pip_failure_on_colab_raises_with_the_end_of_pip_output(tmp_path, monkeypatch):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="fail", colab=True)
    copy_setup_env(tmp_path / "work")
    notebook, error = run_cells(tmp_path / "work", fakes, monkeypatch, colab=True)
    assert_cell_raises(
        error, "Installation interrompue", "pip a échoué (code 1)", "No matching distribution"
    )
    calls = pip_calls(fakes)
    assert len(calls) == 1  # un seul appel, avec toutes les versions, torch de Colab figé
    assert (
        "transformers==5.23.0" in calls[0]["args"]
        and "huggingface-hub>=1.31,<2" in calls[0]["args"]
    )
    assert calls[0]["constraints"] == f"torch=={importlib.metadata.version('torch')}\n"


def test_version_check_failure_after_install_raises(tmp_path, monkeypatch):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="noop", colab=True)
    copy_setup_env(
        tmp_path / "work", (r'"tqdm>=4\.66"', '"tqdm>=999"')
    )  # pip « réussit » sans rien changer
    notebook, error = run_cells(tmp_path / "work", fakes, monkeypatch, colab=True)
    assert_cell_raises(
        error, "Installation interrompue", "après l'installation, versions incorrectes", "tqdm"
    )
    assert len(pip_calls(fakes)) == 1
    assert "🔁 tqdm" in output_text(notebook)


@pytest.mark.parametrize(("line", "found"), [("SETUP_VERSION = 2", "2"), ("", "aucune")])
def test_setup_env_of_another_version_is_refused_before_running(tmp_path, monkeypatch, line, found):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="fail", colab=True)
    copy_setup_env(tmp_path / "work", (r"^SETUP_VERSION = 3$", line))
    notebook, error = run_cells(tmp_path / "work", fakes, monkeypatch, colab=True)
    assert_cell_raises(error, "n'est pas la version 3", f"trouvée : {found}", "Supprimez-le")
    assert "Colab détecté" not in output_text(notebook) and pip_calls(fakes) == []


def test_incompatible_python_raises_without_installing(tmp_path, monkeypatch):
    # Python « trop ancien » : le minimum de la copie est relevé à 3.99 (l'interpréteur reste vrai).
    fakes = make_fakes(tmp_path / "fakes", pip_mode="fail", colab=True)
    copy_setup_env(tmp_path / "work", (r"^PYTHON_MIN = \(3, 11\)", "PYTHON_MIN = (3, 99)"))
    notebook, error = run_cells(tmp_path / "work", fakes, monkeypatch, colab=True)
    assert_cell_raises(error, "Installation interrompue", "est incompatible", "Python ≥ 3.99")
    assert pip_calls(fakes) == []


def test_outside_colab_checks_prints_and_continues_without_pip(tmp_path, monkeypatch):
    fakes = make_fakes(
        tmp_path / "fakes", pip_mode="fail"
    )  # un pip qui échouerait s'il était appelé
    copy_setup_env(tmp_path / "work")
    notebook, error = run_cells(tmp_path / "work", fakes, monkeypatch, colab=False)
    assert error is None
    text = output_text(notebook)
    assert "Hors Colab : vérification seulement" in text and "SETUP_ERROR = None" in text
    assert (
        "transformers" in text and "huggingface-hub" in text and "torch" in text
    )  # une ligne par paquet
    assert ("✅ Environnement complet." in text) != ("⚠️ Environnement incomplet" in text)
    assert pip_calls(fakes) == []


def test_outside_colab_without_setup_env_warns_and_continues(tmp_path, monkeypatch):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="fail")
    (tmp_path / "work").mkdir()
    notebook, error = run_cells(tmp_path / "work", fakes, monkeypatch, colab=False)
    assert error is None and "setup_env.py est absent du dossier courant" in output_text(notebook)


def test_colab_with_nothing_to_change_continues(tmp_path, monkeypatch):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="noop", colab=True)
    copy_setup_env(tmp_path / "work", satisfied_pins())
    notebook, error = run_cells(tmp_path / "work", fakes, monkeypatch, colab=True)
    assert error is None
    text = output_text(notebook)
    assert "✅ Rien à installer" in text and "SETUP_ERROR = None" in text and "⏭️ tqdm" in text
    assert len(pip_calls(fakes)) == 1


def test_colab_restarts_the_kernel_when_pip_changed_a_package(tmp_path, monkeypatch):
    fakes = make_fakes(tmp_path / "fakes", pip_mode="install", colab=True)
    copy_setup_env(tmp_path / "work", satisfied_pins())
    notebook, error = run_cells(tmp_path / "work", fakes, monkeypatch, colab=True)
    assert isinstance(
        error, DeadKernelError
    )  # « Tout exécuter » s'arrête là ; Colab relance un noyau
    assert (fakes / "paquet_simule-1.0.dist-info").is_dir()
    text = output_text(notebook)
    assert "Paquets modifiés : paquet-simule" in text and "La session redémarre" in text
