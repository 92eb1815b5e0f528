"""The four notebooks run top to bottom in fast mode, are committed without outputs, and agree
with their plain-text twins.

Each notebook is executed in a fresh kernel of this interpreter with ``EGU_FAST=1`` and its
outputs directed to a temporary folder (``EGU_OUTPUT``); any cell error fails the test. The
checks on the executed notebooks look at what each one is for, not only that it ran. The
executions start early, in a background thread (see :class:`Executions`), so that the rest of the
suite runs while the notebooks' kernels work.

Every ``notebooks/0X_*.ipynb`` is a jupytext pair with ``notebooks/0X_*.py`` (py:percent): the
``.py`` is what reviewers read and diff, the ``.ipynb`` is what Binder and users open. After
editing either one, run ``jupytext --sync notebooks/0*.ipynb``; the pairing tests below fail when
the two disagree.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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
#: Which notebook each execution test runs (tests/conftest.py starts the selected ones early).
EXECUTES = {
    "test_01_linear_mixing_basics": NAMES[0],
    "test_02_egu_net_walkthrough": NAMES[1],
    "test_03_explore_your_own_cube": NAMES[2],
    "test_04_reproduce_the_paper": NAMES[3],
}


def write_kernel_spec(root: Path) -> Path:
    """A kernel spec under ``root`` that runs *this* interpreter, whatever other kernels the machine has."""
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


class Executions:
    """The notebooks executed one after another in a background thread, each in its own folder.

    Executing a notebook is a separate process that mostly waits on its kernel, so the suite's
    other tests can run meanwhile: :func:`background_start` (called by tests/conftest.py before
    the first test outside tests/browser) starts the selected notebooks early, and each test
    waits for its own. A test run on its own starts its notebook when it needs it.
    """

    def __init__(self):
        # The environment as it is now, before tests that run meanwhile change theirs (a test that
        # points EGU_WIDGETS_DATA at an empty folder must not hide the datasets from notebook 4).
        self.environ = dict(os.environ)
        self.root = Path(tempfile.mkdtemp(prefix="egu-notebook-tests-"))
        self.kernel_env = write_kernel_spec(self.root / "jupyter")
        self.queue: list[str] = []
        self.done: dict[str, threading.Event] = {}
        self.outcome: dict[str, tuple[int, str, str]] = {}
        self.proc: subprocess.Popen | None = None
        self.closed = False
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def workdir(self, name: str) -> Path:
        return self.root / Path(name).stem

    def request(self, names) -> None:
        """Queue ``names`` (those not queued yet) and make sure the worker thread runs."""
        with self.lock:
            for name in names:
                if name not in self.done:
                    self.done[name] = threading.Event()
                    self.queue.append(name)
            if self.thread is None:
                self.thread = threading.Thread(target=self._work, name="notebook-executions", daemon=True)
                self.thread.start()

    def _work(self) -> None:
        while True:
            with self.lock:
                if self.closed or not self.queue:
                    self.thread = None
                    return
                name = self.queue.pop(0)
            try:
                self.outcome[name] = self._execute(name)
            except BaseException as exc:  # reported by the test that waits for it
                self.outcome[name] = (1, "", f"{type(exc).__name__}: {exc}")
            self.done[name].set()

    def _execute(self, name: str) -> tuple[int, str, str]:
        workdir = self.workdir(name)
        workdir.mkdir(parents=True)
        env = dict(
            self.environ,
            EGU_FAST="1",
            EGU_OUTPUT=str(workdir / "out"),
            JUPYTER_PATH=str(self.kernel_env),
            MPLBACKEND="module://matplotlib_inline.backend_inline",
        )
        executed = workdir / f"executed-{name}"
        with self.lock:
            if self.closed:
                return 1, "", "the test session ended before this notebook ran"
            self.proc = subprocess.Popen(
                [sys.executable, "-c", RUNNER, str(NOTEBOOKS / name), str(executed), str(workdir), KERNEL],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,
            )
        try:
            out, err = self.proc.communicate(timeout=1500)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
            err += "\n(killed after 1500 s)"
        return self.proc.returncode, out, err

    def result(self, name: str) -> tuple[nbformat.NotebookNode, float, Path]:
        """Wait for ``name`` (starting it if nobody has) and return it executed, its seconds and its folder."""
        self.request([name])
        self.done[name].wait()
        returncode, out, err = self.outcome[name]
        if returncode != 0:
            pytest.fail(f"{name} failed to execute:\n{err[-6000:]}")
        workdir = self.workdir(name)
        return nbformat.read(workdir / f"executed-{name}", as_version=4), float(out.strip().splitlines()[-1]), workdir

    def close(self) -> None:
        """Stop what still runs (a session ended early) and remove the folders."""
        with self.lock:
            self.closed = True
            proc = self.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        shutil.rmtree(self.root, ignore_errors=True)


_executions: Executions | None = None


def _get_executions() -> Executions:
    global _executions
    if _executions is None:
        _executions = Executions()
        atexit.register(_executions.close)
    return _executions


def background_start(test_names) -> None:
    """Start executing the notebooks of the selected tests ``test_names`` (hook for tests/conftest.py)."""
    names = [EXECUTES[t] for t in test_names if t in EXECUTES]
    if names:
        _get_executions().request(names)


def execute(name: str) -> tuple[nbformat.NotebookNode, float, Path]:
    """``name`` executed in fast mode (``EGU_FAST=1``, outputs in ``<folder>/out``): notebook, seconds, folder."""
    return _get_executions().result(name)


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


def test_01_linear_mixing_basics():
    nb, seconds, _ = execute(NAMES[0])
    text, images, _ = outputs(nb)
    assert "fast mode" in text
    assert "VCA + FCLS: abundance RMSE" in text
    for estimator in ("LS", "SCLS", "NNLS", "FCLS"):
        assert estimator in text
    # one more map when Samson's files are there (the notebook skips that section otherwise)
    assert images >= (7 if "Samson is not available here" in text else 8)
    print(f"{NAMES[0]}: {seconds:.1f} s")


def test_02_egu_net_walkthrough():
    nb, seconds, _ = execute(NAMES[1])
    text, images, mimes = outputs(nb)
    assert "<SpectralBundles:" in text
    assert "<UnmixingResult egu-pw" in text and "<UnmixingResult ae" in text
    assert "are used by both streams" in text
    assert "application/vnd.jupyter.widget-view+json" in mimes  # dashboard, pair view, inspector
    assert images >= 4  # bundles, two network diagrams, ablation maps
    print(f"{NAMES[1]}: {seconds:.1f} s")


def test_03_explore_your_own_cube():
    nb, seconds, workdir = execute(NAMES[2])
    text, _, mimes = outputs(nb)
    out = workdir / "out"
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


def test_04_reproduce_the_paper():
    from egu_widgets.cube.download import fetch
    from egu_widgets.errors import DatasetError

    try:
        for rel in ("samson/samson_1.mat", "jasper_ridge/jasperRidge2_R198.mat", "egu_net_synthetic/TeLabel.mat"):
            fetch(rel, download=False)
    except DatasetError as exc:
        pytest.skip(f"the real datasets are not available here: {exc}")
    nb, seconds, workdir = execute(NAMES[3])
    text, images, _ = outputs(nb)
    table = (workdir / "out" / "fast" / "table.md").read_text()
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
