"""The dose engine stays pure: importing it must not load Django."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_engine_does_not_load_django():
    code = (
        "import sys, dosing.engine, dosing.engine.case, dosing.engine.__main__; "
        "import dosing.engine.estimation, dosing.engine.recommend, dosing.engine.forecast; "
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"django modules loaded: {proc.stdout} {proc.stderr}"


def test_engine_sources_import_only_numpy_scipy_and_the_standard_library():
    import ast

    allowed = {"numpy", "scipy", "dosing"} | set(sys.stdlib_module_names)
    for path in (ROOT / "dosing" / "engine").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
            if "dosing" in roots:
                module = node.module if isinstance(node, ast.ImportFrom) else ""
                assert module is None or module.startswith("dosing.engine"), f"{path.name} imports {module}"
