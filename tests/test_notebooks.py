"""The notebooks run top to bottom (in a scratch directory, with this interpreter's kernel), each
with its own checks on what it shows."""

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).parents[1] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))

# Environment steps per seed for prune_your_flax_agent.ipynb here: enough for a pruning step, and
# the notebook (compilation included) in about a minute instead of its full run.
PRUNE_NOTEBOOK_STEPS = 8192


def execute(name, tmp_path):
    """The notebook ``name`` executed in ``tmp_path``; returns it with its outputs."""
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def images(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]


def printed(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_quickstart_runs(tmp_path):
    nb = execute("quickstart.ipynb", tmp_path)
    assert len(images(nb)) == 3
    assert (tmp_path / "runs" / "quickstart" / "summary.json").is_file()


def test_prune_your_flax_agent_runs(tmp_path, monkeypatch):
    """Top to bottom with a short run: the plot of alive neurons and the compact actor's size; the
    notebook itself asserts that the compact actor acts as the trained one."""
    monkeypatch.setenv("DSPJAX_NOTEBOOK_STEPS", str(PRUNE_NOTEBOOK_STEPS))
    nb = execute("prune_your_flax_agent.ipynb", tmp_path)
    assert len(images(nb)) == 1
    text = printed(nb)
    assert f"x {PRUNE_NOTEBOOK_STEPS} steps" in text
    sizes = re.findall(r"compact actor 4 x (\d+) x (\d+) x 2", text)
    assert sizes and all(4 <= int(n) <= 64 for pair in sizes for n in pair)
    assert "actions differ" in text


def test_the_short_run_is_documented_in_the_first_code_cell():
    nb = nbformat.read(NOTEBOOK_DIR / "prune_your_flax_agent.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "DSPJAX_NOTEBOOK_STEPS" in first.source


def test_every_notebook_has_its_test():
    assert NOTEBOOKS == ["prune_your_flax_agent.ipynb", "quickstart.ipynb"]
