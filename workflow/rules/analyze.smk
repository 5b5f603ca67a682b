# Statistics per protocol x arch x (each seed | mean over seeds), with the paper's Table 4 beside.


rule select_scores:
    input:
        scores=f"{UCI}/{{protocol}}/scores.csv",
        paper=PAPER_TABLE,
    output:
        scores=f"{ANALYSIS}/scores.csv",
        paper=f"{ANALYSIS}/paper_table4.csv",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/analyze/{{protocol}}/{{arch}}/{{selection}}_select.log",
    script:
        "../scripts/select_scores.py"


rule analyze:
    input:
        scores=f"{ANALYSIS}/scores.csv",
        paper=f"{ANALYSIS}/paper_table4.csv",
        labels=f"{UCI}/losses.csv",
    output:
        table4=f"{ANALYSIS}/table4.csv",
        friedman=f"{ANALYSIS}/friedman.json",
        ranks=f"{ANALYSIS}/ranks.csv",
        cd=f"{ANALYSIS}/cd_diagram.png",
        profile=f"{ANALYSIS}/performance_profile.png",
        summary=f"{ANALYSIS}/summary.md",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/analyze/{{protocol}}/{{arch}}/{{selection}}.log",
    params:
        baseline=config["baseline"],
        average=lambda wildcards: "--average-over seed" if wildcards.selection == "mean" else "",
        out=lambda wildcards, output: os.path.dirname(output.table4),
    # PYTHONHASHSEED: scikit-posthocs draws CD bars from sets of names; a fixed hash seed keeps
    # the drawing order, and so the figure bytes, the same from run to run
    shell:
        "PYTHONHASHSEED=0 lossbench analyze {input.scores} --out {params.out}"
        " --dataset-col dataset --method-col loss --score-col test_acc_pct"
        " --baseline {params.baseline} {params.average} --drop-incomplete"
        " --labels {input.labels} --paper-table {input.paper} > {log} 2>&1"


rule gradient_figure:
    output:
        png=f"{FIGURES}/gradients.png",
        svg=f"{FIGURES}/gradients.svg",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/gradient_figure.log",
    params:
        out=lambda wildcards, output: os.path.dirname(output.png),
    shell:
        "python -m analysis.gradient_figure --out {params.out} > {log} 2>&1"
