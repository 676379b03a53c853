"""Card rendering: the README.md of every dataset folder (and, later, of every checkpoint).

Cards are built with huggingface_hub's card classes and written from the artefact itself: the
counts and the validation report come from the build's `Report`s, never typed by hand.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from huggingface_hub import DatasetCard, DatasetCardData

from cards.corpus import Report


@dataclass
class DatasetDescription:
    """What a generator says about its corpus; the numbers come from the reports."""

    pretty_name: str
    summary: str
    config_notes: dict[str, str]
    fields: dict[str, str]
    checks: list[str]
    seed: int
    task_categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    leakage_group: str = "records sharing a normalised label"
    license: str = "cc-by-4.0"
    extra: str = ""


NEUTRAL_FLAGS = ("--overwrite",)
NEUTRAL_OPTIONS = ("--num-proc",)


def command_line(prog: str, argv: list[str] | None = None) -> str:
    """The command that was run, quoted for a shell, without the flags that cannot change the output
    (`--overwrite`, `--num-proc`), so the same corpus always carries the same card."""
    args = list(sys.argv[1:] if argv is None else argv)
    kept = []
    while args:
        arg = args.pop(0)
        if arg in NEUTRAL_OPTIONS and args:
            args.pop(0)
        elif arg not in NEUTRAL_FLAGS and not arg.startswith(tuple(f"{o}=" for o in NEUTRAL_OPTIONS)):
            kept.append(arg)
    return shlex.join([prog, *kept])


def read_dataset_card(folder: Path) -> tuple[list[dict], str]:
    """The configs and the generator command recorded in a corpus folder's card; ValueError if absent."""
    card = DatasetCard.load(Path(folder) / "README.md")
    configs = card.data.to_dict().get("configs") or []
    command = re.search(r"## Reproduce.*?```bash\n(.*?)\n```", card.text, flags=re.S)
    if not configs or not command:
        raise ValueError(f"{folder}/README.md does not list configs and the generator command")
    return configs, command[1]


def with_option(command: str, option: str, value: str) -> str:
    """`command` with the value of `option` replaced (e.g. a folder path by a name that is the same on
    every machine)."""
    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == option and i + 1 < len(words):
            words[i + 1] = value
        elif word.startswith(f"{option}="):
            words[i] = f"{option}={value}"
    return shlex.join(words)


def size_category(total: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if total < limit:
            return name
    return "10M<n<100M"


def dataset_card(description: DatasetDescription, reports: list[Report], command: str) -> str:
    """The full README.md text: YAML header declaring the configs, then the card body."""
    data = DatasetCardData(
        pretty_name=description.pretty_name,
        license=description.license,
        language=["en"],
        task_categories=description.task_categories or None,
        size_categories=[size_category(sum(r.kept for r in reports))],
        tags=description.tags or None,
        configs=[_config_entry(report, i == 0) for i, report in enumerate(reports)],
    )
    splits = list(dict.fromkeys(split for r in reports for split in r.sizes))
    body = "\n".join([
        f"# {description.pretty_name}",
        "",
        description.summary,
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("path/to/this/folder", "{reports[0].name}")',
        "```",
        "",
        "## Configurations and splits",
        "",
        _table(["config", "contents", *splits],
               [[r.name, description.config_notes.get(r.name, ""), *(r.sizes.get(s, 0) for s in splits)]
                for r in reports]),
        "",
        "## Fields",
        "",
        *[f"- `{name}`: {text}" for name, text in description.fields.items()],
        "",
        "## Validation",
        "",
        "Every record was checked before it was kept:",
        "",
        *[f"- {check}" for check in description.checks],
        "",
        "Candidates examined, rejected by reason, and dropped as duplicate prompts or to keep a leakage group "
        f"({description.leakage_group}) inside one split:",
        "",
        _report_table(reports),
        "",
        description.extra,
        "## Reproduce",
        "",
        f"Seed {description.seed}. Generated with:",
        "",
        "```bash",
        command,
        "```",
        "",
        "Same command, same package versions: byte-identical files, whatever `--num-proc` is. Versions: "
        + ", ".join(_versions(["interp-zoo", *description.packages])) + ".",
        "",
    ])
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}").content


def _config_entry(report: Report, default: bool) -> dict:
    entry = {
        "config_name": report.name,
        "data_files": [{"split": split, "path": f"data/{report.name}/{split}-{report.fingerprint}-*"
                        if report.fingerprint else f"data/{report.name}/{split}-*"} for split in report.sizes],
    }
    if default:
        entry["default"] = True
    return entry


def _report_table(reports: list[Report]) -> str:
    reasons = sorted({reason for r in reports for reason in r.rejected})
    header = ["config", "candidates", "kept", *[f"rejected: {reason}" for reason in reasons],
              "duplicate prompt", "group's split full"]
    rows = [[r.name, r.candidates, r.kept, *[r.rejected.get(reason, 0) for reason in reasons],
             r.duplicates, r.split_full] for r in reports]
    return _table(header, rows)


def _table(header: list, rows: list[list]) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def _versions(packages: list[str]) -> list[str]:
    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return found
