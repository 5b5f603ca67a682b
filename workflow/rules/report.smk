# results/README.md, generated from whatever the results folder holds (never edited by hand).


rule report:
    input:
        unpack(paper_input),
        datasets=f"{UCI}/datasets.csv",
        settings=expand(f"{UCI}/{{protocol}}/settings.json", protocol=config["protocols"]),
        timings=expand(f"{UCI}/{{protocol}}/timings.csv", protocol=config["protocols"]),
        tables=[f"{d}/table4.csv" for d in analysis_dirs()],
        friedman=[f"{d}/friedman.json" for d in analysis_dirs()],
        figure=rules.gradient_figure.output,
        studies=f"{RESULTS}/studies.csv",
        study_tables=[t for n in config["studies"] for t in study_targets(n)],
        escaping=probe_report_inputs,
    output:
        f"{RESULTS}/README.md",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/report.log",
    params:
        results=lambda wildcards, input: os.path.dirname(os.path.dirname(input.datasets)),
        baseline=config["baseline"],
        paper=paper_args(),
    shell:
        "lossbench report --results-dir {params.results:q} {params.paper:q}"
        " --baseline {params.baseline:q} --studies {input.studies:q}"
        " --out {output:q} > {log:q} 2>&1"
