# Which datasets the source holds (a checkpoint: train jobs are created from its table) and the
# display labels of the configured losses.


checkpoint datasets:
    input:
        data_inputs(),
    output:
        table=f"{UCI}/datasets.csv",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/datasets.log",
    params:
        source=config["source"],
        splits_source=config["splits_source"],
        selection=config["datasets"],
    script:
        "../scripts/check_datasets.py"


rule labels:
    output:
        labels=f"{UCI}/losses.csv",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/labels.log",
    params:
        losses=config["losses"],
    shell:
        "lossbench losses --select {params.losses:q} --out {output.labels:q} > {log:q} 2>&1"
