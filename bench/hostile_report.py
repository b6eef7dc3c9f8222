"""Every hostile input through every entry point it applies to, as a Markdown table for the README.

The inputs and the entry points are tests/hostile.py's (the same ones tests/test_hostile.py
asserts on): broken and disguised pictures through the library and the two pages with an upload;
pickles, junk and hand-made files posing as checkpoints through the loader, `python -m vaeviz
eval` and `list`, the sidebar and the Model zoo; NaN, infinite and negative parameters through
the configs, `train` and the Trainer's β sweep; escaping names through the zoo's Save as; bad
`--out` paths. Pages run under Streamlit's AppTest; the CLI's `main` runs in this process with
the command's arguments (`--processes` starts `python -m vaeviz` for each instead: the same code
and the same outcomes, a few seconds more each, under a 3 GB memory limit). Each run happens in a fresh
sandbox that stands in for the user folder, the temporary folder and the working directory, so a
file written anywhere there is counted. Prints one row per (input, entry point) and a summary
line; exits 1 if anything crashed, misread a picture or wrote a file.

Usage: VAEVIZ_DATA_DIR=../shared/data .venv/bin/python -m bench.hostile_report [--processes]
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from tests.support import hostile

MESSAGE_CHARS = 90  # the table's message column is shortened to this


def shorten(text: str) -> str:
    """One line, no table-breaking bars, the sandbox's random folder name left out, at most MESSAGE_CHARS."""
    text = re.sub(r"/\S*?vaeviz-hostile-[^/\s]+", "…", " ".join(text.split())).replace("|", "/")
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def expected(outcome: hostile.Outcome, expect: str) -> bool:
    return outcome.status == expect and not outcome.written


def grouped(rows: list) -> list[tuple[str, list[tuple[str, hostile.Outcome]]]]:
    """One row per input and outcome: the entry points that did the same with it, in order."""
    groups: dict[tuple[str, str, bool], list[tuple[str, hostile.Outcome]]] = {}
    for what, entry_name, outcome, _ in rows:
        groups.setdefault((what, outcome.status, bool(outcome.written)), []).append((entry_name, outcome))
    return [(what, group) for (what, _, _), group in groups.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", action="store_true", help="run the CLI as `python -m vaeviz` processes")
    args = parser.parse_args()
    cli = hostile.cli_subprocess if args.processes else hostile.cli_in_process
    warnings.simplefilter("ignore")  # PIL's and numpy's warnings about the inputs are not the point here
    logging.getLogger("streamlit").setLevel(logging.ERROR)

    rows: list[tuple[str, str, hostile.Outcome, str]] = []  # (input, entry point, outcome, expected status)

    def sweep(entries: dict, items: list, describe, expect) -> None:
        for item in items:
            for entry_name, entry in entries.items():
                with tempfile.TemporaryDirectory(prefix="vaeviz-hostile-") as root:
                    outcome = entry(item, hostile.Sandbox(Path(root)))
                if outcome is not None:  # None: the entry point does not take this input
                    rows.append((describe(item), entry_name, outcome, expect(item)))
                    print(f"  {describe(item)[:50]:<50} {entry_name[:32]:<32} {outcome.status}", file=sys.stderr)

    sweep(hostile.picture_entries(), hostile.images(), lambda i: f"picture: {i.what}", lambda i: i.expect)
    sweep(hostile.checkpoint_entries(cli), hostile.checkpoints(), lambda i: f"checkpoint: {i.what}", lambda i: i.expect)
    sweep(hostile.parameter_entries(cli), hostile.PARAMETERS, lambda p: f"parameter: `{p.flag} {p.text}`",
          lambda p: hostile.REFUSED)
    names = dict(hostile.SAVE_NAMES)
    sweep(hostile.name_entries(), list(names), lambda n: f"save name: {names[n]} ({n[:24]!r})", lambda n: hostile.REFUSED)
    with tempfile.TemporaryDirectory(prefix="vaeviz-hostile-") as root:
        outs = hostile.out_paths(Path(root) / "out")
        whats = {path: what for path, what, _ in outs}
        sweep({"python -m vaeviz train --out": hostile.out_entry(cli)}, list(whats),
              lambda p: f"`--out`: {whats[p]}", lambda p: hostile.REFUSED)

    print("| input | entry point | outcome | message shown (shortened) |")
    print("|---|---|---|---|")
    for what, group in grouped(rows):
        outcome = group[0][1]  # the first entry point's message (the library's, where it is one)
        status = outcome.status + (f", wrote {len(outcome.written)} file(s)" if outcome.written else "")
        entries = "; ".join(name for name, _ in group)
        print(f"| {what} | {entries} | {status} | {shorten(outcome.message)} |")
    refused = sum(o.status == hostile.REFUSED for _, _, o, _ in rows)
    handled = sum(o.status == hostile.HANDLED for _, _, o, _ in rows)
    crashed = sum(o.status == hostile.CRASHED for _, _, o, _ in rows)
    written = sum(bool(o.written) for _, _, o, _ in rows)
    unexpected = sum(not expected(o, e) for _, _, o, e in rows)
    inputs = len({what for what, *_ in rows})
    print(f"\n{inputs} inputs x the entry points each applies to: {len(rows)} tried, {refused} refused with a message, "
          f"{handled} handled, {crashed} crashes, {written} files written; {unexpected} not as expected.")
    return 1 if crashed or written or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
