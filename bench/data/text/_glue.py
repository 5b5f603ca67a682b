"""GLUE tasks from the official TSV files or a saved Hugging Face ``DatasetDict``.

Two layouts of one task folder are read:

- TSV, as GLUE's ``download_glue_data.py`` writes them (``CoLA/``, ``SST-2/``, ...): ``train.tsv``
  and ``dev.tsv`` (MNLI: ``dev_matched.tsv``), tab-separated, no quoting (read as transformers'
  GLUE processors read them: split on tabs, ``utf-8-sig`` for MRPC's byte-order mark).
- ``datasets``' ``save_to_disk`` of ``load_dataset("glue", task)`` (``dataset_dict.json``; splits
  ``train`` and ``validation``, MNLI ``validation_matched``), opened with ``load_from_disk``.

Labels take the order of the Hugging Face ``ClassLabel`` of each task, so both layouts give the
same ``y``. A row with an empty text field or too few fields (QQP has a few malformed lines,
which transformers' processor skips too) is dropped and counted per split; a label outside the
task's set is an error naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import LossbenchError


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task: where its columns are in either layout, its labels and official metric.

    ``text_columns`` / ``label_column``: TSV header names (CoLA has no header: field indexes);
    ``labels``: the TSV label strings in class order; ``metric``: GLUE's score for the task
    (Wang et al. 2018, Table 1; F1 for MRPC and QQP as BERT reports them, Devlin et al. 2018,
    Table 1), computed by ``bench.data.text.metrics``.
    """

    name: str
    folder: str
    text_columns: tuple[str, ...] | tuple[int, ...]
    label_column: str | int
    labels: tuple[str, ...]
    class_names: tuple[str, ...]
    metric: str
    hf_columns: tuple[str, ...]
    dev_file: str = "dev.tsv"
    hf_dev: str = "validation"

    @property
    def header(self) -> bool:
        return isinstance(self.label_column, str)


_BINARY = ("0", "1")
_NLI = ("entailment", "not_entailment")
#: the seven classification tasks of the mixing paper's Fig. 2 (see bench.data.text)
TASKS: dict[str, GlueTask] = {t.name: t for t in (
    GlueTask("cola", "CoLA", (3,), 1, _BINARY, ("unacceptable", "acceptable"), "mcc",
             ("sentence",)),
    GlueTask("sst2", "SST-2", ("sentence",), "label", _BINARY, ("negative", "positive"),
             "accuracy", ("sentence",)),
    GlueTask("mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", _BINARY,
             ("not_equivalent", "equivalent"), "f1", ("sentence1", "sentence2")),
    GlueTask("qqp", "QQP", ("question1", "question2"), "is_duplicate", _BINARY,
             ("not_duplicate", "duplicate"), "f1", ("question1", "question2")),
    GlueTask("mnli", "MNLI", ("sentence1", "sentence2"), "gold_label",
             ("entailment", "neutral", "contradiction"),
             ("entailment", "neutral", "contradiction"), "accuracy", ("premise", "hypothesis"),
             dev_file="dev_matched.tsv", hf_dev="validation_matched"),
    GlueTask("qnli", "QNLI", ("question", "sentence"), "label", _NLI, _NLI, "accuracy",
             ("question", "sentence")),
    GlueTask("rte", "RTE", ("sentence1", "sentence2"), "label", _NLI, _NLI, "accuracy",
             ("sentence1", "sentence2")),
)}

EXPECTED = ("a GLUE folder with one folder per task (download_glue_data.py's CoLA/ SST-2/ MRPC/ "
            "QQP/ MNLI/ QNLI/ RTE/ with train.tsv and dev.tsv, or datasets' save_to_disk "
            "folders cola/ sst2/ ...), or one task's folder")


@dataclass
class Part:
    """One split of a task: texts (one list per text column), labels, rows dropped."""

    texts: list[list[str]]
    y: np.ndarray
    n_dropped: int


def task_folder(root: Path, task: GlueTask) -> tuple[Path, str]:
    """(folder, "tsv" | "hf") of ``task`` under ``root`` (or ``root`` itself)."""
    for folder in (root / task.folder, root / task.name, root):
        if (folder / "dataset_dict.json").is_file():
            return folder, "hf"
        if (folder / "train.tsv").is_file():
            return folder, "tsv"
    raise LossbenchError(f"source {str(root)!r} of dataset 'glue_{task.name}': found neither "
                         f"{task.folder}/train.tsv nor {task.name}/dataset_dict.json in it "
                         f"(expected {EXPECTED})")


def tsv_files(folder: Path, task: GlueTask) -> tuple[Path, Path]:
    train, dev = folder / "train.tsv", folder / task.dev_file
    if not dev.is_file():
        raise LossbenchError(f"{folder}: no {task.dev_file} beside train.tsv (GLUE {task.folder}"
                             " evaluates on its dev set)")
    return train, dev


def read_tsv(path: Path, task: GlueTask) -> Part:
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    start = 0
    columns = [*task.text_columns, task.label_column]
    if task.header:
        names = lines[0].rstrip("\r").split("\t")
        missing = [c for c in columns if c not in names]
        if missing:
            raise LossbenchError(f"{path}: no column {missing[0]!r} in the header "
                                 f"({', '.join(names)}); expected GLUE's {task.folder} TSV")
        columns = [names.index(c) for c in columns]
        start = 1
    need = max(columns) + 1
    label_of = {s: k for k, s in enumerate(task.labels)}
    texts: list[list[str]] = [[] for _ in task.text_columns]
    y, dropped = [], 0
    for lineno, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) < need:
            dropped += 1
            continue
        label = fields[columns[-1]].strip()
        if label not in label_of:
            raise LossbenchError(f"{path}:{lineno}: label {label!r} is not one of "
                                 f"{', '.join(task.labels)} (GLUE {task.folder})")
        row = [fields[c] for c in columns[:-1]]
        if any(not t.strip() for t in row):
            dropped += 1
            continue
        for column, text in zip(texts, row, strict=True):
            column.append(text)
        y.append(label_of[label])
    return Part(texts, np.asarray(y, dtype=np.int64), dropped)


def read_hf(folder: Path, task: GlueTask) -> tuple[Part, Part]:
    """Train and dev parts of a ``save_to_disk`` folder (needs the ``datasets`` package)."""
    try:
        from datasets import load_from_disk
    except ImportError:
        raise LossbenchError(f"{folder}: a saved Hugging Face dataset needs the datasets "
                             "package (pip install datasets), or give GLUE's TSV folder"
                             ) from None
    saved = load_from_disk(str(folder))
    return tuple(_hf_part(folder, saved, split, task) for split in ("train", task.hf_dev))


def _hf_part(folder: Path, saved, split: str, task: GlueTask) -> Part:
    if split not in saved:
        raise LossbenchError(f"{folder}: no split {split!r} (splits: {', '.join(saved)}); "
                             f"expected load_dataset('glue', {task.name!r}).save_to_disk(...)")
    part = saved[split]
    missing = [c for c in (*task.hf_columns, "label") if c not in part.column_names]
    if missing:
        raise LossbenchError(f"{folder} [{split}]: no column {missing[0]!r} (columns: "
                             f"{', '.join(part.column_names)}); expected GLUE {task.name}")
    names = getattr(part.features["label"], "names", None)
    if names is not None and tuple(names) != task.class_names:
        raise LossbenchError(f"{folder} [{split}]: label names {list(names)} differ from GLUE "
                             f"{task.name}'s {list(task.class_names)}")
    y = np.asarray(list(part["label"]), dtype=np.int64)
    bad = np.flatnonzero((y < 0) | (y >= len(task.class_names)))
    if bad.size:
        raise LossbenchError(f"{folder} [{split}]: row {int(bad[0])}: label {int(y[bad[0]])} "
                             f"is not in 0..{len(task.class_names) - 1} (an unlabelled split?)")
    columns = [[str(t) for t in part[c]] for c in task.hf_columns]
    keep = np.array([all(c[i].strip() for c in columns) for i in range(len(y))], dtype=bool)
    texts = [[t for t, k in zip(c, keep, strict=True) if k] for c in columns]
    return Part(texts, y[keep], int((~keep).sum()))
