"""Write docs/cli.md from the commands' own ``--help`` output (``python scripts/cli_docs.py``).

tests/test_docs.py checks that the committed page equals this output, so a new or changed flag
cannot leave the reference behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

#: Commands documented, in page order, as argv after ``goalax``.
COMMANDS = (
    ("train", "crl"),
    ("train", "sac"),
    ("train", "td3"),
    ("train", "ppo"),
    ("eval",),
    ("render",),
    ("plot",),
    ("sweep",),
    ("bench",),
    ("envs",),
)

HEADER = """# CLI reference

Every command prints its full flag list with `--help`; this page is that output, written by
`python scripts/cli_docs.py` (a test checks it is current). Bad input always gets one line
`goalax: error: ...` on stderr and exit code 2.
"""

#: Terminal width the help is formatted for (tyro and argparse read ``COLUMNS``).
COLUMNS = "100"


def help_text(argv: tuple[str, ...]) -> str:
    """What ``goalax ARGV --help`` prints, formatted for a 100-column terminal."""
    from goalax.cli import main

    os.environ["COLUMNS"] = COLUMNS
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--help"])
    if code != 0:
        raise RuntimeError(f"goalax {' '.join(argv)} --help exited {code}")
    lines = [line.rstrip() for line in out.getvalue().strip("\n").splitlines()]
    return "\n".join(line for line in lines if line)


def page() -> str:
    """The whole of docs/cli.md."""
    sections = [HEADER]
    for argv in COMMANDS:
        sections.append(f"## goalax {' '.join(argv)}\n\n```\n{help_text(argv)}\n```\n")
    return "\n".join(sections)


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "cli.md")
    with open(path, "w") as f:
        f.write(page())
    sys.exit(0)
