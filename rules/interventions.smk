# Every intervention through two generic rules: fit on a source's training pairs, evaluate on a
# test split. What a job reads (cache templates, the model) comes from the method's declaration.


rule fit:
    input:
        unpack(
            lambda wildcards: intervention_inputs(wildcards, wildcards.source, "train")
        ),
        code=intervention_code("fit"),
    output:
        state=state_path("{model}", "{intervention}", "{source}"),
        info=state_info_path(state_path("{model}", "{intervention}", "{source}")),
    log:
        "logs/fit/{model}/{intervention}/{source}.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        **job_requests(fit_work),
        gpu=intervention_gpus,
        batch_size=lambda wildcards: model_how(wildcards)["batch_size"],
    params:
        **INTERVENTION_PARAMS,
    shell:
        "genies fit {wildcards.intervention} "
        + INTERVENTION_ARGS
        + " --out {output.state} 2> {log}"


rule evaluate:
    input:
        unpack(
            lambda wildcards: intervention_inputs(
                wildcards, wildcards.distribution, "test"
            )
        ),
        code=intervention_code("evaluate"),
    output:
        evaluation_path("{model}", "{intervention}", "{source}", "{distribution}"),
    log:
        "logs/evaluate/{model}/{intervention}/{source}/{distribution}.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        **job_requests(evaluation_work),
        gpu=intervention_gpus,
        batch_size=lambda wildcards: model_how(wildcards)["batch_size"],
    params:
        **INTERVENTION_PARAMS,
        state=lambda wildcards, input: (
            f"--state {input.state}" if "state" in input.keys() else ""
        ),
    shell:
        "genies evaluate {wildcards.intervention} "
        + INTERVENTION_ARGS
        + " {params.state} "
        "--out {output} 2> {log}"
