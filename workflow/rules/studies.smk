# Studies beyond UCI-121 (config/studies/<name>.yaml, expanded to jobs by bench.studies): one
# `lossbench train` job per study job, then collect -> select -> analyze per model, like UCI.
# `studies` run with the default target; `gpu_studies` are targets of their own
# (`snakemake --cores N --resources gpu=1 mixing_table1`) and the report lists each as
# "not run: data not configured" until its sources are set (config `sources:` or env).

checkpoint study_datasets:
    conda:
        "../envs/lossbench.yaml"
    input:
        data_inputs(),
    output:
        table=f"{STUDY_ROOT}/datasets.csv",
    log:
        f"{LOGS}/{{results}}/{{study}}/datasets.log",
    params:
        source=config["source"],
        splits_source=config["splits_source"],
        selection="all",
        max_samples=lambda wildcards: STUDIES[wildcards.study].max_samples or 0,
    script:
        "../scripts/check_datasets.py"


rule study_train:
    conda:
        "../envs/lossbench.yaml"
    output:
        summary=f"{STUDY_RUN}/summary.csv",
        epochs=f"{STUDY_RUN}/epochs.csv",
        config=f"{STUDY_RUN}/config.json",
    log:
        f"{LOGS}/{{results}}/{{study}}/{{job}}.log",
    benchmark:
        f"{STUDY_RUN}/benchmark.tsv"
    threads: lambda wildcards: STUDIES[wildcards.study].config.get("threads", 1)
    priority: study_priority
    resources:
        gpu=lambda wildcards: int(STUDIES[wildcards.study].gpu),
        mem_mb=study_resource("mem_mb", 2000),
        runtime=study_resource("runtime", 60),
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        args=lambda wildcards: list(STUDY_JOBS[wildcards.study][wildcards.job].args),
        data=study_data_args,
        out=lambda wildcards, output: os.path.dirname(output.summary),
    # checkpoints under <out>/checkpoints survive a kill or a pre-emption: a rerun resumes
    shell:
        "lossbench train {params.args:q} {params.data} --threads {threads} --no-progress"
        " --out {params.out:q} > {log:q} 2>&1"


rule study_collect:
    conda:
        "../envs/lossbench.yaml"
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
        # a study's `epoch_metrics:` keeps only those per-epoch columns (noise_uci: 86k runs)
        metrics=lambda wildcards: STUDIES[wildcards.study].config.get("epoch_metrics", []),
    shell:
        "lossbench collect --out {params.out:q} --protocol {wildcards.study:q}"
        " --epoch-metrics {params.metrics:q}"
        " --summaries {input.summaries:q} --epochs {input.epochs:q}"
        " --configs {input.configs:q} --benchmarks {input.benchmarks:q} > {log:q} 2>&1"


rule study_select:
    conda:
        "../envs/lossbench.yaml"
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
    conda:
        "../envs/lossbench.yaml"
    output:
        labels=f"{STUDY_ROOT}/losses.csv",
    log:
        f"{LOGS}/{{results}}/{{study}}/labels.log",
    params:
        methods=lambda wildcards: study_methods(wildcards.study),
    shell:
        "lossbench losses --select {params.methods:q} --out {output.labels:q} > {log:q} 2>&1"


rule study_analyze:
    conda:
        "../envs/lossbench.yaml"
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
        score=lambda wildcards: STUDIES[wildcards.study].score_col,
        average=lambda wildcards: ["--average-over", "seed"] if wildcards.selection == "mean"
        else [],
        out=lambda wildcards, output: os.path.dirname(output.table4),
    shell:
        f"{STUDY_ANALYZE} > {{log:q}} 2>&1"


rule study_analyze_groups:  # a study with `group_by:` (noise level): one analysis per group
    conda:
        "../envs/lossbench.yaml"
    input:
        scores=f"{STUDY_ANALYSIS}/scores.csv",
        labels=f"{STUDY_ROOT}/losses.csv",
    output:
        groups=f"{STUDY_ANALYSIS}/groups.csv",
    log:
        f"{LOGS}/{{results}}/{{study}}/{{arch}}_{{selection}}.log",
    params:
        baseline=lambda wildcards: STUDIES[wildcards.study].config.get("baseline", "ce"),
        average=lambda wildcards: ["--average-over", "seed"] if wildcards.selection == "mean"
        else [],
        out=lambda wildcards, output: os.path.dirname(output.groups),
        group_by=lambda wildcards: ",".join(STUDIES[wildcards.study].config["group_by"]),
        score=lambda wildcards: STUDIES[wildcards.study].score_col,
    shell:
        f"{STUDY_ANALYZE} --group-by {{params.group_by:q}} > {{log:q}} 2>&1"


rule study_analyze_metrics:  # a study's `metrics:` (top-k, close-enough): one analysis each
    conda:
        "../envs/lossbench.yaml"
    input:
        scores=f"{STUDY_ROOT}/scores.csv",
        labels=f"{STUDY_ROOT}/losses.csv",
    output:
        long=f"{STUDY_ANALYSIS}/metrics/scores.csv",
        groups=f"{STUDY_ANALYSIS}/metrics/groups.csv",
    log:
        f"{LOGS}/{{results}}/{{study}}/{{arch}}_{{selection}}_metrics.log",
    params:
        metrics=lambda wildcards: ",".join(STUDIES[wildcards.study].ranked_metrics),
        baseline=lambda wildcards: STUDIES[wildcards.study].config.get("baseline", "ce"),
        average=lambda wildcards: ["--average-over", "seed"] if wildcards.selection == "mean"
        else [],
        out=lambda wildcards, output: os.path.dirname(output.groups),
    shell:
        "lossbench select {input.scores:q} --arch {wildcards.arch:q}"
        " --selection {wildcards.selection:q} --metrics {params.metrics:q}"
        " --out {output.long:q} > {log:q} 2>&1 && "
        + study_analyze("{output.long:q}", "value")
        + " --group-by metric >> {log:q} 2>&1"


rule study_noise_curves:  # `figures: [noise_curves]`: accuracy and rank vs noise rate per arch
    conda:
        "../envs/lossbench.yaml"
    input:
        scores=f"{STUDY_ROOT}/scores.csv",
        labels=f"{STUDY_ROOT}/losses.csv",
    output:
        table=f"{STUDY_ROOT}/figures/{{arch}}/noise_curves.csv",
        png=f"{STUDY_ROOT}/figures/{{arch}}/noise_curves_{{arch}}.png",
        svg=f"{STUDY_ROOT}/figures/{{arch}}/noise_curves_{{arch}}.svg",
    log:
        f"{LOGS}/{{results}}/{{study}}/noise_curves_{{arch}}.log",
    params:
        out=lambda wildcards, output: os.path.dirname(output.table),
    shell:
        "lossbench noise-curves {input.scores:q} --archs {wildcards.arch:q}"
        " --labels {input.labels:q} --out-dir {params.out:q} > {log:q} 2>&1"


rule study_q_sweep:  # `figures: [q_sweep]`: test accuracy per epoch for Lq's q (GCE Fig. 2)
    conda:
        "../envs/lossbench.yaml"
    input:
        epochs=f"{STUDY_ROOT}/epochs.csv.gz",
        summary=f"{STUDY_ROOT}/summary.csv",
    output:
        table=f"{STUDY_ROOT}/figures/{{arch}}/q_sweep.csv",
        png=f"{STUDY_ROOT}/figures/{{arch}}/q_sweep_{{arch}}.png",
        svg=f"{STUDY_ROOT}/figures/{{arch}}/q_sweep_{{arch}}.svg",
    log:
        f"{LOGS}/{{results}}/{{study}}/q_sweep_{{arch}}.log",
    params:
        out=lambda wildcards, output: os.path.dirname(output.table),
    shell:
        "lossbench q-sweep --epochs {input.epochs:q} --summary {input.summary:q}"
        " --arch {wildcards.arch:q} --out-dir {params.out:q} > {log:q} 2>&1"


rule study_two_scale_curves:  # `figures: [two_scale_curves]`: the two-scale paper's Figs. 9, 4-6
    conda:
        "../envs/lossbench.yaml"
    # iterations.csv and predictions/*-hist.csv are side outputs of study_train (eval_every,
    # save_predictions_at), read beside the summaries as study_transitions does; collect
    # leaves them alone
    input:
        summaries=study_run_files("summary.csv"),
        labels=f"{STUDY_ROOT}/losses.csv",
    output:
        curves=f"{STUDY_ROOT}/figures/{{arch}}/two_scale_curves.csv",
        png=f"{STUDY_ROOT}/figures/{{arch}}/two_scale_curves_{{arch}}.png",
        svg=f"{STUDY_ROOT}/figures/{{arch}}/two_scale_curves_{{arch}}.svg",
        hist=f"{STUDY_ROOT}/figures/{{arch}}/two_scale_hist.csv",
        hist_png=f"{STUDY_ROOT}/figures/{{arch}}/two_scale_hist_{{arch}}.png",
        hist_svg=f"{STUDY_ROOT}/figures/{{arch}}/two_scale_hist_{{arch}}.svg",
    log:
        f"{LOGS}/{{results}}/{{study}}/two_scale_curves_{{arch}}.log",
    params:
        jobs=lambda wildcards, input: [os.path.dirname(s) for s in input.summaries],
        out=lambda wildcards, output: os.path.dirname(output.curves),
    shell:
        "lossbench two-scale-curves {params.jobs:q} --arch {wildcards.arch:q}"
        " --labels {input.labels:q} --out-dir {params.out:q} > {log:q} 2>&1"


rule study_transitions:  # a study whose jobs record forward's T-hat (Study.records_t_hat)
    conda:
        "../envs/lossbench.yaml"
    # transitions.csv is a side output of study_train (the same `lossbench train` writes it
    # with summary.csv); a rule's outputs cannot differ per study, so the summaries are the
    # declared inputs (the job finished) and the files are read beside them: a job without
    # one stops `lossbench transitions` with a line naming it
    input:
        summaries=study_run_files("summary.csv"),
    output:
        table=f"{STUDY_ROOT}/transitions.csv.gz",
        errors=f"{STUDY_ROOT}/transition_error.csv",
    log:
        f"{LOGS}/{{results}}/{{study}}/transitions.log",
    params:
        transitions=lambda wildcards, input: [
            os.path.join(os.path.dirname(s), "transitions.csv") for s in input.summaries],
        out=lambda wildcards, output: os.path.dirname(output.errors),
    shell:
        "lossbench transitions {params.transitions:q} --out-dir {params.out:q} > {log:q} 2>&1"


rule study_buckets:
    conda:
        "../envs/lossbench.yaml"
    input:
        summaries=study_run_files("summary.csv"),
    output:
        f"{STUDY_ROOT}/buckets.csv",
    log:
        f"{LOGS}/{{results}}/{{study}}/buckets.log",
    params:
        predictions=lambda wildcards, input: os.path.join(
            os.path.dirname(input.summaries[0]), "predictions"),
        early=lambda wildcards: STUDIES[wildcards.study].config["buckets"]["early"],
        late=lambda wildcards: STUDIES[wildcards.study].config["buckets"]["late"],
        threshold=lambda wildcards: STUDIES[wildcards.study].config["buckets"]["threshold"],
    shell:
        "lossbench buckets --predictions-dir {params.predictions:q} --early {params.early}"
        " --late {params.late} --threshold {params.threshold} --out {output:q} > {log:q} 2>&1"


rule studies_table:
    conda:
        "../envs/lossbench.yaml"
    output:
        f"{RESULTS}/studies.csv",
    log:
        f"{LOGS}/studies.log",
    params:
        run=config["studies"],
        targets=config["gpu_studies"],
        cpu_targets=config.get("cpu_targets", []),
        folder=STUDY_DIR,
        results=lambda wildcards, output: os.path.dirname(output[0]),  # the results folder
        sources=[f"{k}={v}" for k, v in SOURCES.items()],
    shell:
        "lossbench studies --folder {params.folder:q} --run {params.run:q}"
        " --targets {params.targets:q} --cpu-targets {params.cpu_targets:q}"
        " --sources {params.sources:q} --results-dir {params.results:q}"
        " --out {output:q} > {log:q} 2>&1"


for _name in STUDIES:

    rule:
        name:
            _name
        input:
            study_targets(_name),
