# Base models materialised once under models/<model>/, and the activation cache computed once per
# (model, template, distribution, split) for every representation intervention to read.


rule materialise_model:
    input:
        code=code("materialise"),
    output:
        directory(model_dir("{model}")),
    log:
        "logs/models/{model}.log",
    conda:
        "../environment.yml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        settings=lambda wildcards: json.dumps(
            weights_identity(CFG.models[wildcards.model])
        ),
    shell:
        "genies materialise {wildcards.model} --settings '{params.settings}' --out {output} "
        "2> {log}"


# One job per split writes the files of every template: the model loads once.
rule extract_activations:
    input:
        model=model_dir("{model}"),
        split=split_path("{distribution}", "{split}"),
        code=code("extract"),
    output:
        tensors=[
            activation_path("{model}", template, "{distribution}", "{split}")
            for template in TEMPLATES
        ],
        sidecars=[
            activation_sidecar_path("{model}", template, "{distribution}", "{split}")
            for template in TEMPLATES
        ],
    log:
        "logs/activations/{model}/{distribution}/{split}.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        **job_requests(extraction_work),
        gpu=lambda wildcards: model_how(wildcards)["gpus"],
        batch_size=lambda wildcards: model_how(wildcards)["batch_size"],
    params:
        spec=extraction_request,
        max_examples=lambda wildcards: examples_argument(wildcards.split),
        seed=CFG.seed,
    shell:
        "genies extract --model-dir {input.model} --split {input.split} --spec '{params.spec}' "
        "--out {output.tensors} {params.max_examples} --seed {params.seed} --threads {threads} "
        "--batch-size {resources.batch_size} --gpus {resources.gpu} 2> {log}"


rule activations:
    input:
        [
            activation_path(model, template, distribution, split)
            for model in CFG.models
            for template in TEMPLATES
            for distribution, split in ACTIVATION_SPLITS
        ],
