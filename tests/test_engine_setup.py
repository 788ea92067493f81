"""Setup proves the container engine instead of copying the shell's limits: the ulimits come from the
engine process's own limits and the kernel's caps (computed here over fabricated machines), and a container
is started to prove them. A second podman service started under a lower process limit stands in for a
machine unlike this one: the shell's limit fails there, the derived one runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.engine import Engine, ping
from fixtures.engine_limits import HostLimits, container_ulimits, host_limits, parse_limits_file, podman_conf
from fixtures.engine_ready import EngineUnusable, explain_start_failure, prove
from fixtures.image import LOCAL_IMAGE, ImageSpec
from tests.drillrun import run_pytest

LIMITS_TEXT = """Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             32768                96363                processes
Max open files            1024                 20000                files
Max locked memory         8388608              8388608              bytes
"""


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        # the machine the issue saw: hard nproc above pid_max -> pid_max
        (HostLimits(nofile=20000, nproc=96363, pid_max=32768, nr_open=1048576), ("nofile=20000:20000", "nproc=32768:32768")),
        # hard nproc below pid_max -> the hard limit
        (HostLimits(nofile=1048576, nproc=4096, pid_max=4194304, nr_open=1048576), ("nofile=1048576:1048576", "nproc=4096:4096")),
        # nofile bounded by fs.nr_open
        (HostLimits(nofile=None, nproc=None, pid_max=32768, nr_open=65536), ("nofile=65536:65536", "nproc=32768:32768")),
        # nothing known about nproc -> left to the engine's default
        (HostLimits(nofile=20000, nproc=None, pid_max=None, nr_open=None), ("nofile=20000:20000",)),
        # nothing known at all -> no ulimits written
        (HostLimits(nofile=None, nproc=None, pid_max=None, nr_open=None), ()),
    ],
)  # fmt: skip
def test_container_ulimits_stay_within_what_the_engine_may_set(limits: HostLimits, expected: tuple[str, ...]) -> None:
    assert container_ulimits(limits) == expected


def test_limits_file_parsing() -> None:
    hard = parse_limits_file(LIMITS_TEXT)
    assert hard["Max processes"] == 96363 and hard["Max open files"] == 20000 and hard["Max cpu time"] is None
    own = host_limits(os.getpid())
    assert own.nofile is not None and own.pid_max is not None and own.pid_max > 0
    assert "nproc" in own.describe()


def test_podman_conf_carries_the_ulimits_and_the_runners_mark() -> None:
    text = podman_conf(("nofile=10:10", "nproc=20:20"))
    assert 'default_ulimits = ["nofile=10:10", "nproc=20:20"]' in text and text.startswith("# drill-runner")
    assert 'runtime = "runc"' in text and podman_conf(()).count("default_ulimits = []") == 1


def test_a_start_failure_names_cause_and_fix() -> None:
    engine = Engine("unix:///run/podman/podman.sock", "Podman Engine")
    seen = ("runc: runc create failed: unable to start container process: error during container init: error "
            "setting rlimits for ready process: error setting rlimit type 6: operation not permitted")  # fmt: skip
    message = explain_start_failure(seen, engine, LOCAL_IMAGE)
    assert "Cause: the container ulimits exceed what the engine process may set" in message
    assert "Fix: run `bash scripts/setup.sh`" in message and LOCAL_IMAGE in message and "kernel.pid_max" in message
    missing = explain_start_failure("404 Client Error: no such image", engine, "localhost/nope:1")
    assert "Cause: the image is missing" in missing


def test_the_proof_runs_a_container_and_fails_clearly(container_engine: Engine) -> None:
    assert "sqld 0.24.32" in prove(container_engine, ImageSpec(LOCAL_IMAGE))
    with pytest.raises(EngineUnusable) as missing:
        prove(container_engine, ImageSpec("localhost/drill-no-such-image:0"))
    assert "localhost/drill-no-such-image:0" in str(missing.value) and "Fix:" in str(missing.value)
    with pytest.raises(EngineUnusable) as broken:
        prove(container_engine, ImageSpec(LOCAL_IMAGE, entrypoint="/bin/no-such-sqld"))
    assert "cannot run" in str(broken.value) and "Fix:" in str(broken.value)


@contextlib.contextmanager
def _podman_service(tmp: Path, conf: str, nproc: int) -> Iterator[tuple[Engine, int]]:
    """A podman API service of its own (socket under tmp), started under a hard process limit of `nproc`
    and reading `conf`: a stand-in for a machine whose limits differ from this one's."""
    tmp.mkdir(parents=True)
    (tmp / "containers.conf").write_text(conf)
    sock = tmp / "podman.sock"
    proc = subprocess.Popen(
        ["prlimit", f"--nproc={nproc}:{nproc}", "--", "podman", "system", "service", "--time=0", f"unix://{sock}"],
        env={**os.environ, "CONTAINERS_CONF": str(tmp / "containers.conf")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        engine = None
        while engine is None and time.monotonic() < deadline and proc.poll() is None:
            engine = ping(f"unix://{sock}") if sock.exists() else None
            time.sleep(0.1)
        assert engine is not None, "the second podman service did not answer"
        yield engine, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.skipif(not shutil.which("podman") or not shutil.which("prlimit"), reason="needs podman and prlimit")
def test_derived_limits_run_where_the_shells_limit_fails(tmp_path: Path, container_engine: Engine) -> None:
    low = 3000  # far below this machine's limits, as on a smaller machine
    shell_style = podman_conf((f"nofile={low}:{low}", f"nproc={low + 1000}:{low + 1000}"))  # copied from elsewhere
    with _podman_service(tmp_path / "a", shell_style, low) as (engine, pid):
        assert host_limits(pid).nproc == low, host_limits(pid).describe()
        with pytest.raises(EngineUnusable) as refused:
            prove(engine, ImageSpec(LOCAL_IMAGE))
        assert "rlimit" in str(refused.value) and "Fix:" in str(refused.value)
        derived = container_ulimits(host_limits(pid))
    assert f"nproc={low}:{low}" in derived, derived
    with _podman_service(tmp_path / "b", podman_conf(derived), low) as (engine, _):
        assert "sqld 0.24.32" in prove(engine, ImageSpec(LOCAL_IMAGE))


NO_IMAGE = "--drill-image=localhost/drill-no-such-image:0"  # an engine that cannot run the drills' image


def test_an_explicit_container_backend_fails_loudly_when_the_engine_cannot_run_it(
    tmp_path: Path, container_engine: Engine
) -> None:
    run = run_pytest(["drills/test_total_loss.py", "--drill-backend=container", NO_IMAGE], tmp_path)
    assert run.returncode == 4, run.output[-2000:]
    assert "drill setup failed" in run.output and "localhost/drill-no-such-image:0" in run.output
    assert "passed" not in run.output.splitlines()[-1] and run.history == []


def test_auto_falls_back_to_process_and_every_result_says_so(tmp_path: Path, container_engine: Engine) -> None:
    run = run_pytest(["drills/test_total_loss.py", "--drill-backend=auto", NO_IMAGE], tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert [(r["backend"], r["verdict"]) for r in run.history] == [("process", "pass")]
    assert run.history[0]["backend_fallback"].startswith("drill_backend=auto fell back to process: image ")
    assert "backend: drill_backend=auto fell back to process" in run.output
