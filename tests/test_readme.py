"""The README's promises: its Python examples run, and CI calls the README's test command."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1).splitlines()
    commands = [line.split("#")[0].strip() for line in first_block]
    assert commands == ["make train", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_example_runs(index, tmp_path):
    proc = subprocess.run([sys.executable, "-c", PYTHON_BLOCKS[index]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()


def test_there_are_examples():
    assert len(PYTHON_BLOCKS) >= 2


def test_every_function_in_the_api_table_is_exported():
    import dspjax.pruning
    table = README.split("### The pure functions")[1].split("```")[0]
    names = re.findall(r"`([A-Za-z_]+)`", "\n".join(l for l in table.splitlines() if l.startswith("| §")
                                                   or l.startswith("| one network")))
    assert len(names) > 25
    missing = [n for n in names if not hasattr(dspjax.pruning, n)]
    assert not missing
