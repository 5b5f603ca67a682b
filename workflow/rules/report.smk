# results/README.md, generated from whatever the results folder holds (never edited by hand).


rule report:
    input:
        datasets=f"{UCI}/datasets.csv",
        settings=expand(f"{UCI}/{{protocol}}/settings.json", protocol=config["protocols"]),
        timings=expand(f"{UCI}/{{protocol}}/timings.csv", protocol=config["protocols"]),
        tables=[f"{d}/table4.csv" for d in analysis_dirs()],
        friedman=[f"{d}/friedman.json" for d in analysis_dirs()],
        figure=rules.gradient_figure.output,
        paper=PAPER_TABLE,
    output:
        f"{RESULTS}/README.md",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/report.log",
    params:
        results=lambda wildcards, input: os.path.dirname(os.path.dirname(input.datasets)),
        baseline=config["baseline"],
    shell:
        "lossbench report --results-dir {params.results} --paper-table {input.paper}"
        " --baseline {params.baseline} --out {output} > {log} 2>&1"
