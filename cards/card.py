"""Dataset cards: the README.md of every corpus folder, rendered from templates, and read back.

The card is `DatasetCard.from_template` over `cards/templates/dataset_card.md`; the generator's
own section (its summary, format and ladder prose) is a Jinja template in its package, filled
from the structured facts it hands over (`cards.generator.CardFacts`). The counts and the
validation table come from the build's `Report`s, never typed by hand. The YAML header declares
the configs and, under `interp_zoo`, the generator's name, version, seed, command and options
(`CorpusMetadata`): the trainer and the zoo read those back with `read_corpus_metadata`, never
the markdown.

A card names its own repository `"path/to/this/folder"` (`HERE`) in its load snippets: right for
the folder, and `zoo publish --repo-id ORG/NAME` writes the repository id there instead
(`for_repo`). A generator's section shows a worked example, read back from the folder with
`example_record` (the first test record).
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from importlib import metadata as package_metadata
from importlib import resources
from pathlib import Path

import jinja2
import pyarrow.parquet as pq
from huggingface_hub import DatasetCard, DatasetCardData

from cards.corpus import Report
from cards.errors import IntegrityError

METADATA_KEY = "interp_zoo"
HERE = "path/to/this/folder"  # how a card names its own repository until `zoo publish` names it


@dataclass
class CorpusMetadata:
    """What made a corpus: recorded in its card's YAML, read back by the trainer and the zoo."""

    generator: str
    version: str
    seed: int
    command: str
    options: dict = field(default_factory=dict)
    configs: list[str] = field(default_factory=list)  # filled when read back


def dataset_card(facts, reports: list[Report], metadata: CorpusMetadata) -> str:
    """The full README.md text: YAML header (configs, metadata) and the body rendered from the templates."""
    recorded = {k: v for k, v in asdict(metadata).items() if k != "configs"}
    data = DatasetCardData(
        pretty_name=facts.pretty_name,
        license=facts.license,
        language=["en"],
        task_categories=facts.task_categories or None,
        size_categories=[size_category(sum(r.kept for r in reports))],
        tags=facts.tags or None,
        configs=[_config_entry(report, i == 0) for i, report in enumerate(reports)],
        **{METADATA_KEY: recorded},
    )
    section = jinja2.Template(facts.template or "", keep_trailing_newline=True).render(here=HERE, **facts.context)
    card = DatasetCard.from_template(
        data, template_str=_template("dataset_card.md"), facts=facts, reports=reports, metadata=metadata,
        generator_section=section, splits=list(dict.fromkeys(s for r in reports for s in r.sizes)),
        reasons=sorted({reason for r in reports for reason in r.rejected}),
        versions=", ".join(versions(["interp-zoo", *facts.packages])), here=HERE)
    return card.content.rstrip("\n") + "\n"


def read_corpus_metadata(folder: str | Path) -> CorpusMetadata:
    """The generator metadata and config names of a corpus folder's card; IntegrityError if it has none."""
    path = Path(folder) / "README.md"
    try:
        data = DatasetCard.load(path).data.to_dict()
    except (OSError, ValueError) as err:
        raise IntegrityError(f"{path}: cannot read the dataset card ({err})") from err
    recorded, configs = data.get(METADATA_KEY), data.get("configs") or []
    if not isinstance(recorded, dict) or not configs:
        raise IntegrityError(f"{path} does not record its generator and configs (not written by this project)")
    try:
        return CorpusMetadata(**recorded, configs=[c["config_name"] for c in configs])
    except (TypeError, KeyError) as err:
        raise IntegrityError(f"{path}: malformed {METADATA_KEY} metadata ({err})") from err


def for_repo(text: str, repo_id: str) -> str:
    """A card as published at `repo_id`: its load snippets name the repository instead of the folder."""
    return text.replace(f'"{HERE}"', f'"{repo_id}"')


def levels_name(levels: list) -> str:
    """'level 3' or 'levels 1, 2, 4', for a card's title."""
    return ("level " if len(levels) == 1 else "levels ") + ", ".join(map(str, levels))


def example_record(folder: str | Path, reports: list[Report]) -> dict | None:
    """The worked example of a card: the first record of the first config's test split (else of its
    validation or train split), read from the folder's parquet files, as
    `{"config": ..., "split": ..., "record": {...}}`; None for an empty corpus."""
    config = reports[0].name if reports else None
    for split in ("test", "validation", "train"):
        files = sorted((Path(folder) / "data" / str(config)).glob(f"{split}-*.parquet")) if config else []
        for file in files:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=1):
                if batch.num_rows:
                    return {"config": config, "split": split, "record": batch.to_pylist()[0]}
    return None


def default_config(meta: CorpusMetadata, wanted: str | None = None) -> str:
    return wanted or meta.configs[0]


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


def versions(packages: list[str]) -> list[str]:
    """`name version` of each installed package (or `name (not installed)`)."""
    found = []
    for name in packages:
        try:
            found.append(f"{name} {package_metadata.version(name)}")
        except package_metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return found


def markdown_table(header: list, rows: list[list]) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def _template(name: str) -> str:
    return (resources.files("cards") / "templates" / name).read_text(encoding="utf-8")


def package_template(package: str, name: str) -> str:
    """A generator's card template, shipped in its package."""
    return (resources.files(package) / name).read_text(encoding="utf-8")


def _config_entry(report: Report, default: bool) -> dict:
    entry = {
        "config_name": report.name,
        "data_files": [{"split": split, "path": f"data/{report.name}/{split}-{report.fingerprint}-*"
                        if report.fingerprint else f"data/{report.name}/{split}-*"} for split in report.sizes],
    }
    if default:
        entry["default"] = True
    return entry
