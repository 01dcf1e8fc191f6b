"""A benchmark's baseline: a detached git worktree of another revision, for running its code
side by side with this checkout's (``PYTHONPATH=<worktree>/src``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent


class UnknownRevision(ValueError):
    """The revision named is not one of this repository's."""


@contextmanager
def baseline_tree(rev: str, folder: Path, keep: bool = False) -> Iterator[tuple[Path, str]]:
    """A detached worktree of ``rev`` in ``folder``/baseline: (its path, the commit); removed
    on leaving unless ``keep``."""
    sha = subprocess.run(
        ["git", "-C", str(TOP), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if sha.returncode:
        raise UnknownRevision(f"--baseline {rev}: not a revision of this repository")
    commit = sha.stdout.strip()
    tree = folder / "baseline"
    subprocess.run(
        ["git", "-C", str(TOP), "worktree", "add", "--detach", "--quiet", str(tree), commit],
        check=True,
    )
    try:
        yield tree, commit
    finally:
        if not keep:
            subprocess.run(
                ["git", "-C", str(TOP), "worktree", "remove", "--force", str(tree)], check=False
            )
