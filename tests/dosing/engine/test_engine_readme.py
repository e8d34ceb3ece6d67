"""The README's worked examples are real: their printed outputs are what the engine returns now."""

import json
import re
from pathlib import Path

import pytest

from dosing.engine.case import run_case

README = Path(__file__).resolve().parents[3] / "dosing" / "engine" / "README.md"


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def close(a, b, path="result"):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9), path
    else:
        assert a == b, path


@pytest.mark.parametrize("index", [0, 1])
def test_readme_worked_example_output_matches_the_engine(index):
    json_blocks = blocks("json")
    case, printed = json.loads(json_blocks[2 * index]), json.loads(json_blocks[2 * index + 1])
    close(run_case(case), printed)


def test_readme_python_example_runs():
    namespace: dict = {}
    exec(compile(blocks("python")[0], str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["fit"].success and namespace["rec"].success
