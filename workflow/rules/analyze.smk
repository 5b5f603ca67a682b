# Statistics per protocol x arch x (each seed | mean over seeds), with the paper's Table 4 beside;
# the mixing paper's Fig. 1 drawn from the implemented losses.


rule select_scores:
    input:
        unpack(paper_input),
        scores=f"{UCI}/{{protocol}}/scores.csv",
    output:
        scores=f"{ANALYSIS}/scores.csv",
        paper=f"{ANALYSIS}/paper_table4.csv",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/analyze/{{protocol}}/{{arch}}/{{selection}}_select.log",
    params:
        paper=paper_args(),
    shell:
        "lossbench select {input.scores:q} --arch {wildcards.arch:q}"
        " --selection {wildcards.selection:q} --out {output.scores:q}"
        " --paper-out {output.paper:q} {params.paper:q} > {log:q} 2>&1"


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
        average=lambda wildcards: ["--average-over", "seed"] if wildcards.selection == "mean"
        else [],
        out=lambda wildcards, output: os.path.dirname(output.table4),
    # PYTHONHASHSEED: scikit-posthocs draws CD bars from sets of names; a fixed hash seed keeps
    # the drawing order, and so the figure bytes, the same from run to run
    shell:
        "PYTHONHASHSEED=0 lossbench analyze {input.scores:q} --out {params.out:q}"
        " --dataset-col dataset --method-col loss --score-col test_acc_pct"
        " --baseline {params.baseline:q} {params.average:q} --drop-incomplete"
        " --labels {input.labels:q} --paper-table {input.paper:q} > {log:q} 2>&1"


rule gradient_figure:
    output:
        png=f"{FIGURES}/gradients.png",
        svg=f"{FIGURES}/gradients.svg",
    conda:
        "../envs/lossbench.yaml"
    log:
        f"{LOGS}/gradient_figure.log",
    shell:
        "lossbench figure gradients --out {output.png:q} > {log:q} 2>&1"
