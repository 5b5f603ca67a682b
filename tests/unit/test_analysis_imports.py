"""analysis reads tables only: importing any of its modules loads no torch and, of bench,
only bench.io and bench.errors (CONTRIBUTING.md, analysis contract)."""

import subprocess
import sys

CODE = """
import importlib, pkgutil, sys
import analysis
names = [m.name for m in pkgutil.walk_packages(analysis.__path__, "analysis.")]
for name in names:
    importlib.import_module(name)
bench = sorted(m for m in sys.modules if m.startswith("bench"))
print(len(names), "torch" in sys.modules, bench)
"""


def test_analysis_modules_import_no_torch_and_no_bench_beyond_io():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=2)
    assert int(out[0]) >= 15  # every module was imported (report, collect, stats, ...)
    assert out[1] == "False"
    assert out[2].strip() == "['bench', 'bench.errors', 'bench.io']"
