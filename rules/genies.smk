# The GENIES table of the configured models: per-shift metrics per model, then the table (with
# the models side by side per shift) and the figures over all models.


rule shift_metrics:
    input:
        lambda wildcards: needed_evaluations(
            wildcards.model, CFG.interventions, CFG.shifts
        ),
        shift_specs=SHIFT_SPECS,
        code=code("shift-metrics"),
    output:
        tidy=shift_metrics_path("{model}"),
        tables=[
            generalization_table_path("{model}", intervention, table)
            for intervention in CFG.interventions
            for table in ("GENIES", "all")
        ],
    log:
        "logs/shift_metrics/{model}.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        interventions=CFG.interventions,
        shifts=[shift.name for shift in CFG.shifts],
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
        # data/raw, inferred from the input so that the path travels with it
        raw_dir=lambda wildcards, input: raw_dir_of(input.shift_specs[0]),
    shell:
        "genies shift-metrics {wildcards.model} --interventions {params.interventions} "
        "--shifts {params.shifts:q} --seed {params.seed} --resamples {params.resamples} "
        "--level {params.level} --raw-dir {params.raw_dir} 2> {log}"


rule genies_table:
    input:
        tidy=expand(shift_metrics_path("{model}"), model=CFG.models),
        models=expand(model_dir("{model}"), model=CFG.models),
        # what the table's notes say about texts cut at max_length, in the splits it reads
        sidecars=[
            activation_sidecar_path(model, template, distribution, split)
            for model in CFG.models
            for template in TEMPLATES
            for distribution, split in SHIFT_SPLITS
        ],
        # what the table's reproduce section says each model was computed in
        evaluations=[
            evaluation
            for model in CFG.models
            for evaluation in needed_evaluations(model, CFG.interventions, CFG.shifts)
        ],
        code=code("genies-table"),
    output:
        csv=f"{GENIES_TABLE}.csv",
        md=f"{GENIES_TABLE}.md",
        json=f"{GENIES_TABLE}.json",
        shifts=GENIES_SHIFTS,
        models_per_shift=MODELS_PER_SHIFT,
    log:
        "logs/genies_table.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        # without `mixing` and `contrasts`, which the GENIES table does not read: a new
        # fraction or contrast reruns only their jobs
        config=json.dumps(
            {
                k: v
                for k, v in results_config(config).items()
                if k not in ("mixing", "contrasts")
            },
            sort_keys=True,
            separators=(",", ":"),
        ),
    shell:
        "genies genies-table --tidy {input.tidy} --config '{params.config}' "
        "--sidecars {input.sidecars} --evaluations {input.evaluations} 2> {log}"


# Paired contrasts between the configured interventions (config `contrasts`).
rule genies_contrasts:
    input:
        tidy=rules.genies_table.input.tidy,
        evaluations=rules.genies_table.input.evaluations,
        code=code("genies-contrasts"),
    output:
        csv=f"{GENIES_CONTRASTS}.csv",
        md=f"{GENIES_CONTRASTS}.md",
        shifts=GENIES_CONTRAST_SHIFTS,
    log:
        "logs/genies_contrasts.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        contrasts=json.dumps(CFG.contrasts, separators=(",", ":")),
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
    shell:
        "genies genies-contrasts --tidy {input.tidy} --contrasts '{params.contrasts}' "
        "--seed {params.seed} --resamples {params.resamples} --level {params.level} 2> {log}"


rule genies_claims:
    input:
        tidy=rules.genies_table.input.tidy,
        contrasts=rules.genies_contrasts.output.csv,
        code=code("claims"),
    output:
        csv=f"{CLAIMS}.csv",
        md=f"{CLAIMS}.md",
    log:
        "logs/genies_claims.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
        title="Claims of the paper, re-tested on this run",
    shell:
        "genies claims --tidy {input.tidy} --contrasts {input.contrasts} --csv {output.csv} "
        "--md {output.md} --title '{params.title}' "
        "--seed {params.seed} --resamples {params.resamples} --level {params.level} 2> {log}"


rule genies_figures:
    input:
        tidy=rules.genies_table.input.tidy,
        contrasts=rules.genies_contrasts.output.csv,
        states=[
            state
            for model in CFG.models
            for state in needed_states(model, CFG.interventions, CFG.shifts)
        ],
        mixing=[f"{MIXING_TABLE}.csv", f"{MIXING_MEANS}.csv"] if MIXED else [],
        code=code("genies-figures"),
    output:
        report(
            directory(FIGURES_DIR),
            patterns=["{name}.png"],
            caption="../workflow/report/model_figures.rst",
            category="GENIES table of the configured models",
        ),
    log:
        "logs/genies_figures.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
        mixing=lambda wildcards, input: (
            "--mixing " + " ".join(input.mixing) if MIXED else ""
        ),
    shell:
        "genies genies-figures --tidy {input.tidy} --contrasts {input.contrasts} "
        "--states {input.states} {params.mixing} "
        "--out-dir {output} "
        "--seed {params.seed} "
        "--resamples {params.resamples} --level {params.level} 2> {log}"


# The mixing runs (config `mixing`): each mixed fit's accuracy on its target beside the plain
# shift's and the target-tuned capability.
rule mixing_table:
    input:
        tidy=expand(shift_metrics_path("{model}"), model=CFG.models),
        evaluations=[
            evaluation_path(model, method, source)
            for model in CFG.models
            for method, source in MIXED
        ],
        states=[
            state_path(model, method, source)
            for model in CFG.models
            for method, source in MIXED
        ],
        shift_specs=SHIFT_SPECS,
        code=code("mixing-table"),
    output:
        csv=f"{MIXING_TABLE}.csv",
        means=f"{MIXING_MEANS}.csv",
        md=f"{MIXING_TABLE}.md",
    log:
        "logs/mixing_table.log",
    conda:
        "../environment.yml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        models=list(CFG.models),
        mixing=json.dumps(CFG.mixing, separators=(",", ":")),
        shifts=[shift.name for shift in CFG.shifts],
        seed=CFG.seed,
        resamples=CFG.bootstrap["resamples"],
        level=CFG.bootstrap["level"],
        raw_dir=lambda wildcards, input: raw_dir_of(input.shift_specs[0]),
    shell:
        "genies mixing-table --models {params.models} --mixing '{params.mixing}' "
        "--shifts {params.shifts:q} --seed {params.seed} --resamples {params.resamples} "
        "--level {params.level} --raw-dir {params.raw_dir} 2> {log}"


rule genies:
    input:
        rules.genies_table.output,
        rules.genies_contrasts.output,
        rules.genies_claims.output,
        rules.genies_figures.output,
        rules.mixing_table.output if MIXED else [],


# What each model's shift table was built from and read (genies.rebuild): the splits its shifts
# read, their activation files (none where no configured method reads the cache), its states and
# evaluations; and the paper's tables.
BUILT_CHAINS = [
    (
        [
            *(split_path(distribution, split) for distribution, split in SHIFT_SPLITS),
            *(
                path(model, template, distribution, split)
                for path in (activation_path, activation_sidecar_path)
                for template in TEMPLATES
                for distribution, split in SHIFT_SPLITS
            ),
            *(
                file
                for state in needed_states(model, CFG.interventions, CFG.shifts)
                for file in (state, state_info_path(state))
            ),
            *needed_evaluations(model, CFG.interventions, CFG.shifts),
        ],
        shift_metrics_path(model),
    )
    for model in CFG.models
] + [([*rules.published_evaluations.output], rules.paper_tables.output.tidy)]
