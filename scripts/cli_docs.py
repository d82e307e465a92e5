"""Write docs/cli.md from the commands' own ``--help`` output (``python scripts/cli_docs.py``).

tests/test_docs.py checks that the committed page equals this output, so a new or changed flag
cannot leave the reference behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys

#: Commands after ``goalax train AGENT`` (one per registered agent, in registry order), in
#: page order, as argv after ``goalax``.
OTHER_COMMANDS = (("eval",), ("render",), ("plot",), ("sweep",), ("bench",), ("envs",))


def commands() -> list[tuple[str, ...]]:
    """Every documented command: a new agent's registry line is all it takes to appear."""
    from goalax import agents

    return [("train", name) for name in agents.names()] + list(OTHER_COMMANDS)


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
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main([*argv, "--help"])
        except SystemExit as exit_:  # tyro's --help exits
            code = exit_.code or 0
    if code != 0:
        raise RuntimeError(f"goalax {' '.join(argv)} --help exited {code}")
    lines = [_unboxed(line) for line in out.getvalue().splitlines()]
    return "\n".join(line for line in lines if line.strip())


def _unboxed(line: str) -> str:
    """A help line without tyro's box drawing (the page is plain text): group titles keep
    their name, rules go, the side bars of a box go, indentation stays."""
    line = line.rstrip()
    title = re.fullmatch(r"[╭╰]─+ ?(.*?) ?─*[╮╯]", line)
    if title:
        return title.group(1)
    if line.startswith("│"):
        line = line[1:].rstrip().removesuffix("│").rstrip()
    if set(line.strip()) <= set("─-"):
        return ""
    return line


def page() -> str:
    """The whole of docs/cli.md."""
    sections = [HEADER]
    for argv in commands():
        sections.append(f"## goalax {' '.join(argv)}\n\n```\n{help_text(argv)}\n```\n")
    return "\n".join(sections)


if __name__ == "__main__":
    text = page()
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "cli.md")
    with open(path, "w") as f:
        f.write(text)
    sys.exit(0)
