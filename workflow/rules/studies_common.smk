# Study globals, wildcard constraints and input functions (rules in studies.smk).

from bench.studies import load_study

STUDY_DIR = repo_path(config["study_dir"])
STUDIES = {n: load_study(n, STUDY_DIR) for n in config["studies"] + config["gpu_studies"]}
SOURCES = {k: str(v) for k, v in (config.get("sources") or {}).items() if v}
STUDY_JOBS = {n: {j.id: j for j in s.jobs(SOURCES)} for n, s in STUDIES.items()}
STUDY_ROOT = f"{RESULTS}/{{results}}/{{study}}"
STUDY_RUN = f"{STUDY_ROOT}/runs/{{job}}"
STUDY_ANALYSIS = f"{STUDY_ROOT}/analysis/{{arch}}/{{selection}}"
# analysis selections: "mean" ranks datasets (seed-averaged), "blocks" ranks dataset x seed
STUDY_SELECTIONS = ["mean", "blocks"]


wildcard_constraints:
    study="|".join(STUDIES) or "no_study",
    results="|".join({s.config["results"] for s in STUDIES.values()}) or "no_study",
    job=r"[A-Za-z0-9_.-]+",


def study_dir(name):
    return f"{RESULTS}/{STUDIES[name].config['results']}/{name}"


def study_resource(key, default):
    return lambda wildcards, attempt: STUDIES[wildcards.study].config.get(
        "resources", {}).get(key, default) * attempt


def study_archs(name):
    models = STUDIES[name].config["models"]
    flat = [m for ms in models.values() for m in ms] if isinstance(models, dict) else models
    return list(dict.fromkeys(flat))


def study_targets(name):
    """The analysed tables of a study (what its target and the report need)."""
    selections = STUDIES[name].config.get("selections", STUDY_SELECTIONS)
    out = expand(f"{study_dir(name)}/analysis/{{arch}}/{{selection}}/table4.csv",
                 arch=study_archs(name), selection=selections)
    out.append(f"{study_dir(name)}/scores.csv")
    if "buckets" in STUDIES[name].config:  # the motivating example's table
        out.append(f"{study_dir(name)}/buckets.csv")
    return out


def study_run_files(name):
    def inputs(wildcards):
        jobs = STUDY_JOBS[wildcards.study]
        return expand(f"{study_dir(wildcards.study)}/runs/{{job}}/{name}", job=list(jobs))

    return inputs


def study_methods(name):
    """The method names the tables carry: the loss id, with its study-wide parameters."""
    config = STUDIES[name].config
    out = []
    for loss in config["losses"]:
        params = config.get("loss_params", {}).get(loss, {})
        out.append(f"{loss}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
                   if params else loss)
    return out
