"""Fetch files out of a PyPI wheel into a local cache, verifying SHA-256.

Used by the set-up scripts: the project's run-time data (ImageNet-X annotations,
the ONNX Runtime shared library) ships inside wheels on PyPI. `pip download
--no-deps` fetches the wheel, the named members are extracted, each is checked
against the expected digest, and a finished folder is renamed into place
atomically. Once a folder is complete, later calls only re-hash it: offline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


class FetchError(Exception):
    """A fetch or verification failure, with a message meant for the user."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_folder(folder: Path, members: dict[str, str]) -> list[str]:
    """Return a list of problems (empty when every member is present and matches)."""
    problems = []
    for member, want in members.items():
        path = folder / Path(member).name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        got = sha256_file(path)
        if got != want:
            problems.append(f"{path}: SHA-256 {got}, expected {want}")
    return problems


def fetch_members(
    requirement: str,
    members: dict[str, str],
    dest: Path,
    python: str = sys.executable,
    extra_pip_args: tuple[str, ...] = (),
) -> Path:
    """Make `dest` hold the basename of every wheel member in `members`, verified.

    `members` maps a path inside the wheel to its expected SHA-256.
    """
    if dest.is_dir() and not verify_folder(dest, members):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        tmp = Path(tmp)
        cmd = [
            python, "-m", "pip", "download", "--no-deps", "--quiet",
            "--disable-pip-version-check", "--dest", str(tmp / "wheel"),
            *extra_pip_args, requirement,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise FetchError(
                f"`{' '.join(cmd)}` failed (exit {result.returncode}):\n{result.stderr.strip()}"
            )
        wheels = list((tmp / "wheel").glob("*.whl"))
        if len(wheels) != 1:
            raise FetchError(f"expected one wheel for {requirement}, pip left {wheels}")
        staging = tmp / "staging"
        staging.mkdir()
        with zipfile.ZipFile(wheels[0]) as wheel:
            names = set(wheel.namelist())
            for member in members:
                if member not in names:
                    raise FetchError(f"{wheels[0].name} has no member {member}")
                with wheel.open(member) as src, open(staging / Path(member).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        problems = verify_folder(staging, members)
        if problems:
            raise FetchError(
                f"{wheels[0].name} does not hold the expected files:\n  " + "\n  ".join(problems)
            )
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    return dest
