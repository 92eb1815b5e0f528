"""The four notebooks run top to bottom in fast mode, are committed without outputs, and agree
with their plain-text twins.

Each notebook is executed in a fresh kernel of this interpreter with ``EGU_FAST=1`` and its
outputs directed to a temporary folder (``EGU_OUTPUT``); any cell error fails the test. The
checks on the executed notebooks look at what each one is for, not only that it ran.

Every ``notebooks/0X_*.ipynb`` is a jupytext pair with ``notebooks/0X_*.py`` (py:percent): the
``.py`` is what reviewers read and diff, the ``.ipynb`` is what Binder and users open. After
editing either one, run ``jupytext --sync notebooks/0*.ipynb``; the pairing tests below fail when
the two disagree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = [
    "01_linear_mixing_basics.ipynb",
    "02_egu_net_walkthrough.ipynb",
    "03_explore_your_own_cube.ipynb",
    "04_reproduce_the_paper.ipynb",
]
KERNEL = "egu-notebook-tests"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernel spec that runs *this* interpreter, whatever other kernels the machine has."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "egu_widgets tests",
                "language": "python",
            }
        )
    )
    return root


# Run in a fresh interpreter: nbclient's asyncio/ZMQ machinery inside the long-lived pytest
# process (after the browser, dask-cluster and dashboard tests have used event loops and threads)
# twice stopped waiting for a kernel that had already gone idle; in its own process it does not.
RUNNER = """
import sys, time
import nbformat, nbclient
src, dst, workdir, kernel = sys.argv[1:5]
nb = nbformat.read(src, as_version=4)
client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=600, resources={"metadata": {"path": workdir}})
start = time.perf_counter()
try:
    client.execute()
finally:
    nbformat.write(nb, dst)
print(f"{time.perf_counter() - start:.3f}")
"""


def execute(name: str, workdir: Path, kernel_env: Path, monkeypatch) -> tuple[nbformat.NotebookNode, float]:
    monkeypatch.setenv("EGU_FAST", "1")
    monkeypatch.setenv("EGU_OUTPUT", str(workdir / "out"))
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_env))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    executed = workdir / f"executed-{name}"
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(NOTEBOOKS / name), str(executed), str(workdir), KERNEL],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    if proc.returncode != 0:
        pytest.fail(f"{name} failed to execute:\n{proc.stderr[-6000:]}")
    return nbformat.read(executed, as_version=4), float(proc.stdout.strip().splitlines()[-1])


def outputs(nb) -> tuple[str, int, list[str]]:
    """All text printed or returned, the number of PNG images, and the MIME types displayed."""
    text, images, mimes = [], 0, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                data = out.get("data", {})
                mimes.extend(data)
                images += "image/png" in data
                for key in ("text/plain", "text/markdown"):
                    if key in data:
                        text.append(data[key])
    return "\n".join(text), images, mimes


def test_01_linear_mixing_basics(tmp_path, kernel_env, monkeypatch):
    nb, seconds = execute(NAMES[0], tmp_path, kernel_env, monkeypatch)
    text, images, _ = outputs(nb)
    assert "fast mode" in text
    assert "VCA + FCLS: abundance RMSE" in text
    for estimator in ("LS", "SCLS", "NNLS", "FCLS"):
        assert estimator in text
    # one more map when Samson's files are there (the notebook skips that section otherwise)
    assert images >= (7 if "Samson is not available here" in text else 8)
    print(f"{NAMES[0]}: {seconds:.1f} s")


def test_02_egu_net_walkthrough(tmp_path, kernel_env, monkeypatch):
    nb, seconds = execute(NAMES[1], tmp_path, kernel_env, monkeypatch)
    text, images, mimes = outputs(nb)
    assert "<SpectralBundles:" in text
    assert "<UnmixingResult egu-pw" in text and "<UnmixingResult ae" in text
    assert "are used by both streams" in text
    assert "application/vnd.jupyter.widget-view+json" in mimes  # dashboard, pair view, inspector
    assert images >= 4  # bundles, two network diagrams, ablation maps
    print(f"{NAMES[1]}: {seconds:.1f} s")


def test_03_explore_your_own_cube(tmp_path, kernel_env, monkeypatch):
    nb, seconds = execute(NAMES[2], tmp_path, kernel_env, monkeypatch)
    text, _, mimes = outputs(nb)
    out = tmp_path / "out"
    assert "the .mat and ENVI copies hold identical pixels: True" in text
    assert "suggested P = 4" in text  # the example scene has four materials
    assert "reopened identical: True" in text
    for name in ("result.nc", "abundances.hdr", "abundances.img", "endmembers.csv", "egu-pw-abundances.png"):
        assert (out / name).is_file(), name
    from egu_widgets import UnmixingResult

    saved = UnmixingResult.open(out / "result.nc")
    assert saved.method == "egu-pw" and saved.n_endmembers == 4
    assert "application/vnd.jupyter.widget-view+json" in mimes
    assert "abundance RMSE" in text  # the example scored against its truth
    print(f"{NAMES[2]}: {seconds:.1f} s")


def test_04_reproduce_the_paper(tmp_path, kernel_env, monkeypatch):
    from egu_widgets.cube.download import fetch
    from egu_widgets.errors import DatasetError

    try:
        for rel in ("samson/samson_1.mat", "jasper_ridge/jasperRidge2_R198.mat", "egu_net_synthetic/TeLabel.mat"):
            fetch(rel, download=False)
    except DatasetError as exc:
        pytest.skip(f"the real datasets are not available here: {exc}")
    nb, seconds = execute(NAMES[3], tmp_path, kernel_env, monkeypatch)
    text, images, _ = outputs(nb)
    table = (tmp_path / "out" / "fast" / "table.md").read_text()
    assert "FAST MODE" in table
    assert table.strip() in text  # shown inline
    for ds in ("egu-synthetic", "samson", "jasper-ridge"):
        assert f"## {ds}" in table
    assert images >= 12  # summary, 3 x (abundances, endmembers, training), 2 network diagrams
    print(f"{NAMES[3]}: {seconds:.1f} s")


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_carry_no_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip outputs before committing"
    first = code[0].source
    assert "EGU_FAST" in first and "FAST =" in first, f"{name}: the first code cell must read EGU_FAST"


PAIR_FORMATS = "ipynb,py:percent"


def cell_differences(notebook, script) -> list[str]:
    """Where two notebooks read by jupytext differ in their cells (type and source), in words."""
    ours = [(c.cell_type, c.source.strip()) for c in notebook.cells]
    theirs = [(c.cell_type, c.source.strip()) for c in script.cells]
    problems = []
    if len(ours) != len(theirs):
        problems.append(f"{len(ours)} cells in the .ipynb, {len(theirs)} in the .py")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a[0] != b[0]:
            problems.append(f"cell {i}: {a[0]} in the .ipynb, {b[0]} in the .py")
        elif a[1] != b[1]:
            lines_a, lines_b = a[1].splitlines(), b[1].splitlines()
            k = next((k for k, (x, y) in enumerate(zip(lines_a, lines_b)) if x != y), min(len(lines_a), len(lines_b)))
            first_a = lines_a[k] if k < len(lines_a) else "<end>"
            first_b = lines_b[k] if k < len(lines_b) else "<end>"
            problems.append(f"cell {i} ({a[0]}), line {k + 1}: {first_a!r} in the .ipynb, {first_b!r} in the .py")
    return problems


def test_cell_differences_sees_an_edited_cell():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell("x = 1")])
    same = new_notebook(cells=[new_markdown_cell("# Title\n"), new_code_cell("x = 1\n")])
    edited = new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell("x = 2")])
    shorter = new_notebook(cells=[new_markdown_cell("# Title")])
    longer = new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell("x = 1\ny = 2")])
    swapped = new_notebook(cells=[new_code_cell("# Title"), new_code_cell("x = 1")])
    assert cell_differences(nb, same) == []
    assert cell_differences(nb, edited) == ["cell 1 (code), line 1: 'x = 1' in the .ipynb, 'x = 2' in the .py"]
    assert cell_differences(nb, longer) == ["cell 1 (code), line 2: '<end>' in the .ipynb, 'y = 2' in the .py"]
    assert cell_differences(nb, swapped) == ["cell 0: markdown in the .ipynb, code in the .py"]
    assert cell_differences(nb, shorter) == ["2 cells in the .ipynb, 1 in the .py"]


def test_only_paired_notebooks_are_committed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    scripts = sorted(p.name for p in NOTEBOOKS.glob("*.py"))
    assert scripts == [n.replace(".ipynb", ".py") for n in NAMES], f"each notebook needs its .py twin; found {scripts}"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_and_its_script_are_in_sync(name):
    import jupytext

    path = NOTEBOOKS / name
    notebook = jupytext.read(path)
    script = jupytext.read(path.with_suffix(".py"), fmt="py:percent")
    assert notebook.metadata.get("jupytext", {}).get("formats") == PAIR_FORMATS, (
        f"{name} is not paired: jupytext --set-formats {PAIR_FORMATS} notebooks/{name}"
    )
    assert script.metadata.get("jupytext", {}).get("formats") == PAIR_FORMATS, (
        f"{path.with_suffix('.py').name} is not paired"
    )
    problems = cell_differences(notebook, script)
    assert not problems, f"{name} and its .py differ (run jupytext --sync notebooks/{name}):\n" + "\n".join(problems)
