"""The fast lane's guard (tests/conftest.py), run on a tiny suite of its own: a test that is not marked slow
fails when it uses the session's Ray or starts a process, an xfail mark does not hide that, and a test that
does neither passes."""
from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

SUITE = '''
import subprocess
import pytest

def test_uses_ray(ray_session):
    pass

def test_starts_a_shell():
    subprocess.run(["sh", "-c", "true"])

@pytest.mark.xfail(reason="an xfail mark does not hide a process")
def test_xfail_starts_a_shell():
    subprocess.run(["sh", "-c", "true"])

def test_plain():
    assert sum(range(4)) == 6

@pytest.mark.slow
def test_marked_slow():
    assert True
'''


def test_unmarked_ray_or_process_fails_and_the_rest_pass(pytester):
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    slow: a Ray sweep or a subprocess\n")
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider")  # in this process: the outer guard stays on too
    result.assert_outcomes(passed=2, failed=2, errors=1)
    out = result.stdout.str()
    assert "is not marked @pytest.mark.slow but uses the ray_session fixture" in out, out
    assert out.count("but starts a process (sh)") >= 2, out  # the plain and the xfail one, each named
    lane = pytester.runpytest("-p", "no:cacheprovider", "-m", "not slow")
    lane.assert_outcomes(passed=1, failed=2, errors=1, deselected=1)
