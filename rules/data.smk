rule split:
    input:
        raw=f"{RAW}/distributions/{{distribution}}/{{split}}.json.xz",
        metadata=f"{RAW}/distributions/{{distribution}}/metadata.json.xz",
        code=code("split"),
    output:
        split_path("{distribution}", "{split}"),
    log:
        "logs/splits/{distribution}/{split}.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        # data/raw, inferred from the input so that the path travels with it
        raw_dir=lambda wildcards, input: Path(input.raw).parents[2],
    shell:
        "genies split {wildcards.distribution} {wildcards.split} --raw-dir {params.raw_dir} "
        "--out {output} 2> {log}"


# Every split the workflow reads: the configured distributions', and those the configured shifts
# read (a target's reference may be outside `distributions`), so that this target (the DVC stage
# `splits`) owns all of data/splits.
rule splits:
    input:
        sorted(
            {
                split_path(distribution, split)
                for distribution in CFG.distributions
                for split in SPLITS
            }
            | {split_path(*read) for read in ACTIVATION_SPLITS}
        ),


rule data_audit:
    input:
        splits=rules.splits.input,
        code=code("audit"),
    output:
        csv="results/data_audit.csv",
        md="results/data_audit.md",
    log:
        "logs/data_audit.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        distributions=CFG.distributions,
        raw_dir=RAW,
    shell:
        "genies audit {params.distributions} --raw-dir {params.raw_dir} --splits-dir data/splits "
        "--csv {output.csv} --md {output.md} 2> {log}"
