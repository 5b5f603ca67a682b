# One job per protocol x dataset: for each arch, one stacked fit of all losses x lrs x seeds
# [x folds] (both archs in one process: torch is imported once, which measured ~2.5 s a job).

TRAIN_RESOURCES = config["resources"]["train"]


rule train:
    input:
        data_inputs(),
    output:
        summary=f"{RUN}/summary.csv",
        epochs=f"{RUN}/epochs.csv",
        config=f"{RUN}/config.json",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/train/{{protocol}}/{{dataset}}.log",
    benchmark:
        f"{RUN}/benchmark.tsv"
    threads: config["threads"]
    # the biggest datasets first, so both cores stay busy to the end (bench/schedule.py)
    priority: lambda wildcards: size_priority(f"{UCI}/datasets.csv", wildcards.dataset)
    resources:
        mem_mb=lambda wildcards, attempt: TRAIN_RESOURCES["mem_mb"] * attempt,
        runtime=lambda wildcards, attempt: TRAIN_RESOURCES["runtime"] * attempt,
        cpus_per_task=lambda wildcards, threads: threads,
    params:
        archs=csv_list(config["archs"]),
        losses=csv_list(config["losses"]),
        lrs=csv_list(config["lrs"]),
        seeds=csv_list(config["seeds"]),
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        data=source_args(),
        out=lambda wildcards, output: os.path.dirname(output.summary),
    # every path quoted (:q): a results_dir or source with spaces must not split a word
    shell:
        "lossbench train --dataset {wildcards.dataset:q} --model {params.archs:q}"
        " --losses {params.losses:q} --lrs {params.lrs} --seeds {params.seeds}"
        " --epochs {params.epochs} --batch-size {params.batch_size}"
        " --protocol {wildcards.protocol:q} --threads {threads} {params.data}"
        " --no-progress --out {params.out:q} > {log:q} 2>&1"
