# lossbench: reproduce the UCI-121 study of Battash, Hazan, Wolf (AAAI 2022) and report it.
#   snakemake --cores N                                   the paper's protocol (config/config.yaml)
#   snakemake --cores 2 --configfile config/smoke.yaml    CI smoke run (writes under smoke/)
#   snakemake --executor slurm --workflow-profile profiles/slurm   on a SLURM cluster
# Stages: datasets (availability check) -> train -> collect -> analyze -> gradient figure -> report.

import os


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/collect.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/studies_common.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/mechanisms.smk"


rule all:
    input:
        all_targets(),
    default_target: True
