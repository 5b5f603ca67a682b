# The study step after training: each protocol's per-job tables merged into
# results/uci/<protocol>/{summary.csv, epochs.csv.gz, scores.csv, timings.csv, settings.json}.


rule collect:
    input:
        summaries=run_files("summary.csv"),
        epochs=run_files("epochs.csv"),
        configs=run_files("config.json"),
        benchmarks=run_files("benchmark.tsv"),
    output:
        summary=f"{UCI}/{{protocol}}/summary.csv",
        epochs=f"{UCI}/{{protocol}}/epochs.csv.gz",
        scores=f"{UCI}/{{protocol}}/scores.csv",
        timings=f"{UCI}/{{protocol}}/timings.csv",
        settings=f"{UCI}/{{protocol}}/settings.json",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/collect/{{protocol}}.log",
    params:
        out=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        "lossbench collect --out {params.out:q} --protocol {wildcards.protocol:q}"
        " --summaries {input.summaries:q} --epochs {input.epochs:q}"
        " --configs {input.configs:q} --benchmarks {input.benchmarks:q} > {log:q} 2>&1"
