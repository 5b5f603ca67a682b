"""Text loaders on generated files in the real formats: the Clothing Reviews CSV (vocabulary
from training rows only, dropped rows, truncation, errors), the seven GLUE tasks as official
TSV files and as a saved Hugging Face DatasetDict, the train_dev protocol, the GLUE metrics.

The file writers here are imported by test_text_models.py.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data import get_dataset, make_splits
from bench.data.text import GLUE_TASKS
from bench.data.text.metrics import score, score_predictions
from bench.errors import DatasetMissingError, LossbenchError

# -- generated files ------------------------------------------------------------------------------
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
POOLS = {1: ["awful", "ripped", "returned"], 2: ["poor", "itchy", "thin"],
         3: ["okay", "average", "plain"], 4: ["nice", "soft", "comfy"],
         5: ["perfect", "gorgeous", "love"]}
COMMON = ["the", "dress", "fit", "is", "and", "color", "fabric", "a", "top"]
TEST_ONLY = "zzzyzx"  # put (twice) into one review that the split sends to test


def review_text(rating: int, rng: np.random.Generator) -> str:
    words = [*rng.choice(POOLS[rating], 3), *rng.choice(COMMON, int(rng.integers(2, 9)))]
    return " ".join(rng.permutation(words)).capitalize() + "."


def write_reviews(path: Path, n: int = 120, seed: int = 0) -> pd.DataFrame:
    """The public CSV's layout: unnamed index column, its ten columns, a few rows without text,
    one multi-line quoted review with commas and quotes."""
    rng = np.random.default_rng(seed)
    rating = np.resize(np.arange(1, 6), n)
    text = [review_text(int(r), rng) for r in rating]
    text[3] = 'The "dress", well:\nit fits, love it'
    text[5] = None
    text[8] = "   "
    frame = pd.DataFrame({
        "Clothing ID": rng.integers(0, 1200, n), "Age": rng.integers(18, 90, n),
        "Title": ["Title"] * n, "Review Text": text, "Rating": rating,
        "Recommended IND": (rating > 3).astype(int),
        "Positive Feedback Count": rng.integers(0, 20, n), "Division Name": "General",
        "Department Name": "Tops", "Class Name": "Knits"})
    frame.to_csv(path)  # pandas writes the unnamed index column as the public file has it
    return frame


def write_vocab_txt(folder: Path, extra_words: list[str] = ()) -> Path:
    """A WordPiece vocab.txt + tokenizer_config.json: what a saved BERT tokenizer needs."""
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for pool in POOLS.values() for w in pool} | set(COMMON) | set(extra_words))
    (folder / "vocab.txt").write_text("\n".join([*SPECIALS, *words, "##s", "."]) + "\n")
    (folder / "tokenizer_config.json").write_text(
        '{"tokenizer_class": "BertTokenizer", "do_lower_case": true, "model_max_length": 512}')
    return folder


GLUE_WORDS = ["good", "bad", "film", "cat", "sat", "mat", "what", "who", "won", "not", "yes"]


def _sentence(rng: np.random.Generator, k: int = 4) -> str:
    return " ".join(rng.choice(GLUE_WORDS, k))


def write_glue(root: Path, n_train: int = 24, n_dev: int = 10, seed: int = 0) -> dict:
    """The seven tasks as download_glue_data.py writes them; returns {task: (train y, dev y)}."""
    rng = np.random.default_rng(seed)
    labels = {}
    for task in GLUE_TASKS.values():
        folder = root / task.folder
        folder.mkdir(parents=True)
        parts = {}
        for split, n in (("train", n_train), ("dev", n_dev)):
            y = np.resize(np.arange(len(task.labels)), n)
            rows = [_glue_row(task.name, split, i, task.labels[k], rng) for i, k in enumerate(y)]
            if task.name == "qqp" and split == "train":  # a malformed line: skipped, counted
                rows.insert(3, "777\t1\t2\tonly one question")
            header = _GLUE_HEADERS[task.name](split)
            text = "\n".join(([header] if header else []) + rows) + "\n"
            name = "train.tsv" if split == "train" else task.dev_file
            encoding = "utf-8-sig" if task.name == "mrpc" else "utf-8"  # MRPC's byte-order mark
            (folder / name).write_text(text, encoding=encoding)
            parts[split] = y
        labels[task.name] = (parts["train"], parts["dev"])
    return labels


_MNLI_COLS = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
              "sentence1_parse\tsentence2_parse\tsentence1\tsentence2")
_GLUE_HEADERS = {
    "cola": lambda split: None,
    "sst2": lambda split: "sentence\tlabel",
    "mrpc": lambda split: "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
    "qqp": lambda split: "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
    "mnli": lambda split: _MNLI_COLS + ("\tlabel1\tgold_label" if split == "train" else
                                        "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"),
    "qnli": lambda split: "index\tquestion\tsentence\tlabel",
    "rte": lambda split: "index\tsentence1\tsentence2\tlabel",
}


def _glue_row(task: str, split: str, i: int, label: str, rng) -> str:
    a, b = _sentence(rng), _sentence(rng, 3)
    if task == "cola":
        return f"gj04\t{label}\t\t{a}"
    if task == "sst2":
        return f"{a}\t{label}"
    if task == "mrpc":
        return f"{label}\t{i}\t{i + 1}\t{a}\t{b}"
    if task == "qqp":
        return f"{i}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\t{label}"
    if task == "mnli":
        votes = label if split == "train" else "\t".join([label] * 5)
        return f"{i}\t{i}\t{i}n\tfiction\t( x )\t( y )\t(S x)\t(S y)\t{a}\t{b}\t{votes}\t{label}"
    return f"{i}\t{a}\t{b}\t{label}"


# -- Clothing Reviews -----------------------------------------------------------------------------
@pytest.fixture()
def reviews(tmp_path) -> tuple[Path, pd.DataFrame]:
    path = tmp_path / "Womens Clothing E-Commerce Reviews.csv"
    return path, write_reviews(path)


def test_clothing_reads_the_public_layout(reviews, monkeypatch):
    path, frame = reviews
    monkeypatch.setenv("LOSSBENCH_CLOTHING_REVIEWS", str(path.parent))  # a folder holding it
    ds = get_dataset("clothing_reviews")
    kept = frame["Review Text"].fillna("").str.strip() != ""
    assert ds.family == "text" and ds.n_classes == 5 and ds.class_names == list("12345")
    assert ds.meta["n_rows"] == 120 and ds.meta["n_dropped_no_text"] == 2
    np.testing.assert_array_equal(ds.y, frame["Rating"][kept].to_numpy() - 1)
    assert ds.X.dtype == np.int64 and ds.input_shape == (128,)
    assert ds.meta["layout"] == "ids" and ds.meta["vocab"][:2] == ["<pad>", "<unk>"]
    # the multi-line quoted review (data row 3) is one row: its words in order, rare -> <unk>
    vocab = ds.meta["vocab"]
    row = ds.X[3]
    assert [vocab[i] for i in row[row != 0]][:4] == ["the", "dress", "<unk>", "it"]  # "well": once


def test_clothing_vocabulary_comes_from_training_rows_only(tmp_path):
    path = tmp_path / "reviews.csv"
    frame = write_reviews(path)
    ds = get_dataset("clothing_reviews", source=path)
    fit, val, test = ds.splits("random")[0]
    # the split is 64/16/20 and stratified
    assert (len(fit), len(val), len(test)) == (75, 19, 24)
    assert np.bincount(ds.y[test], minlength=5).min() >= 4
    # a word twice in one test review only: not in the vocabulary, encoded <unk>
    rows = np.flatnonzero(frame["Review Text"].fillna("").str.strip() != "")
    target = int(rows[test[0]])
    frame.loc[target, "Review Text"] = f"{TEST_ONLY} {TEST_ONLY} dress"
    frame.drop(columns=[]).to_csv(path, index=False)
    ds2 = get_dataset("clothing_reviews", source=path)
    assert TEST_ONLY not in ds2.meta["vocab"]
    assert list(ds2.X[test[0], :3]) == [1, 1, ds2.meta["vocab"].index("dress")]
    # the same word twice in one training review: in the vocabulary
    frame.loc[int(rows[fit[0]]), "Review Text"] = f"{TEST_ONLY} {TEST_ONLY}"
    frame.to_csv(path, index=False)
    assert TEST_ONLY in get_dataset("clothing_reviews", source=path).meta["vocab"]
    with pytest.raises(LossbenchError, match="no published test split"):
        make_splits(ds, "official")


def test_clothing_round_trip_and_truncation(reviews):
    path, frame = reviews
    ds = get_dataset("clothing_reviews", source=path, max_length=5, min_count=1)
    vocab = ds.meta["vocab"]
    texts = frame["Review Text"].fillna("").str.strip()
    texts = texts[texts != ""].tolist()
    longer = 0
    for x, text in zip(ds.X, texts, strict=True):
        words = text.lower().replace(".", " ").replace(",", " ").replace(":", " ") \
            .replace('"', " ").split()
        longer += len(words) > 5
        assert [vocab[i] for i in x[x != 0]] == words[:5]
    assert ds.input_shape == (5,) and ds.meta["n_truncated"] == longer > 0


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.drop(columns=["Review Text"]), "no column 'Review Text'"),
    (lambda f: f.assign(Rating=f["Rating"].replace(5, 6)), "Rating 6 is not one of"),
    (lambda f: f.assign(**{"Review Text": ""}), "is empty in all 120 rows"),
])
def test_clothing_errors_name_the_file(tmp_path, edit, message):
    path = tmp_path / "bad.csv"
    write_reviews(path)
    edit(pd.read_csv(path, index_col=0)).to_csv(path)
    with pytest.raises(LossbenchError, match=message) as err:
        get_dataset("clothing_reviews", source=path)
    assert str(path) in str(err.value)


def test_text_sources_missing_or_absent(tmp_path, monkeypatch):
    monkeypatch.delenv("LOSSBENCH_CLOTHING_REVIEWS", raising=False)
    monkeypatch.delenv("LOSSBENCH_GLUE", raising=False)
    with pytest.raises(DatasetMissingError, match="LOSSBENCH_CLOTHING_REVIEWS"):
        get_dataset("clothing_reviews")
    with pytest.raises(DatasetMissingError, match="LOSSBENCH_GLUE"):
        get_dataset("glue_rte")
    with pytest.raises(LossbenchError, match="no such file") as err:
        get_dataset("clothing_reviews", source=tmp_path / "nope.csv")
    assert not isinstance(err.value, DatasetMissingError)
    write_glue(tmp_path)
    monkeypatch.delenv("LOSSBENCH_BERT", raising=False)  # GLUE without BERT's tokenizer
    with pytest.raises(DatasetMissingError, match="LOSSBENCH_BERT"):
        get_dataset("glue_rte", source=tmp_path)
    with pytest.raises(LossbenchError, match="unknown option 'test_fraction'"):
        get_dataset("glue_rte", source=tmp_path, test_fraction=0.1)


# -- GLUE -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers", reason="GLUE encodings need transformers (the text "
                        "extra: pip install 'lossbench[text]')")
    return write_vocab_txt(tmp_path_factory.mktemp("bert"), GLUE_WORDS)


def test_glue_tsv_all_seven_tasks(tmp_path, tokenizer_dir, monkeypatch):
    from transformers import AutoTokenizer

    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    labels = write_glue(tmp_path / "glue")
    monkeypatch.setenv("LOSSBENCH_GLUE", str(tmp_path / "glue"))
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    assert sorted(GLUE_TASKS) == ["cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2"]
    for name, (y_train, y_dev) in labels.items():
        ds = get_dataset(f"glue_{name}", tokenizer=tokenizer_dir)
        task = GLUE_TASKS[name]
        assert ds.n_classes == (3 if name == "mnli" else 2), name
        assert ds.input_shape == (3, 64) and ds.meta["metric"] == task.metric
        np.testing.assert_array_equal(ds.y, np.concatenate([y_train, y_dev]), err_msg=name)
        np.testing.assert_array_equal(ds.test_idx, np.arange(24, 34))
        assert ds.meta["n_dropped_train"] == (1 if name == "qqp" else 0)
        # round trip: the dev rows decode to their TSV text; pairs get segment ids 1
        dev_file = tmp_path / "glue" / task.folder / task.dev_file
        first = dev_file.read_text(encoding="utf-8-sig").splitlines()[0 if name == "cola" else 1]
        fields = first.split("\t")
        want = [fields[c] if isinstance(c, int) else fields[_header(dev_file).index(c)]
                for c in task.text_columns]
        ids, types_, mask = ds.X[24]
        assert tok.decode(ids[mask == 1], skip_special_tokens=True) == " ".join(want), name
        assert types_.max() == (1 if len(want) == 2 else 0), name
    train, val, test = make_splits(ds, "train_dev")[0]
    np.testing.assert_array_equal(train, np.arange(24))
    np.testing.assert_array_equal(val, test)
    # the encoding is cached: a second load reads it (memory-mapped) and is equal
    again = get_dataset("glue_rte", tokenizer=tokenizer_dir)
    assert isinstance(again.X, np.memmap)
    np.testing.assert_array_equal(again.X, get_dataset("glue_rte", tokenizer=tokenizer_dir).X)


def _header(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8-sig").splitlines()[0].split("\t")


def test_glue_tsv_errors(tmp_path, tokenizer_dir, monkeypatch):
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    write_glue(tmp_path)
    dev = tmp_path / "RTE" / "dev.tsv"
    lines = dev.read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\tcontradiction"
    dev.write_text("\n".join(lines) + "\n")
    with pytest.raises(LossbenchError, match=r"dev.tsv:3: label 'contradiction' is not one of"):
        get_dataset("glue_rte", source=tmp_path, tokenizer=tokenizer_dir)
    sst = tmp_path / "SST-2" / "train.tsv"
    sst.write_text(sst.read_text().replace("sentence\tlabel", "text\tlabel", 1))
    with pytest.raises(LossbenchError, match="no column 'sentence' in the header"):
        get_dataset("glue_sst2", source=tmp_path, tokenizer=tokenizer_dir)
    with pytest.raises(LossbenchError, match="cannot load a tokenizer"):
        get_dataset("glue_cola", source=tmp_path, tokenizer=tmp_path)  # no vocabulary there
    (tmp_path / "CoLA").rename(tmp_path / "elsewhere")
    with pytest.raises(LossbenchError, match="found neither CoLA/train.tsv"):
        get_dataset("glue_cola", source=tmp_path, tokenizer=tokenizer_dir)


class _FakeSplit:
    """What load_from_disk gives per split: column_names, features, column access."""

    def __init__(self, columns: dict, names: list[str]) -> None:
        self.columns = columns
        self.column_names = list(columns)
        self.features = {"label": types.SimpleNamespace(names=names)}

    def __getitem__(self, column: str):
        return self.columns[column]


def test_glue_saved_datasetdict_equals_tsv(tmp_path, tokenizer_dir, monkeypatch):
    """A load_dataset('glue', 'rte').save_to_disk folder: same rows, same labels as the TSV.
    (``datasets`` is not a dependency; its ``load_from_disk`` is replaced by the splits it
    returns, so the column/label mapping is what is tested.)"""
    monkeypatch.setenv("LOSSBENCH_CACHE", str(tmp_path / "cache"))
    write_glue(tmp_path / "tsv")
    tsv = get_dataset("glue_rte", source=tmp_path / "tsv", tokenizer=tokenizer_dir)
    saved = {}
    for split, file in (("train", "train.tsv"), ("validation", "dev.tsv")):
        frame = pd.read_csv(tmp_path / "tsv" / "RTE" / file, sep="\t")
        saved[split] = _FakeSplit(
            {"sentence1": frame["sentence1"].tolist(), "sentence2": frame["sentence2"].tolist(),
             "label": frame["label"].map({"entailment": 0, "not_entailment": 1}).tolist(),
             "idx": frame["index"].tolist()}, ["entailment", "not_entailment"])
    folder = tmp_path / "hf" / "rte"
    folder.mkdir(parents=True)
    (folder / "dataset_dict.json").write_text('{"splits": ["train", "validation"]}')
    fake = types.ModuleType("datasets")
    fake.load_from_disk = lambda path: saved if Path(path) == folder else {}
    monkeypatch.setitem(sys.modules, "datasets", fake)
    hf = get_dataset("glue_rte", source=tmp_path / "hf", tokenizer=tokenizer_dir)
    assert hf.meta["format"] == "hf"
    np.testing.assert_array_equal(hf.X, tsv.X)
    np.testing.assert_array_equal(hf.y, tsv.y)
    np.testing.assert_array_equal(hf.test_idx, tsv.test_idx)
    saved["validation"].features["label"].names = ["not_entailment", "entailment"]
    (folder / "dataset_dict.json").write_text('{"splits": ["train", "validation"]} ')
    with pytest.raises(LossbenchError, match="label names"):
        get_dataset("glue_rte", source=tmp_path / "hf", tokenizer=tokenizer_dir)


# -- metrics --------------------------------------------------------------------------------------
def test_glue_metrics_by_hand(tmp_path):
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    p = np.array([1, 1, 0, 0, 0, 1, 1, 1])
    tp, fp, fn, tn = 3, 2, 1, 2
    assert score("accuracy", y, p) == pytest.approx(5 / 8)
    assert score("f1", y, p) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    mcc = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert score("mcc", y, p) == pytest.approx(mcc)
    path = tmp_path / "run-epoch6.csv.gz"
    pd.DataFrame({"index": np.arange(8), "y": y, "p_y": 0.5, "argmax": p,
                  "correct": (y == p).astype(int)}).to_csv(path, index=False)
    assert score_predictions(path, "mcc") == pytest.approx(mcc)
    with pytest.raises(LossbenchError, match="Unknown metric 'auc'"):
        score("auc", y, p)
