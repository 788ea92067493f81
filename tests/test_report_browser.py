"""The HTML report as a user sees it: opened in headless Chromium (Debian's `chromium`, installed by
scripts/setup.sh), the charts decode as images and the tables render. A probe script is added to a
copy of the report (the report itself has none) to write what the browser decoded into the DOM."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from fixtures.config import parse_thresholds
from reports.frame import to_frame
from reports.render import render_report
from tests import synthetic_history as synth

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")  # fmt: skip
PROBE = """<script>
window.addEventListener('load', () => {
  for (const img of document.images) img.setAttribute('data-decoded', img.naturalWidth + 'x' + img.naturalHeight);
  for (const t of document.querySelectorAll('table'))
    t.setAttribute('data-rendered', t.getBoundingClientRect().height > 0 ? t.rows.length : 0);
  document.body.setAttribute('data-probed', 'yes');
});
</script></body>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is missing: run scripts/setup.sh (apt-get install chromium)"
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    slow = synth.with_failure(synth.result("total-loss", "container", 4, rto_factor=1.5), "write_probe: refused")
    results = [slow if (r.run_id, r.scenario, r.backend, r.scale) == (slow.run_id, slow.scenario, slow.backend, slow.scale)
               else r for r in synth.history(5)]  # fmt: skip
    out = tmp_path_factory.mktemp("report")
    frame = to_frame(synth.records(results))
    return render_report(frame, ["run04"], out, thresholds=parse_thresholds(["rto_seconds:20%"])).html


def _browse(chromium: str, page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_charts_and_tables_render_in_chromium(chromium: str, report: Path, tmp_path: Path) -> None:
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("</body>", PROBE, 1))
    done = _browse(chromium, probed, tmp_path, "--dump-dom", "--virtual-time-budget=5000")
    dom = done.stdout
    assert 'data-probed="yes"' in dom, (done.returncode, done.stderr[-2000:])
    images = re.findall(r'<img class="chart" id="chart-([a-z_]+)"[^>]*src="data:image/png;base64,([^"]+)"[^>]*>', dom)
    assert [name for name, _ in images] == ["rto_over_time", "rto_phases", "rpo_over_time", "restore_throughput"]
    assert all(len(data) * 3 // 4 > 20_000 for _, data in images)  # non-trivial PNGs
    decoded = re.findall(r'data-decoded="(\d+)x(\d+)"', dom)
    assert len(decoded) == 4 and all(int(w) >= 800 and int(h) >= 250 for w, h in decoded), decoded
    rendered = dict(re.findall(r'<table id="([a-z]+)" data-rendered="(\d+)"', dom))
    assert int(rendered["latest"]) == 1 + 9  # header + 4 scenarios x 2 backends + the 100MB result
    assert int(rendered["changes"]) == 10 and int(rendered["audit"]) > 20 and int(rendered["checks"]) > 20
    assert int(rendered["regressions"]) >= 2  # header + the slower total-loss at least
    assert int(rendered["monthly"]) == 1 + 9  # one month (October) of each of the nine drills
    assert "write_probe: refused" in dom


def test_screenshot_is_a_real_png(chromium: str, report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = _browse(chromium, report, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars")
    assert shot.exists(), (done.returncode, done.stderr[-2000:])
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2000)
    assert len(data) > 100_000, len(data)  # text, tables and charts, not a blank page
