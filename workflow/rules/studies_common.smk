# Study globals, wildcard constraints and input functions (rules in studies.smk).

from bench.data import dataset_family
from bench.studies import load_study

STUDY_DIR = repo_path(config["study_dir"])
STUDIES = {n: load_study(n, STUDY_DIR)
           for n in config["studies"] + config["gpu_studies"] + config.get("cpu_targets", [])}
SOURCES = {k: str(v) for k, v in (config.get("sources") or {}).items() if v}
STUDY_JOBS = {n: {j.id: j for j in s.jobs(SOURCES)} for n, s in STUDIES.items()}
STUDY_ROOT = f"{RESULTS}/{{results}}/{{study}}"
STUDY_RUN = f"{STUDY_ROOT}/runs/{{job}}"
STUDY_ANALYSIS = f"{STUDY_ROOT}/analysis/{{arch}}/{{selection}}"
# analysis selections: "mean" ranks datasets (seed-averaged), "blocks" ranks dataset x seed
STUDY_SELECTIONS = ["mean", "blocks"]


wildcard_constraints:
    study="|".join(STUDIES) or "no_study",
    results="|".join({s.config["results"] for s in STUDIES.values()}) or "no_study",
    job=r"[A-Za-z0-9_.-]+",


def study_analyze(scores, score):
    """The analyze command of a study's analysis rules (PYTHONHASHSEED: see analyze.smk):
    ``scores`` and ``score`` are shell-template fields of the rule."""
    return (
        f"PYTHONHASHSEED=0 lossbench analyze {scores} --out {{params.out:q}}"
        f" --dataset-col dataset --method-col loss --score-col {score}"
        " --baseline {params.baseline:q} {params.average:q} --drop-incomplete"
        " --labels {input.labels:q}"
    )


# study_analyze and study_analyze_groups rank the selected scores on the study's score
STUDY_ANALYZE = study_analyze("{input.scores:q}", "{params.score:q}")


def study_dir(name):
    return f"{RESULTS}/{STUDIES[name].config['results']}/{name}"


def study_resource(key, default):
    return lambda wildcards, attempt: STUDIES[wildcards.study].config.get(
        "resources", {}).get(key, default) * attempt


def study_archs(name):
    models = STUDIES[name].config["models"]
    flat = [m for ms in models.values() for m in ms] if isinstance(models, dict) else models
    return list(dict.fromkeys(flat))


def study_targets(name):
    """The analysed tables of a study (what its target and the report need)."""
    selections = STUDIES[name].config.get("selections", STUDY_SELECTIONS)
    # grouped studies (group_by: noise level) index their group folders in groups.csv
    table = "groups.csv" if STUDIES[name].config.get("group_by") else "table4.csv"
    out = expand(f"{study_dir(name)}/analysis/{{arch}}/{{selection}}/{table}",
                 arch=study_archs(name), selection=selections)
    if STUDIES[name].metrics:  # top-k, close-enough: one analysis per metric
        out += expand(f"{study_dir(name)}/analysis/{{arch}}/{{selection}}/metrics/groups.csv",
                      arch=study_archs(name), selection=selections)
    out.append(f"{study_dir(name)}/scores.csv")
    for figure in STUDIES[name].config.get("figures", []):  # bench.studies.FIGURES
        out += expand(f"{study_dir(name)}/figures/{{arch}}/{figure}_{{arch}}.png",
                      arch=study_archs(name))
    if STUDIES[name].collection is not None:  # which datasets were available (the report)
        out.append(f"{study_dir(name)}/datasets.csv")
    if "buckets" in STUDIES[name].config:  # the motivating example's table
        out.append(f"{study_dir(name)}/buckets.csv")
    if STUDIES[name].records_t_hat():  # forward's T-hat estimates and their error
        out += [f"{study_dir(name)}/{f}" for f in ("transitions.csv.gz", "transition_error.csv")]
    return out


def study_jobs(name):
    """The study's jobs; for a collection study (``datasets: {collection: uci121}``) those of
    the datasets its availability table (checkpoint study_datasets) marks ok."""
    jobs = STUDY_JOBS[name]
    if STUDIES[name].collection is None:
        return list(jobs)
    table = checkpoints.study_datasets.get(results=STUDIES[name].config["results"],
                                           study=name).output.table
    with open(table, newline="") as handle:
        ok = {row["name"] for row in csv.DictReader(handle) if row["status"] == "ok"}
    return [job_id for job_id, job in jobs.items() if job.dataset in ok]


def study_priority(wildcards):
    """The biggest datasets first (bench/schedule.py; sizes from the UCI availability table)."""
    return size_priority(f"{UCI}/datasets.csv",
                         STUDY_JOBS[wildcards.study][wildcards.job].dataset)


def study_run_files(name):
    def inputs(wildcards):
        jobs = study_jobs(wildcards.study)
        return expand(f"{study_dir(wildcards.study)}/runs/{{job}}/{name}", job=jobs)

    return inputs


def study_data_args(wildcards):
    """--source/--splits-source of the UCI config for a UCI job (else the job's own)."""
    job = STUDY_JOBS[wildcards.study][wildcards.job]
    return source_args() if dataset_family(job.dataset) == "uci" else ""


def study_methods(name):
    """The method names the tables carry: the loss id, with its study-wide parameters."""
    return STUDIES[name].methods()


def probe_report_inputs(wildcards=None):
    """The escaping-efficiency verdict (rules in mechanisms.smk) as report inputs, when
    mixing_mechanisms runs with the default target and its file has a `probe:` section: the
    report renders it, so `snakemake` regenerates it. Read at DAG time (an input function),
    when every rule file is included."""
    study = STUDIES.get("mixing_mechanisms")
    if "mixing_mechanisms" not in config["studies"] or not study.config.get("probe"):
        return []
    return list(rules.escaping_verdict.output)
