# Escaping efficiency (mixing paper eqs. 15-19; issue 18): `lossbench probe escaping` per dataset
# of the mixing_mechanisms study's `probe:` section, then the sign-test verdict and the figure.
# A target of its own (`snakemake --cores N mixing_mechanisms_probe`), and part of `all` when
# mixing_mechanisms is in config `studies:` (the report's inputs: probe_report_inputs).

from bench.studies import load_study

# a config whose study folder lacks the study (a test's) defines none of these rules
_MECH_FILE = Path(repo_path(config["study_dir"])) / "mixing_mechanisms.yaml"
MECH_PROBE = (load_study("mixing_mechanisms", _MECH_FILE.parent).config.get("probe")
              if _MECH_FILE.exists() else None)
MECH_DIR = f"{RESULTS}/mechanisms/escaping"
# the probe's `args:` as flags (--name value), in the file's order
MECH_PROBE_ARGS = [x for k, v in (MECH_PROBE or {}).get("args", {}).items()
                   for x in (f"--{k.replace('_', '-')}", str(v))]


if MECH_PROBE:

    rule probe_escaping:
        conda:
            "../envs/lossbench.yaml"
        input:
            data_inputs,
        output:
            csv=f"{MECH_DIR}/runs/{{dataset}}/escaping.csv",
            config=f"{MECH_DIR}/runs/{{dataset}}/config.json",
        log:
            f"{LOGS}/mechanisms/escaping/{{dataset}}.log",
        threads: 1
        resources:
            mem_mb=lambda wildcards, attempt: MECH_PROBE["resources"]["mem_mb"] * attempt,
            runtime=lambda wildcards, attempt: MECH_PROBE["resources"]["runtime"] * attempt,
        params:
            models=",".join(MECH_PROBE["models"]),
            losses=",".join(MECH_PROBE["losses"]),
            at=",".join(map(str, MECH_PROBE["at"])),
            args=MECH_PROBE_ARGS,
            data=source_args(),
            out=lambda wildcards, output: os.path.dirname(output.csv),
        shell:
            "lossbench probe escaping --dataset {wildcards.dataset:q} --model {params.models}"
            " --losses {params.losses:q} --at {params.at} {params.args:q} {params.data}"
            " --threads {threads} --out {params.out:q} > {log:q} 2>&1"


    rule escaping_verdict:
        conda:
            "../envs/lossbench.yaml"
        input:
            expand(f"{MECH_DIR}/runs/{{dataset}}/escaping.csv", dataset=MECH_PROBE["datasets"]),
        output:
            verdict=f"{MECH_DIR}/verdict.csv",
            traces=f"{MECH_DIR}/dataset_traces.csv",
            figure=f"{MECH_DIR}/traces.png",
        log:
            f"{LOGS}/mechanisms/escaping/verdict.log",
        params:
            claims=MECH_PROBE["claims"],
            out=lambda wildcards, output: os.path.dirname(output.verdict),
        shell:
            "lossbench escaping-verdict --in {input:q} --claims {params.claims:q}"
            " --out {params.out:q} > {log:q} 2>&1"


    rule mixing_mechanisms_probe:
        input:
            rules.escaping_verdict.output,
