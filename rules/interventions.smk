# Every intervention through two generic rules: fit on a source's training pairs, then one job
# scoring every test split the configured shifts need of that fit (one model load, one state
# read). What a job reads (cache templates, the model) comes from the method's declaration.


rule fit:
    input:
        unpack(fit_inputs),
        code=intervention_code("fit"),
    output:
        state=state_path("{model}", "{intervention}", "{source}"),
        info=state_info_path(state_path("{model}", "{intervention}", "{source}")),
    log:
        "logs/fit/{model}/{intervention}/{source}.log",
    group:
        method_group("fit")
    conda:
        "../environment.yml"
    threads: 1
    resources:
        **job_requests(fit_work),
        gpu=intervention_gpus("fit"),
        batch_size=lambda wildcards: model_how(wildcards)["batch_size"],
    params:
        **INTERVENTION_PARAMS,
        examples=examples_argument("train"),
        activations=cache_arguments,
        mix=mix_argument,
    shell:
        "genies fit {wildcards.intervention} --split {input.split} "
        "--activations {params.activations} {params.mix} "
        + INTERVENTION_ARGS
        + " --out {output.state} 2> {log}"


rule evaluate:
    input:
        unpack(evaluation_inputs),
        code=intervention_code("evaluate"),
    output:
        evaluation_path("{model}", "{intervention}", "{source}"),
    log:
        "logs/evaluate/{model}/{intervention}/{source}.log",
    group:
        method_group("evaluate")
    conda:
        "../environment.yml"
    threads: 1
    resources:
        **job_requests(evaluation_work),
        gpu=intervention_gpus("evaluate"),
        batch_size=lambda wildcards: model_how(wildcards)["batch_size"],
    params:
        **INTERVENTION_PARAMS,
        examples=examples_argument("test"),
        # a function of the wildcards: a shift that adds a scored split reruns the job
        inputs=lambda wildcards: json.dumps(
            scored_inputs(wildcards), separators=(",", ":")
        ),
        state=lambda wildcards, input: (
            f"--state {input.state}" if "state" in input.keys() else ""
        ),
    shell:
        "genies evaluate {wildcards.intervention} --inputs '{params.inputs}' "
        + INTERVENTION_ARGS
        + " {params.state} "
        "--out {output} 2> {log}"
