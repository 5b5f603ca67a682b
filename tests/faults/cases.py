"""The fault table: every bad input or injected fault the suite has met, with what must happen.

A bug that a user meets joins this table as one `Case` (lossbench issue 15). The runner
(`test_faults.py`) runs ``lossbench <command>`` in-process in a fresh `Workspace` and checks:
the exit code; the message fragment in stderr (and ``stdout`` in stdout); no traceback;
for exit 2 a single ``error:`` line that does not cite the cache; the sentinel beside the
output folder and every input file keep their hash; what an earlier run wrote survives;
a failed run adds nothing to the output folder; no temporary is left behind.

Fields: ``command`` is the argv after ``lossbench``, with ``{out}``, ``{scores}``, ``{source}``,
``{bad}``, ... filled from ``Workspace.places``; ``setup(ws)`` writes the input;
``fault(ws, monkeypatch)`` injects a fault just before the run; ``check(ws, out, err)`` adds
assertions of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import workspace as w

AnalyzeOut = ["--out", "{out}"]


@dataclass(frozen=True)
class Case:
    id: str
    command: list[str]
    message: str = ""
    exit: int = 2
    stdout: str = ""
    setup: Callable | None = None
    fault: Callable | None = None
    check: Callable | None = None
    skip: str | None = None


def _analyze(bad_key: str = "bad", *extra: str) -> list[str]:
    return ["analyze", "{" + bad_key + "}", *AnalyzeOut, *extra]


def _stale_temp(ws: w.Workspace) -> None:
    w.collection(ws)
    folder = ws.cache / "extracted" / ".0123456789abcdef~x~1~killed.tmp"  # another host's
    dead = ws.cache / "extracted" / f".fedcba9876543210~{_host()}~{2**22 + 7}~killed.tmp"
    for f in (folder, dead):
        (f / "data").mkdir(parents=True)
        (f / "data" / "half.dat").write_bytes(b"0" * 4096)
    os.utime(folder, (1, 1))
    ws.places["stale"] = f"{folder}|{dead}"


def _host() -> str:
    from bench import tempdirs

    return tempdirs.prefix("x").split("~")[1]


def _no_stale(ws: w.Workspace, out: str, err: str) -> None:
    assert not any(Path(p).exists() for p in ws.places["stale"].split("|"))


def _prime_cache(ws: w.Workspace) -> None:
    """Load the dataset once so the cache holds its extracted copy and parsed arrays."""
    from bench.data import load

    load("toy", ws.places["source"])  # the runner has pointed $LOSSBENCH_CACHE at ws.cache


def _damaged_npz(ws: w.Workspace) -> None:
    w.tarball(ws)
    _prime_cache(ws)
    for npz in (ws.cache / "parsed").glob("toy-*.npz"):
        npz.write_bytes(npz.read_bytes()[:100])


def _damaged_copy(ws: w.Workspace) -> None:
    w.tarball(ws)
    _prime_cache(ws)
    for npz in (ws.cache / "parsed").glob("toy-*.npz"):
        npz.unlink()
    (copy,) = (ws.cache / "extracted").iterdir()
    w.drop_last_lines(copy / "data" / "toy" / "toy_R.dat")


def _names_member(ws: w.Workspace, out: str, err: str) -> None:
    assert f"{ws.places['source']}:data/toy/toy_R.dat: expected 21 data rows" in out


def _one_dataset_ok(ws: w.Workspace, out: str, err: str) -> None:
    rows = [line.split() for line in out.splitlines() if line.startswith("toy ")]
    assert rows and rows[0][-1] == "ok", out


def _outputs_written(ws: w.Workspace, out: str, err: str) -> None:
    folder = ws.path("out_odd") if "out_odd" in ws.places else ws.out
    assert (folder / "summary.md").is_file() and (folder / "friedman.json").is_file()


CASES: list[Case] = [
    # ------------------------------------------------ lossbench analyze: score tables
    Case("analyze_nan_score", _analyze(), "column 'score' must hold finite numbers; row 5",
         setup=lambda ws: w.write_scores(ws, w.with_score(float("nan")))),
    Case("analyze_inf_score", _analyze(), "must hold finite numbers; row 5",
         setup=lambda ws: w.write_scores(ws, w.with_score("inf"))),
    Case("analyze_text_score", _analyze(), "has 'abc'",
         setup=lambda ws: w.write_scores(ws, w.with_score("abc"))),
    Case("analyze_empty_file", _analyze(), "is not a readable CSV",
         setup=lambda ws: w.write_bytes(ws, b"", "empty.csv")),
    Case("analyze_binary_file", _analyze(), "is not a readable CSV",
         setup=lambda ws: w.write_bytes(ws, bytes(range(256)) * 4, "binary.csv")),
    Case("analyze_header_only", _analyze(), "must hold at least 2 methods",
         setup=lambda ws: w.write_bytes(ws, b"dataset,method,score\n", "header.csv")),
    Case("analyze_duplicate_rows", _analyze(), "rows share a (dataset, method) cell",
         setup=lambda ws: w.write_scores(
             ws, w.pd.concat([w.scores_table(), w.scores_table().iloc[:1]]))),
    Case("analyze_incomplete_dataset", _analyze(), "lack a score for some method",
         setup=lambda ws: w.write_scores(ws, w.scores_table().iloc[1:])),
    Case("analyze_one_method", _analyze(), "must hold at least 2 methods to compare; got ['ce']",
         setup=lambda ws: w.write_scores(ws, w.scores_table(methods=("ce",)))),
    Case("analyze_one_dataset", _analyze(), "need at least 2 complete datasets",
         setup=lambda ws: w.write_scores(ws, w.scores_table(n=1))),
    Case("analyze_two_methods", _analyze(), exit=0,
         stdout="Friedman needs >= 3 methods: Wilcoxon signed-rank p = ",
         setup=lambda ws: w.write_scores(ws, w.scores_table(methods=("ce", "el"))),
         check=_outputs_written),
    # ------------------------------------------------ lossbench analyze: names and options
    Case("analyze_unknown_column", _analyze("scores", "--score-col", "acc"),
         "lacks column(s) ['acc']"),
    Case("analyze_unknown_group_column", _analyze("scores", "--group-by", "arch"),
         "lacks column(s) ['arch']"),
    Case("analyze_unknown_baseline", _analyze("scores", "--baseline", "zz"),
         "baseline 'zz' is not among the methods"),
    Case("analyze_missing_results", ["analyze", "{inputs}/absent.csv", *AnalyzeOut],
         "does not exist"),
    Case("analyze_results_is_folder", ["analyze", "{inputs}", *AnalyzeOut], "does not exist"),
    Case("analyze_missing_labels", _analyze("scores", "--labels", "{inputs}/labels.csv"),
         "labels file"),
    Case("analyze_bad_alpha", _analyze("scores", "--alpha", "2"), "alpha must be in (0, 1)"),
    Case("analyze_negative_rope", _analyze("scores", "--rope", "-1"), "rope must be a finite"),
    Case("analyze_unknown_option", _analyze("scores", "--colour", "red"),
         "unrecognized arguments: --colour red"),
    Case("unknown_command", ["frobnicate"], "invalid choice: 'frobnicate'"),
    # ------------------------------------------------ lossbench analyze: the output folder
    Case("analyze_out_is_a_file", ["analyze", "{scores}", "--out", "{scores}"],
         "is an existing file"),
    Case("analyze_out_below_a_file", ["analyze", "{scores}", "--out", "{scores}/sub"],
         "is a file, not a folder"),
    Case("analyze_out_read_only", _analyze("scores"), "is not writable",
         fault=lambda ws, mp: w.read_only(mp, ws.out)),
    Case("analyze_out_parent_read_only", ["analyze", "{scores}", "--out", "{out}/new/deeper"],
         "is not writable", fault=lambda ws, mp: w.read_only(mp, ws.out)),
    Case("analyze_out_read_only_chmod", _analyze("scores"), "is not writable",
         fault=lambda ws, mp: ws.out.chmod(0o555),
         skip="root ignores folder permissions" if os.geteuid() == 0 else None),
    Case("analyze_disk_full_mid_write", _analyze("scores"), "No space left on device",
         fault=lambda ws, mp: w.disk_full_after(mp, 3)),
    Case("analyze_disk_full_new_folder", ["analyze", "{scores}", "--out", "{out}/a/b"],
         "nothing was written", fault=lambda ws, mp: w.disk_full_after(mp, 0)),
    Case("analyze_paths_with_spaces_quotes_unicode",
         ["analyze", "{odd}", "--out", "{out_odd}"], exit=0,
         setup=lambda ws: (w.write_scores(ws, w.scores_table(), "my 'scores' \"v2\" é.csv",
                                          key="odd"),
                           ws.places.update(out_odd=str(ws.out / "run 1 'ü' \"x\""))),
         stdout="run 1 'ü'", check=_outputs_written),
    # ------------------------------------------------ lossbench datasets: sources
    Case("datasets_empty_folder", ["datasets", "--source", "{inputs}"], "no dataset found"),
    Case("datasets_folder_without_datasets", ["datasets", "--source", "{inputs}"],
         "no dataset found",
         setup=lambda ws: ((ws.inputs / "iris").mkdir(), (ws.inputs / "a.txt").write_text("x"))),
    Case("datasets_missing_source", ["datasets", "--source", "{inputs}/absent"],
         "no such file or folder"),
    Case("datasets_unknown_format", ["datasets", "--source", "{inputs}", "--format", "xml"],
         "invalid choice: 'xml'"),
    Case("datasets_source_with_spaces_quotes_unicode", ["datasets", "--source", "{source}"],
         exit=0, setup=lambda ws: w.collection(ws, folder="my 'UCI' \"data\" ñ"),
         check=_one_dataset_ok),
    Case("datasets_invalid_dataset_names_the_file", ["datasets", "--source", "{source}"],
         "1 dataset(s) invalid: toy", stdout="toy_R.dat: expected 21 data rows",
         setup=lambda ws: w.replace_in(
             w.collection(ws, folder="my data é")["folder"] / "toy.txt",
             "n_patrons1= 20", "n_patrons1= 21")),
    # ------------------------------------------------ lossbench datasets: tarballs
    Case("datasets_truncated_tarball", ["datasets", "--source", "{source}"],
         "truncated or corrupted tarball",
         setup=lambda ws: w.write_bytes(ws, w.Path(w.tarball(ws)).read_bytes()[:300],
                                        "cut.tar.gz", key="source")),
    Case("datasets_not_a_tarball", ["datasets", "--source", "{source}"],
         "truncated or corrupted tarball",
         setup=lambda ws: w.write_bytes(ws, b"name,value\n1,2\n", "data.tar.gz", key="source")),
    Case("datasets_empty_tarball", ["datasets", "--source", "{source}"],
         "truncated or corrupted tarball",
         setup=lambda ws: w.write_bytes(ws, b"", "empty.tar.gz", key="source")),
    Case("datasets_unsafe_tarball_member", ["datasets", "--source", "{source}"],
         "would be written outside the extraction folder", setup=w.unsafe_tarball),
    Case("datasets_invalid_member_names_the_tarball", ["datasets", "--source", "{source}"],
         "1 dataset(s) invalid: toy",
         setup=lambda ws: w.tarball(ws, edit=lambda f: w.replace_in(
             f / "toy.txt", "n_patrons1= 20", "n_patrons1= 21")),
         check=_names_member),
    # ------------------------------------------------ lossbench datasets: split files
    Case("datasets_truncated_split_file",
         ["datasets", "--source", "{source}", "--splits-source", "{splits}"],
         "1 dataset(s) invalid: toy", stdout="folds_py.dat: expected 20 rows x 4 columns",
         setup=lambda ws: w.splits(ws, w.collection(ws),
                                   edit=lambda f: w.drop_last_lines(f / "folds_py.dat", 1))),
    Case("datasets_split_labels_differ",
         ["datasets", "--source", "{source}", "--splits-source", "{splits}"],
         "1 dataset(s) invalid: toy", stdout="labels_py.dat: label",
         setup=lambda ws: w.splits(ws, w.collection(ws), edit=lambda f: (
             f / "labels_py.dat").write_text("".join(
                 f"{1 - int(v)}\n" for v in (f / "labels_py.dat").read_text().split())))),
    Case("datasets_corrupt_split_tarball",
         ["datasets", "--source", "{source}", "--splits-source", "{splits}"],
         "1 dataset(s) invalid: toy", stdout="splits.tar.gz: truncated or corrupted tarball",
         setup=lambda ws: (w.collection(ws),
                           w.write_bytes(ws, b"\x1f\x8b\x08garbage", "splits.tar.gz",
                                         key="splits"))),
    # ------------------------------------------------ the cache
    Case("cache_below_a_file", ["datasets", "--source", "{source}"], exit=0,
         message="warning: cache folder", check=_one_dataset_ok,
         setup=lambda ws: (w.collection(ws), ws.root.joinpath("inputs", "f").write_text("x")),
         fault=lambda ws, mp: mp.setenv("LOSSBENCH_CACHE", str(ws.inputs / "f" / "cache"))),
    Case("cache_read_only", ["datasets", "--source", "{source}"], exit=0,
         message="cannot be written", check=_one_dataset_ok,
         setup=lambda ws: (w.tarball(ws), ws.cache.mkdir()),
         fault=lambda ws, mp: w.read_only(mp, ws.cache)),
    Case("cache_damaged_npz", ["datasets", "--source", "{source}"], exit=0,
         message="is damaged", setup=_damaged_npz, check=_one_dataset_ok),
    Case("cache_damaged_extracted_copy", ["datasets", "--source", "{source}"], exit=0,
         message="re-extracting it", setup=_damaged_copy, check=_one_dataset_ok),
    Case("cache_stale_temporaries", ["datasets", "--source", "{source}"], exit=0,
         setup=_stale_temp, check=_no_stale),
]
