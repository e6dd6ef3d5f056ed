"""The benchmark scripts load what they share with the tests without editing `sys.path`."""
import subprocess
import sys

from notebook_utils import REPO

BENCH_NOTEBOOKS = REPO / "benchmarks" / "bench_notebooks.py"


def test_bench_notebooks_loads_the_notebook_harness_without_editing_sys_path():
    check = ("import runpy, sys; before = list(sys.path); "
             f"bench = runpy.run_path({str(BENCH_NOTEBOOKS)!r}, run_name='bench'); "
             "assert sys.path == before, [p for p in sys.path if p not in before]; "
             "assert bench['NOTEBOOK_BUDGET_S'] == 180.0 and bench['COURSE_BUDGET_S'] == 600.0; "
             "assert 'ch02_attention' in bench['chapters'](bench['SOLUTIONS'])")
    p = subprocess.run([sys.executable, "-c", check], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout


def test_bench_notebooks_help_runs_from_anywhere(tmp_path):
    p = subprocess.run([sys.executable, str(BENCH_NOTEBOOKS), "--help"], cwd=tmp_path, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    assert p.returncode == 0 and "--repeats" in p.stdout, p.stdout


def test_no_benchmark_edits_sys_path():
    scripts = sorted((REPO / "benchmarks").glob("*.py"))
    assert len(scripts) > 3
    for script in scripts:
        assert "sys.path.insert" not in script.read_text() and "sys.path.append" not in script.read_text(), \
            f"{script.name} edits sys.path: load tests/support/ through benchmarks/_support.py instead"
