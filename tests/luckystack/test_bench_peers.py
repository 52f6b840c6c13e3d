"""The peer benchmark's measurement of a whole process tree, on real processes (PSS itself is never run
in tests)."""

import sys
import textwrap

from luckystack.bench_peers import Contest, measure_tree, report

# A parent that starts a child and exits at once, leaving it orphaned; the child holds 80 MB of
# anonymous memory and burns CPU for a while: its time and memory must still be counted.
TREE = textwrap.dedent("""
    import subprocess, sys
    child = '''
    import time
    block = bytearray(80 << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    t = time.process_time()
    while time.process_time() - t < 0.4:
        pass
    '''
    subprocess.Popen([sys.executable, '-c', child])
""")


def test_the_whole_tree_is_measured_even_when_its_main_process_exits_first(tmp_path):
    r = measure_tree([sys.executable, "-c", TREE], tmp_path, log=tmp_path / "log.txt")
    assert r["rc"] == 0
    assert r["cpu"] >= 0.4 and r["wall"] >= 0.4
    assert 70 <= r["anon_mb"] < 400


def test_report_gives_medians_and_ratios():
    c = Contest("Jupiter", None, [], [])
    c.runs["luckystack"] = [{"wall": w, "cpu": 2 * w, "anon_mb": 300} for w in (3.0, 4.0, 9.0)]
    c.runs["PSS"] = [{"wall": w, "cpu": w, "anon_mb": 2000} for w in (8.0, 6.0, 7.0)]
    text = report([c])
    rows = [line.split() for line in text.splitlines()[2:]]
    assert rows[0] == ["Jupiter", "luckystack", "3", "4.00", "8.00", "300"]
    assert rows[1] == ["Jupiter", "PSS", "3", "7.00", "7.00", "2000"]
    assert rows[2] == ["Jupiter", "luckystack", "/", "PSS", "0.57x", "1.14x", "0.15x"]
