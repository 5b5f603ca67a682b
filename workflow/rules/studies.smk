# Studies beyond UCI-121 (config/studies/<name>.yaml, expanded to jobs by bench.studies): one
# `lossbench train` job per study job, then collect -> select -> analyze per model, like UCI.
# `studies` run with the default target; `gpu_studies` are targets of their own
# (`snakemake --cores N --resources gpu=1 mixing_table1`) and the report lists each as
# "not run: data not configured" until its sources are set (config `sources:` or env).

from bench.studies import load_study

STUDY_DIR = repo_path(config["study_dir"])
STUDIES = {n: load_study(n, STUDY_DIR) for n in config["studies"] + config["gpu_studies"]}
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
    return expand(f"{study_dir(name)}/analysis/{{arch}}/{{selection}}/table4.csv",
                  arch=study_archs(name), selection=selections)


rule study_train:
    output:
        summary=f"{STUDY_RUN}/summary.csv",
        epochs=f"{STUDY_RUN}/epochs.csv",
        config=f"{STUDY_RUN}/config.json",
    log:
        f"{LOGS}/{{results}}/{{study}}/{{job}}.log",
    benchmark:
        f"{STUDY_RUN}/benchmark.tsv"
    threads: lambda wildcards: STUDIES[wildcards.study].config.get("threads", 1)
    resources:
        gpu=lambda wildcards: int(STUDIES[wildcards.study].gpu),
        mem_mb=study_resource("mem_mb", 2000),
        runtime=study_resource("runtime", 60),
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        args=lambda wildcards: list(STUDY_JOBS[wildcards.study][wildcards.job].args),
        out=lambda wildcards, output: os.path.dirname(output.summary),
    # checkpoints under <out>/checkpoints survive a kill or a pre-emption: a rerun resumes
    shell:
        "lossbench train {params.args:q} --threads {threads} --no-progress"
        " --out {params.out:q} > {log:q} 2>&1"


def study_run_files(name):
    def inputs(wildcards):
        jobs = STUDY_JOBS[wildcards.study]
        return expand(f"{study_dir(wildcards.study)}/runs/{{job}}/{name}", job=list(jobs))

    return inputs


rule study_collect:
    input:
        summaries=study_run_files("summary.csv"),
        epochs=study_run_files("epochs.csv"),
        configs=study_run_files("config.json"),
        benchmarks=study_run_files("benchmark.tsv"),
    output:
        summary=f"{STUDY_ROOT}/summary.csv",
        scores=f"{STUDY_ROOT}/scores.csv",
        epochs=f"{STUDY_ROOT}/epochs.csv.gz",
        timings=f"{STUDY_ROOT}/timings.csv",
        settings=f"{STUDY_ROOT}/settings.json",
    log:
        f"{LOGS}/{{results}}/{{study}}/collect.log",
    params:
        out=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        "lossbench collect --out {params.out:q} --protocol {wildcards.study:q}"
        " --summaries {input.summaries:q} --epochs {input.epochs:q}"
        " --configs {input.configs:q} --benchmarks {input.benchmarks:q} > {log:q} 2>&1"


rule study_select:
    input:
        scores=f"{STUDY_ROOT}/scores.csv",
    output:
        scores=f"{STUDY_ANALYSIS}/scores.csv",
    log:
        f"{LOGS}/{{results}}/{{study}}/{{arch}}_{{selection}}_select.log",
    shell:
        "lossbench select {input.scores:q} --arch {wildcards.arch:q}"
        " --selection {wildcards.selection:q} --out {output.scores:q} > {log:q} 2>&1"


rule study_labels:
    output:
        labels=f"{STUDY_ROOT}/losses.csv",
    log:
        f"{LOGS}/{{results}}/{{study}}/labels.log",
    params:
        methods=lambda wildcards: study_methods(wildcards.study),
    shell:
        "lossbench losses --select {params.methods:q} --out {output.labels:q} > {log:q} 2>&1"


def study_methods(name):
    """The method names the tables carry: the loss id, with its study-wide parameters."""
    config = STUDIES[name].config
    out = []
    for loss in config["losses"]:
        params = config.get("loss_params", {}).get(loss, {})
        out.append(f"{loss}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
                   if params else loss)
    return out


rule study_analyze:
    input:
        scores=f"{STUDY_ANALYSIS}/scores.csv",
        labels=f"{STUDY_ROOT}/losses.csv",
    output:
        table4=f"{STUDY_ANALYSIS}/table4.csv",
        friedman=f"{STUDY_ANALYSIS}/friedman.json",
        summary=f"{STUDY_ANALYSIS}/summary.md",
    log:
        f"{LOGS}/{{results}}/{{study}}/{{arch}}_{{selection}}.log",
    params:
        baseline=lambda wildcards: STUDIES[wildcards.study].config.get("baseline", "ce"),
        average=lambda wildcards: ["--average-over", "seed"] if wildcards.selection == "mean"
        else [],
        out=lambda wildcards, output: os.path.dirname(output.table4),
    shell:
        "PYTHONHASHSEED=0 lossbench analyze {input.scores:q} --out {params.out:q}"
        " --dataset-col dataset --method-col loss --score-col test_acc_pct"
        " --baseline {params.baseline:q} {params.average:q} --drop-incomplete"
        " --labels {input.labels:q} > {log:q} 2>&1"


rule studies_table:
    output:
        f"{RESULTS}/studies.csv",
    log:
        f"{LOGS}/studies.log",
    params:
        run=config["studies"],
        targets=config["gpu_studies"],
        folder=STUDY_DIR,
        sources=[f"{k}={v}" for k, v in SOURCES.items()],
    shell:
        "lossbench studies --folder {params.folder:q} --run {params.run:q}"
        " --targets {params.targets:q} --sources {params.sources:q}"
        " --out {output:q} > {log:q} 2>&1"


for _name in STUDIES:

    rule:
        name:
            _name
        input:
            study_targets(_name),
