"""Study files expand to the jobs the workflow runs (bench.studies)."""

from pathlib import Path

import pytest

from bench.errors import LossbenchError
from bench.studies import load_study

STUDIES = Path(__file__).resolve().parents[2] / "config" / "studies"


def _flag(args, name):
    return args[args.index(name) + 1]


def test_table1_jobs_follow_the_papers_settings_per_dataset():
    jobs = load_study("mixing_table1", STUDIES).jobs()
    # CIFAR-100: 8 models x 4 losses x 4 seeds; CINIC-10: 8 x 4 x 3 seeds
    assert len(jobs) == 8 * 4 * 4 + 8 * 4 * 3
    by_id = {j.id: j.args for j in jobs}
    cifar = by_id["cifar100__resnet20__ce__0"]
    assert _flag(cifar, "--epochs") == "240" and _flag(cifar, "--milestones") == "120,160,200"
    assert _flag(cifar, "--augment") == "cifar_standard" and "--amp" in cifar
    cinic_small = by_id["cinic10__resnet20__ce__0"]
    cinic_big = by_id["cinic10__resnet18__ce__0"]
    assert _flag(cinic_small, "--epochs") == "90"
    # rotation only for the models over 1M parameters (the paper's rule)
    assert _flag(cinic_small, "--augment") == "cifar_standard"
    assert _flag(cinic_big, "--augment") == "cinic_standard"
    mix = by_id["cifar100__resnet20__ce_el_0to05__3"]
    assert "ce_el_0to05:rule=paper" in mix


def test_inner_axes_run_inside_one_job_and_variants_add_settings():
    small = load_study("images_small", STUDIES).jobs()
    assert [j.id for j in small][:2] == ["digits__lenet5", "digits__resnet20"]
    args = small[0].args
    assert _flag(args, "--seeds") == "0,1,2,3,4" and _flag(args, "--lrs") == "0.05,0.01"
    assert _flag(args, "--losses") == "ce,ce_el_0,ce_el_0_05,ce_el_0to05"
    table6 = {j.id: j.args for j in load_study("mixing_table6", STUDIES).jobs()}
    assert len(table6) == 2 * 3 * 4
    dropout = table6["cinic10__resnet34__ce__0__dropout"]
    assert _flag(dropout, "--model-param") == "dropout=0.2"
    assert _flag(table6["cinic10__resnet34__ce__0__erasing"], "--augment") == \
        "cifar_standard+erasing"


def test_data_status_names_the_variables_to_set(monkeypatch):
    study = load_study("mixing_table5", STUDIES)
    monkeypatch.delenv("LOSSBENCH_CIFAR100", raising=False)
    monkeypatch.delenv("LOSSBENCH_TINY_IMAGENET", raising=False)
    ok, reason = study.data_status()
    assert not ok and "LOSSBENCH_CIFAR100" in reason and "LOSSBENCH_TINY_IMAGENET" in reason
    ok, _ = study.data_status({"cifar100": "/x.tar.gz", "tiny_imagenet": "/y.zip"})
    assert ok
    assert load_study("images_small", STUDIES).data_status() == (True, "")


def test_bad_study_files_are_one_line(tmp_path):
    with pytest.raises(LossbenchError, match="cannot read"):
        load_study("nope", tmp_path)
    (tmp_path / "s.yaml").write_text("title: x\nresults: r\n")
    with pytest.raises(LossbenchError, match="missing key"):
        load_study("s", tmp_path)
    (tmp_path / "t.yaml").write_text(
        "title: x\nresults: r\ndatasets: [a]\nmodels: [m]\nlosses: [ce]\nseeds: [0]\n"
        "lrs: [0.1]\njob: [model]\ntrain: {}\n")
    with pytest.raises(LossbenchError, match="including dataset"):
        load_study("t", tmp_path)


def test_text_studies_expand_and_rank_their_declared_score():
    glue = load_study("mixing_glue", STUDIES)
    jobs = glue.jobs()
    assert len(jobs) == 7 * 4 * 4  # tasks x regimes x seeds, one BERT run per job
    args = {j.id: j.args for j in jobs}["glue_cola__bert__ce_el_0to05__3"]
    assert _flag(args, "--protocol") == "train_dev" and _flag(args, "--epochs") == "6"
    assert glue.score_col == "test_score_pct"  # CoLA MCC, MRPC/QQP F1, else accuracy
    table3 = load_study("mixing_table3", STUDIES)
    assert len(table3.jobs()) == 5 * 8 and table3.score_col == "test_acc_pct"
    # one dataset: the seed-averaged analysis would rank a single block, so blocks only
    assert table3.config["selections"] == ["blocks"]


def test_a_study_score_must_be_a_column_its_datasets_have(tmp_path):
    base = ("title: x\nresults: r\nmodels: [linear]\nlosses: [ce]\nseeds: [0]\n"
            "lrs: [0.1]\njob: [dataset]\ntrain: {}\n")
    (tmp_path / "typo.yaml").write_text(base + "datasets: [glue_rte]\nscore: test_f1\n")
    with pytest.raises(LossbenchError, match=r"typo.yaml: 'score' must be one of test_acc_pct, "
                                             r"test_score_pct; got 'test_f1'"):
        load_study("typo", tmp_path)
    (tmp_path / "uci.yaml").write_text(base + "datasets: [glue_rte, iris]\n"
                                       "score: test_score_pct\n")
    with pytest.raises(LossbenchError, match=r"but iris declare\(s\) none; use test_acc_pct"):
        load_study("uci", tmp_path)
    (tmp_path / "ok.yaml").write_text(base + "datasets: [glue_rte, clothing_reviews]\n"
                                      "score: test_score_pct\n")
    assert load_study("ok", tmp_path).score_col == "test_score_pct"


def test_collection_study_ranges_over_the_collection_and_keeps_available_jobs():
    from bench.data import names

    study = load_study("noise_uci", STUDIES)
    assert study.collection == "uci121" and study.datasets == names()
    jobs = study.jobs()
    assert len(jobs) == 2 * len(names())
    kept = study.jobs(datasets=["iris", "wine"])
    assert [j.id for j in kept] == ["iris__linear", "iris__mlp", "wine__linear", "wine__mlp"]
    args = kept[0].args
    # variants reach the train command as written, commas inside parentheses included
    assert _flag(args, "--losses") == ",".join(study.config["losses"])
    assert "forward(T=true)" in study.config["losses"]
    assert _flag(args, "--noise").split(",")[0] == "none" and _flag(args, "--epochs") == "50"
    assert study.max_samples == 1000  # the checkpoint lists larger datasets as excluded


@pytest.mark.parametrize("datasets", ["{collection: uci121, max_samples: 0}",
                                      "{collection: uci121, max_samples: 1.5}",
                                      "{collection: uci121, biggest: 3}"])
def test_collection_caps_are_checked(tmp_path, datasets):
    (tmp_path / "s.yaml").write_text(
        f"title: x\nresults: r\ndatasets: {datasets}\nmodels: [linear]\nlosses: [ce]\n"
        "seeds: [0]\nlrs: [0.1]\njob: [dataset]\ntrain: {}\n")
    with pytest.raises(LossbenchError, match="datasets"):
        load_study("s", tmp_path)


def test_methods_are_written_as_the_result_tables_write_them(tmp_path):
    # the tables carry RunSpec.method: T=true -> T=True, study-wide parameters of the id added
    assert load_study("noise_uci", STUDIES).methods()[4] == "forward(T=True)"
    (tmp_path / "s.yaml").write_text(
        "title: x\nresults: r\ndatasets: [iris]\nmodels: [linear]\n"
        "losses: [ce, 'gce(q=0.5)', gce]\nloss_params: {gce: {k: 0.1}}\nseeds: [0]\n"
        "lrs: [0.1]\njob: [dataset]\ntrain: {}\n")
    study = load_study("s", tmp_path)
    assert study.methods() == ["ce", "gce(k=0.1, q=0.5)", "gce(k=0.1)"]
    args = study.jobs()[0].args
    # one --loss-param per loss id, even when two variants share it
    assert [a for a in args if a.startswith("gce:")] == ["gce:k=0.1"]


@pytest.mark.parametrize("value", ["{collection: nope}", "{collection: uci121, x: 1}", "[]",
                                   "iris"])
def test_bad_datasets_value_is_one_line(tmp_path, value):
    (tmp_path / "s.yaml").write_text(
        f"title: x\nresults: r\ndatasets: {value}\nmodels: [m]\nlosses: [ce]\nseeds: [0]\n"
        "lrs: [0.1]\njob: [dataset]\ntrain: {}\n")
    with pytest.raises(LossbenchError, match="'datasets' must be"):
        load_study("s", tmp_path)


def test_labels_of_variants_use_the_tables_method_names(tmp_path):
    # `lossbench losses --select` is the study_labels rule: the ids must be the ones the
    # result tables carry (forward(T=True)), and T=true (the run's own matrix) must not stop it
    import pandas as pd

    from bench.cli import main

    out = tmp_path / "losses.csv"
    assert main(["losses", "--select", "ce", "forward(T=true)", "gce(q=0.5)", "--out",
                 str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["method"]) == ["ce", "forward(T=True)", "gce(q=0.5)"]
    assert list(table["label"]) == ["CE", "Forward (T=True)", "GCE (q=0.5)"]
    assert main(["losses", "--select", "forward(T=3)"]) == 2  # not a matrix, not `true`


def test_unknown_figure_and_bad_group_by_are_one_line(tmp_path):
    base = ("title: x\nresults: r\ndatasets: [iris]\nmodels: [m]\nlosses: [ce]\nseeds: [0]\n"
            "lrs: [0.1]\njob: [dataset]\ntrain: {}\n")
    (tmp_path / "f.yaml").write_text(base + "figures: [noise_curvs]\n")
    with pytest.raises(LossbenchError, match="unknown figure.*noise_curvs.*known: noise_curves"):
        load_study("f", tmp_path)
    (tmp_path / "g.yaml").write_text(base + "group_by: noise_kind\n")
    with pytest.raises(LossbenchError, match="'group_by' must be a list"):
        load_study("g", tmp_path)


def test_q_sweep_study_runs_each_q_as_its_own_method():
    study = load_study("noise_qsweep", STUDIES)
    jobs = study.jobs()
    assert len(jobs) == len(study.datasets) and study.config["figures"] == ["q_sweep"]
    assert study.methods() == ["ce", "gce(q=0.25)", "gce(q=0.5)", "gce(q=0.7)", "gce(q=0.8)"]
    assert _flag(jobs[0].args, "--noise") == "none,uniform:0.2,uniform:0.6"


def test_studies_table_lists_cpu_targets_as_not_run_with_their_command(tmp_path):
    """A CPU study outside the default run is reported with the command that runs it."""
    import pandas as pd

    from bench.cli import main

    out = tmp_path / "studies.csv"
    assert main(["studies", "--folder", str(STUDIES), "--run", "images_small",
                 "--cpu-targets", "noise_qsweep", "--out", str(out)]) == 0
    rows = pd.read_csv(out).set_index("name")
    assert rows.loc["images_small", "status"] == "run"
    assert rows.loc["noise_qsweep", "status"] == "not run"
    assert "snakemake --cores N noise_qsweep" in rows.loc["noise_qsweep", "reason"]


@pytest.mark.parametrize(("name", "expected"), [
    ("noise_uci", True),  # forward and CE in one stacked job per dataset x model
    ("noise_smoke", False),  # forward with the true T only
    ("noise_images_small", False),  # one loss per job, torch trainer
    ("gce_table1", False), ("gce_table2", False),  # GPU, torch trainer
])
def test_studies_that_record_forwards_t_hat(name, expected):
    assert load_study(name, STUDIES).records_t_hat() is expected


@pytest.mark.parametrize(("change", "expected"), [
    ("", True),
    ("losses: [ce, 'forward(T=true)']\n", False),  # no T-hat to estimate
    ("losses: [mae, forward]\n", False),  # no CE reference in the job
    ("job: [dataset, loss]\n", False),  # CE and forward in different jobs
    ("gpu: true\n", False),
    ("train: {epochs: 2, trainer: torch}\n", False),
    ("train: {epochs: 2, weight_decay: 0.0005}\n", False),  # the stack has no weight decay
    ("train: {epochs: 2, weight_decay: 0.0, schedule: constant}\n", True),  # its defaults
    ("per_dataset: {iris: {augment: normalize}}\n", False),  # one dataset's jobs go per model
])
def test_records_t_hat_follows_what_the_stacked_engine_trains(tmp_path, change, expected):
    base = {"title": "x", "results": "r", "datasets": "[iris, wine]", "models": "[linear]",
            "losses": "[ce, forward]", "seeds": "[0]", "lrs": "[0.1]", "job": "[dataset]",
            "train": "{epochs: 2}"}
    base.update(dict(line.split(": ", 1) for line in change.splitlines()))
    (tmp_path / "s.yaml").write_text("".join(f"{k}: {v}\n" for k, v in base.items()))
    assert load_study("s", tmp_path).records_t_hat() is expected
